//! Walks the spanned TOML tree into a [`Draft`]: every key is checked
//! against the schema and every value parsed, with all problems reported to
//! the [`Sink`]. What needs more than one place in the file (duplicates,
//! references between sections) is left to [`crate::validate`].
//!
//! A value that fails to parse is replaced by its default so the walk can go
//! on; the draft is never turned into a `Config` when the sink holds errors.

mod acme;
mod admin;
mod basics;
mod cache;
mod compress;
mod dns;
mod fleet;
mod http2;
mod mail;
pub(crate) mod mirrors;
mod protect;
mod resolver;
mod rewrite;
mod route;
mod shape;
mod static_opts;
mod tls;
mod upstream;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

use crate::error::Sink;
use crate::model::{
    AccessLogFormat, AccessLogTarget, ErrorLogFormat, ErrorLogTarget, Limits, LogConfig, Timeouts,
};
use crate::tree::{Fields, Item};

pub(crate) use mirrors::DraftMirrorSet;
pub(crate) use protect::{DraftRateLimit, check_rate_limit_refs};
pub(crate) use route::DraftRoute;
pub(crate) use upstream::DraftUpstream;

/// Most worker threads `workers` accepts (and `"auto"` resolves to).
pub const MAX_WORKERS: usize = 1024;

/// A name or address as written, with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Mention {
    pub text: String,
    pub key: String,
    pub span: Range<usize>,
}

impl Mention {
    fn of(item: &Item<'_, '_>, text: &str) -> Self {
        Mention {
            text: text.to_owned(),
            key: item.key.clone(),
            span: item.span(),
        }
    }
}

/// The file's content after per-value checks, before cross-checks.
pub(crate) struct Draft {
    /// Where to report a section that is missing altogether.
    pub root_span: Range<usize>,
    pub workers: usize,
    pub pid_file: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub control_socket: Option<PathBuf>,
    pub log: LogConfig,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub listeners: Vec<DraftListener>,
    pub routes: Vec<DraftRoute>,
    pub upstreams: Vec<DraftUpstream>,
    pub admin: Option<crate::model::Admin>,
    /// `[protect]`; its `rate_limits` stay empty until assembly.
    pub protect: crate::model::Protect,
    pub rate_limits: Vec<DraftRateLimit>,
    pub resolver: Option<crate::model::Resolver>,
    pub cache: crate::model::CacheConfig,
    /// Where `[cache.shared]` was written: it needs `[fleet]`.
    pub cache_shared: Option<Mention>,
    pub http2: crate::model::Http2,
    pub compress: crate::model::CompressConfig,
    pub http: crate::model::Http,
    pub fleet: Option<crate::model::Fleet>,
    pub mirrors: Vec<DraftMirrorSet>,
    pub acme: Option<acme::DraftAcme>,
    pub dns: Option<dns::DraftDns>,
}

pub(crate) struct DraftListener {
    /// `None` when the `name` key is invalid.
    pub name: Option<Mention>,
    /// The name was not written and comes from the address text.
    pub name_defaulted: bool,
    /// `None` when missing or invalid.
    pub address: Option<(SocketAddr, Mention)>,
    pub backlog: u32,
    pub protect: crate::model::ListenerProtect,
    pub tls: Option<crate::model::ListenerTls>,
    /// Where `tls` asked for automatic certificates (it needs `[acme]`).
    pub tls_auto: Option<Mention>,
    pub proxy_protocol: Vec<crate::model::IpNet>,
    pub trusted: crate::model::TrustedProxies,
    pub h2c: bool,
    pub h2_only: bool,
    pub mail: Option<Box<crate::model::MailListener>>,
}

