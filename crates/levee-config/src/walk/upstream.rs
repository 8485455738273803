//! `[upstream.NAME]` tables (servers, balancing, health, retries).

use toml::de::DeValue;

use super::Mention;
use crate::error::Sink;
use crate::model::{
    Balance, CheckKind, DEFAULT_STICKY_COOKIE, DEFAULT_UPSTREAM_KEEPALIVE,
    DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT, HashKey, HealthCheck, HttpCheck, Server, StatusSet,
    Upstream, UpstreamProtocol,
};
use crate::names;
use crate::tree::{Fields, Item};

pub(crate) struct DraftUpstream {
    pub name: Mention,
    pub upstream: Upstream,
}

pub(crate) const UPSTREAM_KEYS: &[&str] = &[
    "servers",
    "keepalive",
    "keepalive_timeout",
    "balance",
    "hash_key",
    "sticky_cookie",
    // The cookie's attributes (walk/shape.rs).
    "sticky_cookie_secure",
    "sticky_cookie_same_site",
    "sticky_cookie_max_age",
    "max_fails",
    "fail_timeout",
    "max_ejection",
    "eject_on_status",
    "max_ejected_percent",
    "slow_start",
    "retries",
    "retry_on_status",
    "retry_budget",
    "resolve_interval",
    "health_check",
    // TLS to the servers (walk/tls.rs), the PROXY protocol header.
    "tls",
    "proxy_protocol",
    // HTTP/1.1 or HTTP/2 to the servers.
    "protocol",
];
pub(crate) const SERVER_KEYS: &[&str] = &["address", "weight", "backup"];
pub(crate) const HEALTH_CHECK_KEYS: &[&str] = &[
    "type", "interval", "timeout", "rise", "fall", "jitter", "method", "path", "status", "body",
];

