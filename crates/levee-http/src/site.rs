//! The site: everything a request needs from the config, built once per
//! (re)load and shared by every worker through an `ArcSwap`. A request takes
//! one snapshot when its head is read and keeps it to the end, so a reload
//! never changes a request half way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use levee_config::{
    Action, Config, ForwardPath, HostMatch, Limits, RedirectAction, StaticAction, Timeouts,
};
use levee_upstream::{AddrMap, Group, Registry, UpstreamError};

use levee_protect::conns::ConnLimits;
use levee_protect::{BasicAuth, ProtectError, RouteGuard};

use crate::access_log::AccessLog;
use crate::cache::setup::{RouteCache, SiteCache};
use crate::h1::HeadLimits;
use crate::origin::Trust;
use crate::pace::Pace;
use crate::route::Router;

/// A route as a request meets it: its protections, then its action.
#[derive(Debug)]
pub struct Routed {
    /// `None` when the route has no protection (the common case costs nothing).
    pub guard: Option<RouteGuard>,
    pub target: Target,
    /// The route's status and latency counters (`/metrics`, the dashboard).
    pub stats: Arc<levee_upstream::stats::RouteStats>,
    /// A proxy route with `forward_path = "original"`.
    pub forward_original: bool,
    /// How the route compresses responses (compress.rs); `None`: it does not.
    pub compress: Option<Arc<levee_config::Compress>>,
    /// The route's path rewriting (rewrite.rs); `None` when it has none.
    pub rewrite: Option<Box<levee_config::RouteRewrite>>,
    /// Header rules and the upstream's `Server` (shape.rs).
    /// Shared with background fetches of the route's cache (cache/fetch.rs).
    pub(crate) shape: std::sync::Arc<crate::shape::Shape>,
}

impl Routed {
    /// Makes `head` forward the path this route sends upstream: the
    /// normalised one unless `forward_path = "original"`.
    pub fn choose_path(&self, head: &mut crate::message::RequestHead) {
        if self.forward_original {
            head.forward_original();
        }
    }
}