// The schema's keys, table by table. docs/config.md documents each one (a
// test checks).
pub(crate) const ROOT_KEYS: &[&str] = &[
    "workers",
    "pid_file",
    "user",
    "group",
    "control_socket",
    "log",
    "limits",
    "timeouts",
    "listener",
    "route",
    "upstream",
    "admin",
    "protect",
    "rate_limit",
    "resolver",
    "cache",
    "http2",
    "compress",
    "fleet",
    "mirrors",
    "acme",
    "dns",
    "http",
];
pub(crate) const LOG_KEYS: &[&str] = &["access", "format", "level", "error", "error_format"];
pub(crate) const LIMIT_KEYS: &[&str] = &[
    "max_request_line",
    "max_header_bytes",
    "max_headers",
    "max_body",
    "max_requests_per_connection",
    "max_rewrites",
];
pub(crate) const TIMEOUT_KEYS: &[&str] = &[
    "request_head",
    "keepalive",
    "client_body",
    "client_send",
    "upstream_connect",
    "upstream_read",
    "upstream_write",
    "grace",
    "tunnel_idle",
];
pub(crate) const LISTENER_KEYS: &[&str] = &[
    "name",
    "address",
    "backlog",
    // Protection (walk/protect.rs).
    "allow",
    "deny",
    "max_connections",
    "max_connections_per_ip",
    "max_connections_per_prefix",
    "client_prefix_v4",
    "client_prefix_v6",
    // TLS (walk/tls.rs) and the PROXY protocol.
    "tls",
    "proxy_protocol",
    "http2",
    // Forwarded fields from proxies in front (walk/protect.rs).
    "trusted_proxies",
    "forwarded_header",
    // The front end (walk/mail.rs).
    "protocol",
    "mail",
];
#[cfg(test)]
pub(crate) use acme::{ACME_DNS_KEYS, ACME_KEYS, ON_DEMAND_KEYS};
#[cfg(test)]
pub(crate) use admin::ADMIN_KEYS;
pub use admin::origin as parse_origin;
#[cfg(test)]
pub(crate) use cache::{CACHE_KEYS, DISK_KEYS, ROUTE_KEYS as ROUTE_CACHE_KEYS, SHARED_KEYS};
#[cfg(test)]
pub(crate) use compress::COMPRESS_KEYS;
#[cfg(test)]
pub(crate) use dns::{DNS_KEYS, FLEET_RECORD_KEYS, ZONE_KEYS};
#[cfg(test)]
pub(crate) use fleet::FLEET_KEYS;
#[cfg(test)]
pub(crate) use http2::HTTP2_KEYS;
#[cfg(test)]
pub(crate) use mail::MAIL_KEYS;
#[cfg(test)]
pub(crate) use mirrors::{MIRROR_KEYS, MIRRORS_KEYS};
#[cfg(test)]
pub(crate) use protect::{PROTECT_KEYS, RATE_LIMIT_KEYS};
#[cfg(test)]
pub(crate) use resolver::RESOLVER_KEYS;
#[cfg(test)]
pub(crate) use rewrite::{KEYS as ROUTE_REWRITE_KEYS, RULE_KEYS as REWRITE_RULE_KEYS};
#[cfg(test)]
pub(crate) use route::KEYS as ROUTE_KEYS;
#[cfg(test)]
pub(crate) use shape::{HTTP_KEYS, PAGE_KEYS, ROUTE_KEYS as ROUTE_SHAPE_KEYS};
#[cfg(test)]
pub(crate) use static_opts::KEYS as STATIC_KEYS;
#[cfg(test)]
pub(crate) use tls::{CERT_KEYS, TLS_KEYS, UPSTREAM_TLS_KEYS};
#[cfg(test)]
pub(crate) use upstream::{HEALTH_CHECK_KEYS, SERVER_KEYS, UPSTREAM_KEYS};

pub(crate) use acme::check_acme;