pub(crate) fn upstreams(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Vec<DraftUpstream> {
    super::named(sink, item, "an upstream name")
        .into_iter()
        .filter_map(|(name, entry)| upstream(sink, &entry, &name.text))
        .collect()
}

fn upstream(sink: &mut Sink<'_>, item: &Item<'_, '_>, name: &str) -> Option<DraftUpstream> {
    let fields = Fields::of(sink, item, UPSTREAM_KEYS)?;
    let mut servers = Vec::new();
    if let Some(list) = fields.require(sink, "servers").and_then(|i| i.array(sink)) {
        if list.is_empty()
            && let Some(i) = fields.get("servers")
        {
            i.error(sink, "an upstream needs at least one server");
        }
        for entry in &list {
            if let Some(s) = server(sink, entry) {
                if let Some(first) = servers
                    .iter()
                    .position(|x: &Server| x.address.eq_ignore_ascii_case(&s.address))
                {
                    entry.error(
                        sink,
                        format!("duplicate server `{}` (also servers[{first}])", s.address),
                    );
                }
                servers.push(s);
            }
        }
        if !servers.is_empty()
            && servers.iter().all(|s| s.backup)
            && let Some(i) = fields.get("servers")
        {
            i.error(
                sink,
                "every server is a backup; at least one must be a primary",
            );
        }
    }
    let mut u = Upstream::new(name, servers);
    u.tls = fields
        .get("tls")
        .and_then(|i| super::tls::upstream_tls(sink, i));
    u.proxy_protocol = fields
        .get("proxy_protocol")
        .and_then(|i| match i.str(sink)? {
            "v1" => Some(1),
            "v2" => Some(2),
            other => {
                i.error(sink, format!("`{other}`: expected \"v1\" or \"v2\""));
                None
            }
        });
    u.protocol = protocol(sink, &fields, &u);
    u.keepalive = fields
        .get("keepalive")
        .and_then(|i| i.int_in(sink, 0, 1_000_000))
        .map_or(DEFAULT_UPSTREAM_KEEPALIVE, |n| n as usize);
    u.keepalive_timeout = fields
        .get("keepalive_timeout")
        .and_then(|i| i.duration(sink))
        .unwrap_or(DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT);
    u.balance = balance(sink, &fields);
    if let Some(n) = fields
        .get("max_fails")
        .and_then(|i| i.int_in(sink, 0, 1000))
    {
        u.passive.max_fails = n as u32;
    }
    if let Some(d) = fields
        .get("fail_timeout")
        .and_then(|i| i.positive_duration(sink))
    {
        u.passive.fail_timeout = d;
    }
    if let Some(d) = fields
        .get("max_ejection")
        .and_then(|i| i.positive_duration(sink))
    {
        u.passive.max_ejection = d;
    }
    if u.passive.max_ejection < u.passive.fail_timeout
        && let Some(i) = fields.get("max_ejection").or(fields.get("fail_timeout"))
    {
        i.error(sink, "max_ejection must not be shorter than fail_timeout");
    }
    if let Some(list) = fields.get("eject_on_status").and_then(|i| i.array(sink)) {
        u.passive.on_status = StatusSet::of(&statuses_5xx(sink, &list));
    }
    if let Some(n) = fields
        .get("max_ejected_percent")
        .and_then(|i| i.int_in(sink, 0, 100))
    {
        u.passive.max_ejected_percent = n as u32;
    }
    if let Some(d) = fields.get("slow_start").and_then(|i| i.duration(sink)) {
        u.slow_start = d;
    }
    if let Some(n) = fields.get("retries").and_then(|i| i.int_in(sink, 0, 16)) {
        u.retry.retries = n as u32;
    }
    if let Some(list) = fields.get("retry_on_status").and_then(|i| i.array(sink)) {
        u.retry.on_status = statuses_5xx(sink, &list);
    }
    if let Some(n) = fields
        .get("retry_budget")
        .and_then(|i| i.int_in(sink, 0, 100))
    {
        u.retry.budget_percent = n as u32;
    }
    if let Some(d) = fields
        .get("resolve_interval")
        .and_then(|i| i.positive_duration(sink))
    {
        u.resolve_interval = d;
    }
    u.health_check = fields
        .get("health_check")
        .and_then(|i| health_check(sink, i));
    if (u.tls.is_some() || u.protocol.is_http2())
        && let Some(HealthCheck {
            kind: CheckKind::Http(_),
            ..
        }) = &u.health_check
        && let Some(i) = fields.get("health_check")
    {
        // The probe speaks plain HTTP/1.1; it would mark every TLS or
        // HTTP/2-only server down.
        i.error(
            sink,
            "an upstream with `tls` or an HTTP/2 `protocol` supports only `type = \"tcp\"` health checks",
        );
    }
    Some(DraftUpstream {
        name: Mention {
            text: name.to_owned(),
            key: item.key.clone(),
            span: item.key_span.clone(),
        },
        upstream: u,
    })
}

/// A list of 5xx statuses (`retry_on_status`, `eject_on_status`); each
/// entry outside 500–599 is an error of its own.
fn statuses_5xx(sink: &mut Sink<'_>, list: &[Item<'_, '_>]) -> Vec<u16> {
    list.iter()
        .filter_map(|s| s.int_in(sink, 500, 599).map(|n| n as u16))
        .collect()
}

/// `protocol`: `"h2"` needs the group's TLS, `"h2c"` refuses it, and
/// neither takes a PROXY header (one HTTP/2 connection carries the streams
/// of many clients).
fn protocol(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, u: &Upstream) -> UpstreamProtocol {
    let Some(i) = fields.get("protocol") else {
        return UpstreamProtocol::Http1;
    };
    let chosen = match i.str(sink) {
        Some("http1") => UpstreamProtocol::Http1,
        Some("h2c") => UpstreamProtocol::H2c,
        Some("h2") => UpstreamProtocol::H2,
        Some(other) => {
            i.error(
                sink,
                format!("`{other}`: expected \"http1\", \"h2c\" or \"h2\""),
            );
            return UpstreamProtocol::Http1;
        }
        None => return UpstreamProtocol::Http1,
    };
    match chosen {
        UpstreamProtocol::H2 if u.tls.is_none() => i.error(
            sink,
            "`h2` speaks TLS: add an [upstream.NAME.tls] table, or use \"h2c\" for cleartext",
        ),
        UpstreamProtocol::H2c if u.tls.is_some() => i.error(
            sink,
            "`h2c` is cleartext: with [upstream.NAME.tls] use \"h2\"",
        ),
        _ => {}
    }
    if chosen.is_http2() && u.proxy_protocol.is_some() {
        i.error(
            sink,
            "an HTTP/2 upstream cannot take `proxy_protocol`: its connections carry many clients' streams",
        );
    }
    chosen
}

/// `balance` with the option only some algorithms take.
fn balance(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> Balance {
    let chosen = match fields.get("balance") {
        None => Balance::RoundRobin,
        Some(i) => match i.str(sink) {
            Some("round_robin") => Balance::RoundRobin,
            Some("least_conn") => Balance::LeastConn,
            Some("latency") => Balance::Latency,
            // The key is filled in below.
            Some("hash") => Balance::Hash(HashKey::ClientIp),
            Some("sticky") => Balance::Sticky {
                cookie: DEFAULT_STICKY_COOKIE.to_owned(),
                attributes: Default::default(),
            },
            Some(other) => {
                i.error(
                    sink,
                    format!(
                        "unknown balance `{other}`; expected \"round_robin\", \"least_conn\", \"latency\", \"hash\" or \"sticky\""
                    ),
                );
                Balance::RoundRobin
            }
            None => Balance::RoundRobin,
        },
    };
    let hash_key = fields.get("hash_key");
    let sticky_cookie = fields.get("sticky_cookie");
    let attributes =
        super::shape::sticky_attributes(sink, fields, matches!(chosen, Balance::Sticky { .. }));
    match chosen {
        Balance::Hash(_) => {
            let Some(i) = fields.require(sink, "hash_key") else {
                return Balance::RoundRobin;
            };
            let key = i.text(sink).and_then(|text| match parse_hash_key(text) {
                Ok(key) => Some(key),
                Err(message) => {
                    i.error(sink, message);
                    None
                }
            });
            if let Some(i) = sticky_cookie {
                i.error(
                    sink,
                    "`sticky_cookie` is only allowed with balance = \"sticky\"",
                );
            }
            Balance::Hash(key.unwrap_or(HashKey::ClientIp))
        }
        Balance::Sticky { cookie, .. } => {
            let cookie = match sticky_cookie {
                Some(i) => i
                    .text(sink)
                    .and_then(|name| match check_cookie_name(name) {
                        Ok(()) => Some(name.to_owned()),
                        Err(m) => {
                            i.error(sink, m);
                            None
                        }
                    })
                    .unwrap_or(cookie),
                None => cookie,
            };
            if let Some(i) = hash_key {
                i.error(sink, "`hash_key` is only allowed with balance = \"hash\"");
            }
            Balance::Sticky { cookie, attributes }
        }
        other => {
            if let Some(i) = hash_key {
                i.error(sink, "`hash_key` is only allowed with balance = \"hash\"");
            }
            if let Some(i) = sticky_cookie {
                i.error(
                    sink,
                    "`sticky_cookie` is only allowed with balance = \"sticky\"",
                );
            }
            other
        }
    }
}

/// `"client_ip"`, `"uri"`, `"header:NAME"` or `"cookie:NAME"`.
pub(crate) fn parse_hash_key(text: &str) -> Result<HashKey, String> {
    match text {
        "client_ip" => return Ok(HashKey::ClientIp),
        "uri" => return Ok(HashKey::Uri),
        _ => {}
    }
    if let Some(name) = text.strip_prefix("header:") {
        if !name.is_empty() && name.bytes().all(is_tchar) {
            return Ok(HashKey::Header(name.to_ascii_lowercase()));
        }
        return Err(format!("invalid header name in hash_key `{text}`"));
    }
    if let Some(name) = text.strip_prefix("cookie:") {
        check_cookie_name(name)?;
        return Ok(HashKey::Cookie(name.to_owned()));
    }
    Err(format!(
        "unknown hash_key `{text}`; expected \"client_ip\", \"uri\", \"header:NAME\" or \"cookie:NAME\""
    ))
}

fn check_cookie_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(is_tchar) {
        Ok(())
    } else {
        Err(format!("invalid cookie name `{name}`"))
    }
}

/// An HTTP token character (RFC 9110).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn health_check(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<HealthCheck> {
    let fields = Fields::of(sink, item, HEALTH_CHECK_KEYS)?;
    let mut hc = HealthCheck::default();
    let tcp = match fields.get("type") {
        None => false,
        Some(i) => match i.str(sink) {
            Some("http") | None => false,
            Some("tcp") => true,
            Some(other) => {
                i.error(
                    sink,
                    format!("unknown check type `{other}`; expected \"http\" or \"tcp\""),
                );
                false
            }
        },
    };
    if let Some(d) = fields
        .get("interval")
        .and_then(|i| i.positive_duration(sink))
    {
        hc.interval = d;
    }
    if let Some(d) = fields
        .get("timeout")
        .and_then(|i| i.positive_duration(sink))
    {
        hc.timeout = d;
    }
    if let Some(n) = fields.get("rise").and_then(|i| i.int_in(sink, 1, 100)) {
        hc.rise = n as u32;
    }
    if let Some(n) = fields.get("fall").and_then(|i| i.int_in(sink, 1, 100)) {
        hc.fall = n as u32;
    }
    if let Some(n) = fields.get("jitter").and_then(|i| i.int_in(sink, 0, 100)) {
        hc.jitter_percent = n as u32;
    }
    let mut http = HttpCheck::default();
    let http_only = ["method", "path", "status", "body"];
    if tcp {
        for key in http_only {
            if let Some(i) = fields.get(key) {
                i.error(
                    sink,
                    format!("`{key}` is only allowed with type = \"http\""),
                );
            }
        }
        hc.kind = CheckKind::Tcp;
        return Some(hc);
    }
    if let Some(i) = fields.get("method")
        && let Some(m) = i.text(sink)
    {
        if m.bytes().all(is_tchar) {
            http.method = m.to_owned();
        } else {
            i.error(sink, format!("invalid method `{m}`"));
        }
    }
    if let Some(i) = fields.get("path")
        && let Some(p) = i.text(sink)
    {
        if p.starts_with('/') && !p.bytes().any(|b| b == b' ' || b == b'#') {
            http.path = p.to_owned();
        } else {
            i.error(sink, "must start with `/` and contain no spaces or `#`");
        }
    }
    if let Some(i) = fields.get("status")
        && let Some(range) = status_range(sink, i)
    {
        http.status = range;
    }
    if let Some(b) = fields.get("body").and_then(|i| i.text(sink)) {
        http.body = Some(b.to_owned());
    }
    hc.kind = CheckKind::Http(http);
    Some(hc)
}

