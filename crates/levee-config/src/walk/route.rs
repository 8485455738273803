//! One `[[route]]` table: where it applies (listener, host, path) and its
//! single action with that action's options.

use std::path::PathBuf;

use super::Mention;
use super::cache::ROUTE_KEYS as CACHE_KEYS;
use crate::error::Sink;
use crate::model::{
    Action, DEFAULT_CONTENT_TYPE, DEFAULT_INDEX, DEFAULT_REDIRECT_STATUS, DEFAULT_RESPOND_STATUS,
    ForwardPath, HostMatch, MirrorsAction, ProxyAction, RedirectAction, RespondAction,
    StaticAction,
};
use crate::names;
use crate::tree::{Fields, Item};

pub(crate) struct DraftRoute {
    /// Listener names as written; empty means every listener.
    pub listeners: Vec<Mention>,
    pub hosts: Vec<HostMatch>,
    pub path: String,
    /// Where to point at the route: its `path`, or its table when `path`
    /// is left out.
    pub at: Mention,
    /// `None` when the action is missing, ambiguous or invalid.
    pub action: Option<Action>,
    /// The upstream a `proxy` action names, for the cross-check.
    pub upstream: Option<Mention>,
    /// The mirror set a `mirrors` action names, for the cross-check.
    pub mirror_set: Option<Mention>,
    pub protect: crate::model::RouteProtect,
    /// The rate limits named, for the cross-check.
    pub rate_limits: Vec<Mention>,
    /// `compress` over `[compress]` (walk/compress.rs).
    pub compress: Option<crate::model::Compress>,
    pub rewrite: crate::model::RouteRewrite,
    pub shape: crate::model::RouteShape,
}

const ACTIONS: [&str; 5] = ["proxy", "static", "redirect", "respond", "mirrors"];

/// Each action option and the actions it belongs to.
const OPTIONS: &[(&str, &[&str])] = &[
    ("preserve_host", &["proxy"]),
    ("forward_path", &["proxy"]),
    ("index", &["static"]),
    ("follow_symlinks", &["static"]),
    ("status", &["redirect", "respond"]),
    ("content_type", &["respond"]),
];

pub(crate) const KEYS: &[&str] = &[
    "listener",
    "host",
    "path",
    "proxy",
    "static",
    "redirect",
    "respond",
    "mirrors",
    "preserve_host",
    "forward_path",
    "index",
    "follow_symlinks",
    "status",
    "content_type",
    // Protection (walk/protect.rs).
    "allow",
    "deny",
    "auth_basic_file",
    "auth_realm",
    "rate_limit",
    "compress",
    // The cache keys (walk/cache.rs) are added to these.
];

pub(crate) fn route(
    sink: &mut Sink<'_>,
    item: &Item<'_, '_>,
    compress: &crate::model::CompressConfig,
) -> Option<DraftRoute> {
    let known = [
        KEYS,
        CACHE_KEYS,
        super::rewrite::KEYS,
        super::static_opts::KEYS,
        super::shape::ROUTE_KEYS,
    ]
    .concat();
    let fields = Fields::of(sink, item, &known)?;
    let listeners = fields
        .get("listener")
        .and_then(|i| i.one_or_many(sink))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(i, name)| {
            if name.is_empty() {
                i.error(sink, "a listener name must not be empty");
                return None;
            }
            Some(Mention::of(&i, name))
        })
        .collect();
    let hosts = fields
        .get("host")
        .and_then(|i| i.one_or_many(sink))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(i, pattern)| {
            names::parse_host_pattern(pattern)
                .map_err(|message| i.error(sink, message))
                .ok()
        })
        .collect();
    let path = match fields.get("path") {
        None => "/".to_owned(),
        Some(i) => match i.str(sink) {
            Some(p) => {
                if let Err(message) = names::check_route_path(p) {
                    i.error(sink, message);
                }
                p.to_owned()
            }
            None => "/".to_owned(),
        },
    };
    let at = match fields.get("path") {
        Some(i) => Mention::of(i, &path),
        None => Mention::of(item, &path),
    };

    let (action, named) = action(sink, &fields).unwrap_or((None, None));
    let (upstream, mirror_set) = match &action {
        Some(Action::Mirrors(_)) => (None, named),
        _ => (named, None),
    };
    let (protect, rate_limits) = super::protect::route_protect(sink, &fields);
    let compress = super::compress::route(sink, fields.get("compress"), compress);
    let rewrite = super::rewrite::route_rewrite(sink, &fields);
    super::rewrite::check_forward_path(sink, &fields, &rewrite, action.as_ref());
    let shape = super::shape::route_shape(sink, &fields, fields.get("proxy").is_some());
    Some(DraftRoute {
        compress,
        listeners,
        hosts,
        path,
        at,
        action,
        upstream,
        mirror_set,
        protect,
        rate_limits,
        rewrite,
        shape,
    })
}

type Built = (Option<Action>, Option<Mention>);