/// A route's action with its references resolved.
#[derive(Debug)]
pub enum Target {
    Proxy {
        group: Arc<Group>,
        preserve_host: bool,
        /// `Some` when the route caches.
        cache: Option<Box<RouteCache>>,
    },
    Static(StaticAction),
    Redirect(RedirectAction),
    Respond {
        status: u16,
        body: Vec<u8>,
        content_type: String,
    },
    /// A download redirector's tree (levee-mirror).
    Mirrors(Arc<levee_mirror::MirrorSet>),
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Protect(#[from] ProtectError),
    #[error("mirror set `{name}`: {source}")]
    Mirror {
        name: String,
        #[source]
        source: levee_mirror::MirrorError,
    },
    #[error("error page {path}: {source}")]
    ErrorPage {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("access log {path}: {source}")]
    AccessLog {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
pub struct Site {
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub head_limits: HeadLimits,
    pub access_log: AccessLog,
    pub upstreams: HashMap<String, Arc<Group>>,
    /// `[mirrors.NAME]` sets by name (their state lives across reloads).
    pub mirrors: HashMap<String, Arc<levee_mirror::MirrorSet>>,
    /// By listener address: a reload that renames a listener keeps its socket.
    routers: AddrMap<SocketAddr, Router<Routed>>,
    /// Connection limits and allow/deny lists by listener address.
    conn_limits: AddrMap<SocketAddr, ConnLimits>,
    /// The least progress demanded of clients; `None` when `min_progress` is 0.
    pub pace: Option<Pace>,
    /// `[protect] shed_idle_at`: percent of the descriptor limit.
    pub shed_idle_at: u8,
    /// The HTTP cache; `None` when no route caches.
    pub cache: Option<Arc<SiteCache>>,
    /// What HTTP/2 connections announce and enforce.
    pub http2: levee_config::Http2,
    /// Trusted proxies by listener address, only for listeners with some.
    trusted: AddrMap<SocketAddr, Trust>,
    /// The request id's field (`[http]`); `None` when ids are off.
    pub(crate) request_id: Option<std::sync::Arc<crate::shape::IdField>>,
    /// `[http] error_pages`, for requests no route took.
    pub(crate) pages: crate::shape::Pages,
}

fn page_error((path, source): crate::shape::PageError) -> SiteError {
    SiteError::ErrorPage {
        path: path.display().to_string(),
        source,
    }
}

impl Site {
    /// Builds the site for `config` with fresh server state. Resolves
    /// upstream DNS names (blocking).
    pub fn build(config: &Config) -> Result<Site, SiteError> {
        Site::build_with(config, &Registry::new())
    }

    /// Builds the site for `config`, taking server state (drain, health,
    /// weight overrides) from `registry` so it survives a reload.
    pub fn build_with(config: &Config, registry: &Arc<Registry>) -> Result<Site, SiteError> {
        let upstreams = groups(config, registry)?;
        let mirrors = mirror_sets(config)?;
        let limiters = levee_protect::rate::limiters(&config.protect.rate_limits);
        let pages = crate::shape::Pages::load(&Default::default(), &config.http.error_pages)
            .map_err(page_error)?;
        let named = Named {
            upstreams: &upstreams,
            mirrors: &mirrors,
            limiters: &limiters,
            pages: &pages,
        };
        let mut targets = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            if let Some(routed) = routed(config, route, &named)? {
                targets.push((route, Arc::new(routed)));
            }
        }
        let routers = config
            .listeners
            .iter()
            .map(|l| {
                let mine = targets
                    .iter()
                    .filter(|(r, _)| r.listeners.is_empty() || r.listeners.contains(&l.name))
                    .map(|(r, t)| (*r, t.clone()))
                    .collect();
                (l.address, Router::new(mine))
            })
            .collect();
        let conn_limits = config
            .listeners
            .iter()
            .map(|l| (l.address, ConnLimits::new(&l.protect)))
            .collect();
        let trusted = config
            .listeners
            .iter()
            .filter_map(|l| Some((l.address, Trust::new(&l.trusted)?)))
            .collect();
        let p = &config.protect;
        let pace = (p.min_progress > 0).then_some(Pace {
            min_bytes: p.min_progress,
            window: p.progress_window,
        });
        let caches = config
            .routes
            .iter()
            .any(|r| matches!(&r.action, Action::Proxy(p) if p.cache.is_some()));
        let access_log = AccessLog::open(&config.log)
            .map_err(|(path, source)| SiteError::AccessLog { path, source })?;
        Ok(Site {
            limits: config.limits,
            timeouts: config.timeouts,
            head_limits: HeadLimits {
                max_request_line: config.limits.max_request_line,
                max_header_bytes: config.limits.max_header_bytes,
                max_headers: config.limits.max_headers,
            },
            access_log,
            upstreams,
            mirrors,
            routers,
            conn_limits,
            pace,
            shed_idle_at: p.shed_idle_at,
            cache: caches.then(|| Arc::new(SiteCache::build(&config.cache))),
            http2: config.http2,
            trusted,
            request_id: crate::shape::IdField::build(&config.http).map(std::sync::Arc::new),
            pages,
        })
    }

    /// The trusted proxies of the listener bound to `listener`; a branch
    /// and nothing more when no listener has any.
    pub fn trust(&self, listener: SocketAddr) -> Option<&Trust> {
        if self.trusted.is_empty() {
            return None;
        }
        self.trusted.get(&listener)
    }

    /// The counters of requests that matched no route.
    pub fn unrouted() -> &'static levee_upstream::stats::RouteStats {
        static NONE: std::sync::OnceLock<Arc<levee_upstream::stats::RouteStats>> =
            std::sync::OnceLock::new();
        NONE.get_or_init(|| levee_upstream::stats::route(levee_upstream::stats::NO_ROUTE))
    }

    /// The route serving `host`/`path` on the listener bound to `listener`.
    pub fn route(&self, listener: SocketAddr, host: &[u8], path: &[u8]) -> Option<&Arc<Routed>> {
        self.routers.get(&listener)?.find(host, path)
    }

    /// The connection limits of the listener bound to `listener` (none if unknown).
    pub fn conn_limits(&self, listener: SocketAddr) -> &ConnLimits {
        static NONE: std::sync::OnceLock<ConnLimits> = std::sync::OnceLock::new();
        match self.conn_limits.get(&listener) {
            Some(l) => l,
            None => NONE.get_or_init(ConnLimits::default),
        }
    }
}

/// A route's name in `/metrics` and on the dashboard: its listeners (if it
/// names any), hosts (`*` for any) and path prefix, e.g. `shop.example/api/`.
pub fn route_label(route: &levee_config::Route) -> String {
    let mut label = String::new();
    if !route.listeners.is_empty() {
        label.push_str(&route.listeners.join(","));
        label.push(' ');
    }
    if route.hosts.is_empty() {
        label.push('*');
    }
    for (i, h) in route.hosts.iter().enumerate() {
        if i > 0 {
            label.push(',');
        }
        match h {
            HostMatch::Exact(h) => label.push_str(h),
            HostMatch::Wildcard(suffix) => {
                label.push('*');
                label.push_str(suffix);
            }
        }
    }
    label.push_str(&route.path);
    label
}

/// What routes name, built before them.
struct Named<'a> {
    upstreams: &'a HashMap<String, Arc<Group>>,
    mirrors: &'a HashMap<String, Arc<levee_mirror::MirrorSet>>,
    limiters: &'a HashMap<String, Arc<levee_protect::rate::RateLimiter>>,
    pages: &'a crate::shape::Pages,
}