pub(crate) fn walk(sink: &mut Sink<'_>, root: &DeTable<'_>, root_span: Range<usize>) -> Draft {
    let fields = Fields::new(sink, root, root_span.clone(), "", ROOT_KEYS);
    let workers = fields.get("workers").and_then(|i| workers(sink, i));
    let pid_file = fields
        .get("pid_file")
        .and_then(|i| i.text(sink))
        .map(PathBuf::from);
    let user = fields.get("user").and_then(|i| basics::account(sink, i));
    let group = fields.get("group").and_then(|i| basics::account(sink, i));
    if let (Some(i), None, Some(_)) = (fields.get("group"), &user, &group) {
        i.error(
            sink,
            "`group` needs `user`: levee changes its group only as it leaves root",
        );
    }
    let control_socket = fields
        .get("control_socket")
        .and_then(|i| i.text(sink))
        .map(PathBuf::from);
    let log = fields
        .get("log")
        .map(|i| basics::log(sink, i))
        .unwrap_or_default();
    let limits = fields
        .get("limits")
        .map(|i| basics::limits(sink, i))
        .unwrap_or_default();
    let timeouts = fields
        .get("timeouts")
        .map(|i| basics::timeouts(sink, i))
        .unwrap_or_default();
    let listeners = tables(sink, fields.get("listener"))
        .iter()
        .filter_map(|item| listener(sink, item))
        .collect();
    // Before the routes: a route's `compress` starts from it.
    let compress = fields
        .get("compress")
        .map(|i| compress::site(sink, i))
        .unwrap_or_default();
    let routes = tables(sink, fields.get("route"))
        .iter()
        .filter_map(|item| route::route(sink, item, &compress))
        .collect();
    let upstreams = fields
        .get("upstream")
        .map(|i| upstream::upstreams(sink, i))
        .unwrap_or_default();
    let admin = fields.get("admin").and_then(|i| admin::admin(sink, i));
    let protect = fields
        .get("protect")
        .map(|i| protect::protect(sink, i))
        .unwrap_or_default();
    let rate_limits = fields
        .get("rate_limit")
        .map(|i| protect::rate_limits(sink, i))
        .unwrap_or_default();
    let resolver = fields
        .get("resolver")
        .and_then(|i| resolver::resolver(sink, i));
    let (cache, cache_shared) = fields
        .get("cache")
        .map(|i| cache::cache(sink, i))
        .unwrap_or_default();
    let http = fields
        .get("http")
        .map(|i| shape::http(sink, i))
        .unwrap_or_default();
    let http2 = fields
        .get("http2")
        .map(|i| http2::http2(sink, i))
        .unwrap_or_default();
    let fleet = fields.get("fleet").and_then(|i| fleet::fleet(sink, i));
    let acme = fields.get("acme").and_then(|i| acme::acme(sink, i));
    let mirrors = fields
        .get("mirrors")
        .map(|i| mirrors::mirror_sets(sink, i))
        .unwrap_or_default();
    let dns = fields.get("dns").and_then(|i| dns::dns(sink, i));
    Draft {
        dns,
        fleet,
        cache_shared,
        mirrors,
        acme,
        root_span,
        http2,
        compress,
        http,
        workers: workers.unwrap_or_else(auto_workers),
        pid_file,
        user,
        group,
        control_socket,
        log,
        limits,
        timeouts,
        listeners,
        routes,
        upstreams,
        admin,
        protect,
        rate_limits,
        resolver,
        cache,
    }
}

/// The named tables of a table such as `[rate_limit.NAME]`, sorted into
/// file order, each with its name as written. An empty name is reported
/// (as `what`, e.g. "a rate limit name") and its table skipped.
pub(crate) fn named<'t, 'i>(
    sink: &mut Sink<'_>,
    item: &Item<'t, 'i>,
    what: &str,
) -> Vec<(Mention, Item<'t, 'i>)> {
    let Some(table) = item.table(sink) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in table.iter() {
        let entry = Item {
            key: crate::tree::child(&item.key, name.get_ref()),
            key_span: name.span(),
            value,
        };
        if name.get_ref().is_empty() {
            sink.error(name.span(), &entry.key, format!("{what} must not be empty"));
            continue;
        }
        let mention = Mention {
            text: name.get_ref().to_string(),
            key: entry.key.clone(),
            span: name.span(),
        };
        out.push((mention, entry));
    }
    out.sort_by_key(|(m, _)| m.span.start);
    out
}

/// The elements of an array of tables such as `[[listener]]`.
fn tables<'t, 'i>(sink: &mut Sink<'_>, item: Option<&Item<'t, 'i>>) -> Vec<Item<'t, 'i>> {
    let Some(item) = item else {
        return Vec::new();
    };
    if item.value.get_ref().is_table() {
        let name = item.key.as_str();
        item.error(
            sink,
            format!("expected an array of tables: write [[{name}]], not [{name}]"),
        );
        return Vec::new();
    }
    item.array(sink).unwrap_or_default()
}