/// `200` or `"200-399"`.
fn status_range(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<(u16, u16)> {
    if let DeValue::String(s) = item.value.get_ref() {
        let parsed = s.split_once('-').and_then(|(a, b)| {
            let a: u16 = a.trim().parse().ok()?;
            let b: u16 = b.trim().parse().ok()?;
            ((100..=599).contains(&a) && (a..=599).contains(&b)).then_some((a, b))
        });
        if parsed.is_none() {
            item.error(
                sink,
                format!("invalid status range `{s}`; expected \"LOW-HIGH\" within 100-599"),
            );
        }
        return parsed;
    }
    let n = item.int_in(sink, 100, 599)? as u16;
    Some((n, n))
}

/// `"host:port"` or `{ address = "host:port", weight = 2, backup = true }`.
fn server(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Server> {
    match item.value.get_ref() {
        DeValue::String(s) => checked_server(sink, Some((item, s.as_ref())), Some(1), false),
        DeValue::Table(_) => {
            let fields = Fields::of(sink, item, SERVER_KEYS)?;
            let weight = match fields.get("weight") {
                Some(i) => i.int_in(sink, 1, 1000).map(|n| n as u32),
                None => Some(1),
            };
            let backup = fields
                .get("backup")
                .and_then(|i| i.bool(sink))
                .unwrap_or(false);
            let address = fields
                .require(sink, "address")
                .and_then(|i| i.str(sink).map(|s| (i, s)));
            checked_server(sink, address, weight, backup)
        }
        other => {
            item.error(
                sink,
                format!(
                    "expected \"host:port\" or {{ address = \"host:port\", weight = N }}, found {}",
                    other.type_str()
                ),
            );
            None
        }
    }
}

fn checked_server(
    sink: &mut Sink<'_>,
    address: Option<(&Item<'_, '_>, &str)>,
    weight: Option<u32>,
    backup: bool,
) -> Option<Server> {
    let (at, address) = address?;
    if let Err(message) = names::check_server_address(address) {
        at.error(sink, message);
        return None;
    }
    Some(Server {
        address: address.to_owned(),
        weight: weight?,
        backup,
    })
}

#[cfg(test)]
mod tests;