/// The upstream groups by name, with their servers' state from `registry`.
fn groups(
    config: &Config,
    registry: &Arc<Registry>,
) -> Result<HashMap<String, Arc<Group>>, SiteError> {
    let mut upstreams = HashMap::new();
    for u in &config.upstreams {
        upstreams.insert(
            u.name.clone(),
            Arc::new(Group::build_with(u, config.resolver.as_ref(), registry)?),
        );
    }
    Ok(upstreams)
}

/// The mirror sets by name (each one's state lives across reloads).
fn mirror_sets(
    config: &Config,
) -> Result<HashMap<String, Arc<levee_mirror::MirrorSet>>, SiteError> {
    let mut mirrors = HashMap::new();
    for set in &config.mirrors {
        let obtained =
            levee_mirror::MirrorSet::obtain(set).map_err(|source| SiteError::Mirror {
                name: set.name.clone(),
                source,
            })?;
        mirrors.insert(set.name.clone(), obtained);
    }
    Ok(mirrors)
}

/// A route as requests meet it; `None` for one whose upstream or mirror
/// set does not resolve (validation guarantees it does; skipped
/// defensively).
fn routed(
    config: &Config,
    route: &levee_config::Route,
    named: &Named<'_>,
) -> Result<Option<Routed>, SiteError> {
    let auth = match &route.protect.auth {
        Some(a) => Some(Arc::new(BasicAuth::load(&a.file, &a.realm)?)),
        None => None,
    };
    let guard = RouteGuard::new(&route.protect, named.limiters, auth);
    let Some(target) = target(&route.action, named) else {
        return Ok(None);
    };
    let forward_original = matches!(
        &route.action,
        Action::Proxy(p) if p.forward_path == ForwardPath::Original
    );
    let stats = levee_upstream::stats::route(&route_label(route));
    Ok(Some(Routed {
        guard,
        target,
        forward_original,
        stats,
        compress: route.compress.clone().map(Arc::new),
        rewrite: (!route.rewrite.is_empty()).then(|| Box::new(route.rewrite.clone())),
        shape: Arc::new(
            crate::shape::Shape::build(&route.shape, config.http.hide_upstream_server, named.pages)
                .map_err(page_error)?,
        ),
    }))
}

/// A route's action with the upstream or mirror set it names resolved.
fn target(action: &Action, named: &Named<'_>) -> Option<Target> {
    Some(match action {
        Action::Proxy(p) => Target::Proxy {
            group: named.upstreams.get(&p.upstream)?.clone(),
            preserve_host: p.preserve_host,
            cache: p.cache.as_ref().map(|c| Box::new(RouteCache::new(c))),
        },
        Action::Static(s) => Target::Static(s.clone()),
        Action::Redirect(r) => Target::Redirect(r.clone()),
        Action::Mirrors(m) => Target::Mirrors(named.mirrors.get(&m.set)?.clone()),
        Action::Respond(r) => Target::Respond {
            status: r.status,
            body: r.body.as_bytes().to_vec(),
            content_type: r.content_type.clone(),
        },
    })
}