/// The core count, within `1..=MAX_WORKERS`.
pub(crate) fn auto_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS)
}

fn workers(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<usize> {
    if let DeValue::String(s) = item.value.get_ref() {
        if s == "auto" {
            return Some(auto_workers());
        }
        item.error(
            sink,
            format!("expected \"auto\" or an integer, found \"{s}\""),
        );
        return None;
    }
    let n = item.int_in(sink, 1, MAX_WORKERS as u64)?;
    usize::try_from(n).ok()
}

fn listener(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<DraftListener> {
    let fields = Fields::of(sink, item, LISTENER_KEYS)?;
    let address = fields.require(sink, "address").and_then(|i| {
        let text = i.text(sink)?;
        match text.parse::<SocketAddr>() {
            Ok(SocketAddr::V6(v6)) if v6.ip().to_ipv4_mapped().is_some() => {
                // IPv6 listeners are bound IPv6-only, where the OS refuses
                // a mapped address (EINVAL).
                let v4 = v6.ip().to_ipv4_mapped().map_or_else(String::new, |ip| ip.to_string());
                i.error(
                    sink,
                    format!(
                        "`{text}` is an IPv4-mapped IPv6 address, which cannot be listened on; write \"{v4}:{}\"",
                        v6.port()
                    ),
                );
                None
            }
            Ok(addr) => Some((addr, Mention::of(i, text))),
            Err(_) => {
                i.error(
                    sink,
                    format!("invalid address `{text}`: expected IP:port such as \"0.0.0.0:8080\" or \"[::]:8080\""),
                );
                None
            }
        }
    });
    let (name, name_defaulted) = match fields.get("name") {
        Some(i) => (i.text(sink).map(|s| Mention::of(i, s)), false),
        None => {
            // Default to the address text, even an invalid one, so routes
            // naming it do not report a second, misleading error.
            let from_address = fields
                .get("address")
                .and_then(|i| i.value.get_ref().as_str().map(|s| Mention::of(i, s)));
            (from_address, true)
        }
    };
    let backlog = fields
        .get("backlog")
        .and_then(|i| i.int_in(sink, 1, i32::MAX as u64))
        .map_or(crate::model::DEFAULT_BACKLOG, |n| n as u32);
    let protect = protect::listener_protect(sink, &fields);
    let tls = fields.get("tls").and_then(|i| tls::listener_tls(sink, i));
    let tls_auto = match (&tls, fields.get("tls")) {
        (Some(t), Some(i)) if t.auto => Some(Mention::of(i, "auto")),
        _ => None,
    };
    let proxy_protocol = fields
        .get("proxy_protocol")
        .map(|i| tls::networks(sink, i))
        .unwrap_or_default();
    let trusted = protect::trusted_proxies(sink, &fields);
    let (h2c, h2_only) = match fields.get("http2") {
        None => (false, false),
        Some(i) => match i.str(sink) {
            Some("prior-knowledge") => (true, false),
            Some("only") if tls.is_some() => {
                i.error(
                    sink,
                    "`only` is for cleartext (h2c) listeners: a TLS listener chooses HTTP/2 by ALPN (`alpn = [\"h2\"]`)",
                );
                (false, false)
            }
            Some("only") => (true, true),
            Some("off") => (false, false),
            Some(other) => {
                i.error(
                    sink,
                    format!(
                        "`{other}`: expected \"prior-knowledge\" (h2c beside HTTP/1), \"only\" (h2c alone) or \"off\""
                    ),
                );
                (false, false)
            }
            None => (false, false),
        },
    };
    let mail = mail::front_end(sink, &fields);
    let mut tls = tls;
    if let (Some(t), Some(_)) = (&mut tls, &mail) {
        // Mail protocols negotiate no ALPN name.
        t.alpn.clear();
    }
    Some(DraftListener {
        name,
        name_defaulted,
        address,
        backlog,
        protect,
        tls,
        tls_auto,
        proxy_protocol,
        trusted,
        h2c,
        h2_only,
        mail,
    })
}

#[cfg(test)]
mod tests;