fn action(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> Option<Built> {
    let mut present: Vec<(&str, &Item<'_, '_>)> = ACTIONS
        .iter()
        .filter_map(|name| fields.get(name).map(|i| (*name, i)))
        .collect();
    present.sort_by_key(|(_, i)| i.key_span.start);
    let (name, item) = match present.as_slice() {
        [] => {
            sink.error(
                fields.span.clone(),
                &fields.key,
                "a route needs an action: set one of `proxy`, `static`, `redirect`, `respond` or `mirrors`",
            );
            return None;
        }
        [(name, item)] => (*name, *item),
        [(first, _), rest @ ..] => {
            for (_, extra) in rest {
                sink.error(
                    extra.key_span.clone(),
                    &extra.key,
                    format!("a route has exactly one action, but `{first}` is set too; split it into two routes"),
                );
            }
            return None;
        }
    };
    let mut options_ok = true;
    let cache_options = CACHE_KEYS.iter().map(|k| (*k, &["proxy"][..]));
    let static_options = super::static_opts::KEYS
        .iter()
        .map(|k| (*k, &["static"][..]));
    let options = OPTIONS.iter().copied().chain(cache_options);
    for (option, owners) in options.chain(static_options) {
        if let Some(i) = fields.get(option)
            && !owners.contains(&name)
        {
            let owners = owners
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(" or ");
            sink.error(
                i.key_span.clone(),
                &i.key,
                format!("`{option}` only applies to {owners} routes, not `{name}`"),
            );
            options_ok = false;
        }
    }
    let built = match name {
        "proxy" => proxy(sink, fields, item),
        "static" => serve_static(sink, fields, item),
        "redirect" => redirect(sink, fields, item),
        "mirrors" => mirrors(sink, item),
        _ => respond(sink, fields, item),
    };
    Some(if options_ok { built } else { (None, built.1) })
}

fn proxy(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, item: &Item<'_, '_>) -> Built {
    let preserve_host = fields.get("preserve_host").map(|i| i.bool(sink));
    let forward_path = match fields.get("forward_path") {
        None => Some(ForwardPath::default()),
        Some(i) => match i.str(sink) {
            Some("normalised") => Some(ForwardPath::Normalised),
            Some("original") => Some(ForwardPath::Original),
            Some(other) => {
                i.error(
                    sink,
                    format!("`{other}`: expected \"normalised\" or \"original\""),
                );
                None
            }
            None => None,
        },
    };
    let cache = super::cache::route_cache(sink, fields);
    let Some(upstream) = item.text(sink) else {
        return (None, None);
    };
    let mention = Mention::of(item, upstream);
    let preserve_host = match preserve_host {
        Some(None) => None,
        Some(Some(b)) => Some(b),
        None => Some(true),
    };
    let action = preserve_host
        .zip(forward_path)
        .map(|(preserve_host, forward_path)| {
            Action::Proxy(ProxyAction {
                upstream: upstream.to_owned(),
                preserve_host,
                forward_path,
                cache,
            })
        });
    (action, Some(mention))
}

fn serve_static(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, item: &Item<'_, '_>) -> Built {
    let root = item.text(sink);
    let options = super::static_opts::options(sink, fields);
    let follow_symlinks = match fields.get("follow_symlinks") {
        Some(i) => i.bool(sink),
        None => Some(false),
    };
    let index = match fields.get("index") {
        None => Some(DEFAULT_INDEX.iter().map(|s| (*s).to_owned()).collect()),
        Some(i) => i.array(sink).and_then(|entries| {
            let mut names = Vec::new();
            for entry in &entries {
                let name = entry.text(sink)?;
                if name.contains('/') || name == "." || name == ".." {
                    entry.error(
                        sink,
                        format!("index `{name}` must be a file name, not a path"),
                    );
                    return None;
                }
                names.push(name.to_owned());
            }
            Some(names)
        }),
    };
    let action = match (root, index, follow_symlinks) {
        (Some(root), Some(index), Some(follow_symlinks)) => Some(Action::Static(StaticAction {
            root: PathBuf::from(root),
            index,
            follow_symlinks,
            options,
        })),
        _ => None,
    };
    (action, None)
}

fn mirrors(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Built {
    let Some(set) = item.text(sink) else {
        return (None, None);
    };
    let action = Action::Mirrors(MirrorsAction {
        set: set.to_owned(),
    });
    (Some(action), Some(Mention::of(item, set)))
}

fn redirect(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, item: &Item<'_, '_>) -> Built {
    let to = item.text(sink);
    let status = match fields.get("status") {
        None => Some(DEFAULT_REDIRECT_STATUS),
        Some(i) => i.integer(sink).and_then(|n| match n {
            301 | 302 | 303 | 307 | 308 => u16::try_from(n).ok(),
            _ => {
                i.error(sink, "a redirect status must be 301, 302, 303, 307 or 308");
                None
            }
        }),
    };
    let action = match (to, status) {
        (Some(to), Some(status)) => Some(Action::Redirect(RedirectAction {
            to: to.to_owned(),
            status,
        })),
        _ => None,
    };
    (action, None)
}

fn respond(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, item: &Item<'_, '_>) -> Built {
    let body = item.str(sink);
    let status = match fields.get("status") {
        None => Some(DEFAULT_RESPOND_STATUS),
        Some(i) => i.int_in(sink, 200, 599).map(|n| n as u16),
    };
    let content_type = match fields.get("content_type") {
        None => Some(DEFAULT_CONTENT_TYPE),
        Some(i) => i.text(sink),
    };
    let action = match (body, status, content_type) {
        (Some(body), Some(status), Some(content_type)) => Some(Action::Respond(RespondAction {
            status,
            body: body.to_owned(),
            content_type: content_type.to_owned(),
        })),
        _ => None,
    };
    (action, None)
}
