//! Protection keys: the `[protect]` table, `[rate_limit.NAME]` rules, and the
//! protection keys of `[[listener]]` and `[[route]]` tables.

use super::Mention;
use crate::error::Sink;
use crate::model::{
    AccessList, BasicAuth, DEFAULT_AUTH_REALM, DEFAULT_CLIENT_PREFIX_V6, DEFAULT_RATE_BURST,
    DEFAULT_RATE_MAX_KEYS, DEFAULT_RATE_STATUS, ForwardedHeader, IpNet, KeyPart, ListenerProtect,
    Protect, RateLimit, RouteProtect, Scope, TrustedProxies,
};
use crate::tree::{Fields, Item};
use crate::units;

pub(crate) const PROTECT_KEYS: &[&str] = &["min_progress", "progress_window", "shed_idle_at"];
pub(crate) const RATE_LIMIT_KEYS: &[&str] = &[
    "key", "rate", "burst", "nodelay", "dry_run", "max_keys", "status", "scope",
];
/// A rate-limit rule with where its name was written.
pub(crate) struct DraftRateLimit {
    pub name: Mention,
    pub rule: RateLimit,
    /// Where `scope = "fleet"` was written, for the check that `[fleet]` is set.
    pub fleet_scope: Option<Mention>,
}

/// The `[protect]` table; rate limits are filled in separately.
pub(crate) fn protect(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Protect {
    let mut p = Protect::default();
    let Some(fields) = Fields::of(sink, item, PROTECT_KEYS) else {
        return p;
    };
    if let Some(n) = fields.get("min_progress").and_then(|i| i.size(sink)) {
        p.min_progress = n;
    }
    if let Some(d) = fields
        .get("progress_window")
        .and_then(|i| i.positive_duration(sink))
    {
        p.progress_window = d;
    }
    if let Some(n) = fields
        .get("shed_idle_at")
        .and_then(|i| i.int_in(sink, 1, 100))
    {
        p.shed_idle_at = n as u8;
    }
    p
}

/// The `[rate_limit]` table of named rules, in file order.
pub(crate) fn rate_limits(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Vec<DraftRateLimit> {
    super::named(sink, item, "a rate limit name")
        .into_iter()
        .filter_map(|(name, entry)| {
            let (rule, fleet_scope) = rate_limit(sink, &entry, &name.text)?;
            Some(DraftRateLimit {
                name,
                rule,
                fleet_scope,
            })
        })
        .collect()
}

fn rate_limit(
    sink: &mut Sink<'_>,
    item: &Item<'_, '_>,
    name: &str,
) -> Option<(RateLimit, Option<Mention>)> {
    let fields = Fields::of(sink, item, RATE_LIMIT_KEYS)?;
    let key = fields.require(sink, "key").and_then(|i| {
        let parts = i.one_or_many(sink)?;
        let mut key = Vec::new();
        for (i, text) in parts {
            match parse_key_part(text) {
                Ok(part) => key.push(part),
                Err(message) => i.error(sink, message),
            }
        }
        Some(key)
    });
    let rate = fields.require(sink, "rate").and_then(|i| {
        let text = i.str(sink)?;
        parse_rate(text).map_err(|m| i.error(sink, m)).ok()
    });
    let burst = match fields.get("burst") {
        Some(i) => i.int_in(sink, 1, 1_000_000)? as u32,
        None => DEFAULT_RATE_BURST,
    };
    let nodelay = match fields.get("nodelay") {
        Some(i) => i.bool(sink)?,
        None => true,
    };
    let dry_run = match fields.get("dry_run") {
        Some(i) => i.bool(sink)?,
        None => false,
    };
    let max_keys = match fields.get("max_keys") {
        Some(i) => i.int_in(sink, 1, 100_000_000)? as u32,
        None => DEFAULT_RATE_MAX_KEYS,
    };
    let status = match fields.get("status") {
        Some(i) => i.int_in(sink, 400, 599)? as u16,
        None => DEFAULT_RATE_STATUS,
    };
    let (requests, per) = rate?;
    let (scope, fleet_scope) = match fields.get("scope") {
        None => (Scope::Local, None),
        Some(i) => match i.str(sink)? {
            "local" => (Scope::Local, None),
            "fleet" => {
                // Fleet state counts time in microseconds (docs/fleet.md).
                if per.as_micros() < u128::from(requests) {
                    i.error(
                        sink,
                        "a fleet-scoped rate may not exceed one request per microsecond",
                    );
                    return None;
                }
                (Scope::Fleet, Some(Mention::of(i, "fleet")))
            }
            other => {
                i.error(
                    sink,
                    format!("unknown scope `{other}`; expected \"local\" or \"fleet\""),
                );
                return None;
            }
        },
    };
    let rule = RateLimit {
        name: name.to_owned(),
        key: key?,
        requests,
        per,
        burst,
        nodelay,
        dry_run,
        max_keys,
        status,
        scope,
    };
    Some((rule, fleet_scope))
}

/// `"10/s"`, `"5/m"`, `"3/10m"`: requests, then a duration (a bare unit means one of it).
pub(crate) fn parse_rate(text: &str) -> Result<(u32, std::time::Duration), String> {
    let bad = || {
        format!(
            "invalid rate `{text}`: expected requests per duration such as \"10/s\", \"5/m\" or \"3/10m\""
        )
    };
    let (n, per) = text.split_once('/').ok_or_else(bad)?;
    let requests: u32 = match n.trim().parse() {
        Ok(n) if (1..=1_000_000).contains(&n) => n,
        _ => {
            return Err(format!(
                "invalid rate `{text}`: requests must be 1..=1000000"
            ));
        }
    };
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
        units::parse_duration(per).map_err(|_| bad())?
    } else {
        units::parse_duration(&format!("1{per}")).map_err(|_| bad())?
    };
    if per.is_zero() {
        return Err(bad());
    }
    Ok((requests, per))
}

/// `client_ip[/V4[/V6]]`, `header:NAME`, `cookie:NAME`, `query:NAME`, `path`.
pub(crate) fn parse_key_part(text: &str) -> Result<KeyPart, String> {
    let bad = |why: &str| format!("invalid rate-limit key `{text}`: {why}");
    if text == "path" {
        return Ok(KeyPart::Path);
    }
    if let Some(rest) = text.strip_prefix("client_ip") {
        if rest.is_empty() {
            return Ok(KeyPart::ClientIp { v4: 32, v6: 128 });
        }
        let mut lens = rest.strip_prefix('/').unwrap_or("x").split('/');
        let v4 = lens.next().and_then(|s| s.parse::<u8>().ok());
        let v6 = match lens.next() {
            None => Some(DEFAULT_CLIENT_PREFIX_V6),
            Some(s) => s.parse::<u8>().ok(),
        };
        return match (v4, v6, lens.next()) {
            (Some(v4 @ 1..=32), Some(v6 @ 1..=128), None) => Ok(KeyPart::ClientIp { v4, v6 }),
            _ => Err(bad(
                "expected client_ip, client_ip/V4 or client_ip/V4/V6 with prefix lengths 1..=32 and 1..=128",
            )),
        };
    }
    let Some((kind, name)) = text.split_once(':') else {
        return Err(bad(
            "expected client_ip, path, header:NAME, cookie:NAME or query:NAME",
        ));
    };
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(bad("the name must be non-empty, without spaces"));
    }
    match kind {
        "header" => Ok(KeyPart::Header(name.to_ascii_lowercase())),
        "cookie" => Ok(KeyPart::Cookie(name.to_owned())),
        "query" => Ok(KeyPart::Query(name.to_owned())),
        _ => Err(bad("expected header:, cookie: or query: before the name")),
    }
}

/// `allow` and `deny` of a listener or route table.
fn access_list(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> AccessList {
    let mut list = AccessList::default();
    for (key, slot) in [("allow", &mut list.allow), ("deny", &mut list.deny)] {
        let Some(items) = fields.get(key).and_then(|i| i.one_or_many(sink)) else {
            continue;
        };
        for (i, text) in items {
            match text.parse::<IpNet>() {
                Ok(net) => slot.push(net),
                Err(message) => i.error(sink, message),
            }
        }
    }
    list
}

pub(crate) fn listener_protect(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> ListenerProtect {
    let mut p = ListenerProtect {
        access: access_list(sink, fields),
        ..ListenerProtect::default()
    };
    for (key, slot) in [
        ("max_connections", &mut p.max_connections),
        ("max_connections_per_ip", &mut p.max_connections_per_ip),
        (
            "max_connections_per_prefix",
            &mut p.max_connections_per_prefix,
        ),
    ] {
        if let Some(n) = fields
            .get(key)
            .and_then(|i| i.int_in(sink, 0, u64::from(u32::MAX)))
        {
            *slot = n as u32;
        }
    }
    if let Some(n) = fields
        .get("client_prefix_v4")
        .and_then(|i| i.int_in(sink, 1, 32))
    {
        p.client_prefix_v4 = n as u8;
    }
    if let Some(n) = fields
        .get("client_prefix_v6")
        .and_then(|i| i.int_in(sink, 1, 128))
    {
        p.client_prefix_v6 = n as u8;
    }
    p
}

/// `trusted_proxies` and `forwarded_header` of a listener.
pub(crate) fn trusted_proxies(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> TrustedProxies {
    let networks = fields
        .get("trusted_proxies")
        .map(|i| super::tls::networks(sink, i))
        .unwrap_or_default();
    let header = match fields.get("forwarded_header") {
        None => ForwardedHeader::default(),
        Some(i) => {
            let header = match i.str(sink) {
                Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
                Some("forwarded") => ForwardedHeader::Forwarded,
                Some(other) => {
                    i.error(
                        sink,
                        format!("`{other}`: expected \"x-forwarded-for\" or \"forwarded\""),
                    );
                    ForwardedHeader::default()
                }
                None => ForwardedHeader::default(),
            };
            if fields.get("trusted_proxies").is_none() {
                // It would say where to look, but no one would be believed.
                i.error(sink, "`forwarded_header` needs `trusted_proxies`");
            }
            header
        }
    };
    TrustedProxies { networks, header }
}

/// A route's protections, and the rate-limit names it uses for the cross-check.
pub(crate) fn route_protect(
    sink: &mut Sink<'_>,
    fields: &Fields<'_, '_>,
) -> (RouteProtect, Vec<Mention>) {
    let access = access_list(sink, fields);
    let realm = fields.get("auth_realm").and_then(|i| {
        let r = i.text(sink)?;
        if r.contains('"') || r.contains('\\') {
            i.error(sink, "a realm must not contain `\"` or `\\`");
            return None;
        }
        Some(r)
    });
    let auth = match fields.get("auth_basic_file") {
        Some(i) => i.text(sink).map(|file| BasicAuth {
            file: file.into(),
            realm: realm.unwrap_or(DEFAULT_AUTH_REALM).to_owned(),
        }),
        None => {
            if let Some(i) = fields.get("auth_realm") {
                sink.error(
                    i.key_span.clone(),
                    &i.key,
                    "`auth_realm` needs `auth_basic_file`",
                );
            }
            None
        }
    };
    let mut names = Vec::new();
    if let Some(items) = fields.get("rate_limit").and_then(|i| i.one_or_many(sink)) {
        for (i, name) in items {
            names.push(Mention {
                text: name.to_owned(),
                key: i.key.clone(),
                span: i.span(),
            });
        }
    }
    let protect = RouteProtect {
        access,
        auth,
        rate_limits: names.iter().map(|m| m.text.clone()).collect(),
    };
    (protect, names)
}

/// Every rate-limit name a route uses must name a `[rate_limit.NAME]`.
pub(crate) fn check_rate_limit_refs(
    sink: &mut Sink<'_>,
    defined: &[DraftRateLimit],
    used: &[Mention],
) {
    for m in used {
        if !defined.iter().any(|d| d.name.text == m.text) {
            let names: Vec<&str> = defined.iter().map(|d| d.name.text.as_str()).collect();
            let known = if names.is_empty() {
                "no rate limits are defined".to_owned()
            } else {
                format!("defined rate limits: {}", names.join(", "))
            };
            sink.error(
                m.span.clone(),
                &m.key,
                format!("unknown rate limit `{}`; {known}", m.text),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10/s"), Ok((10, Duration::from_secs(1))));
        assert_eq!(parse_rate("5/m"), Ok((5, Duration::from_secs(60))));
        assert_eq!(parse_rate("3/10m"), Ok((3, Duration::from_secs(600))));
        assert_eq!(parse_rate("1/500ms"), Ok((1, Duration::from_millis(500))));
        for bad in ["10", "0/s", "x/s", "10/", "10/q", "10/0s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_parts() {
        assert_eq!(
            parse_key_part("client_ip"),
            Ok(KeyPart::ClientIp { v4: 32, v6: 128 })
        );
        assert_eq!(
            parse_key_part("client_ip/24"),
            Ok(KeyPart::ClientIp { v4: 24, v6: 64 })
        );
        assert_eq!(
            parse_key_part("client_ip/16/48"),
            Ok(KeyPart::ClientIp { v4: 16, v6: 48 })
        );
        assert_eq!(
            parse_key_part("header:X-Api-Key"),
            Ok(KeyPart::Header("x-api-key".into()))
        );
        assert_eq!(
            parse_key_part("query:code"),
            Ok(KeyPart::Query("code".into()))
        );
        for bad in [
            "client_ip/33",
            "client_ip/",
            "client_ipx",
            "header:",
            "foo:bar",
            "ip",
        ] {
            assert!(parse_key_part(bad).is_err(), "{bad}");
        }
        for part in ["client_ip", "client_ip/24/64", "cookie:s", "path"] {
            let parsed = parse_key_part(part).expect("valid");
            assert_eq!(parse_key_part(&parsed.to_string()), Ok(parsed));
        }
    }

    const FULL: &str = r#"
[protect]
min_progress = "2k"
progress_window = "5s"
shed_idle_at = 80

[rate_limit.promo]
key = "query:code"
rate = "3/h"
burst = 3

[rate_limit.api]
key = ["client_ip/24", "header:X-Key"]
rate = "10/s"
nodelay = false
dry_run = true
max_keys = 1000
status = 503

[[listener]]
address = "127.0.0.1:80"
allow = ["10.0.0.0/8", "::1"]
deny = "10.1.0.0/16"
max_connections = 5000
max_connections_per_ip = 100
max_connections_per_prefix = 500
client_prefix_v6 = 48

[[route]]
path = "/redeem"
respond = "ok"
rate_limit = ["promo", "api"]
allow = "192.0.2.0/24"
auth_basic_file = "/etc/levee/htpasswd"
auth_realm = "staff"
"#;

    #[test]
    fn protection_keys_become_the_model_and_survive_a_round_trip() {
        let config = crate::parse(FULL, std::path::Path::new("t.toml")).expect("valid");
        let p = &config.protect;
        assert_eq!((p.min_progress, p.shed_idle_at), (2048, 80));
        assert_eq!(p.progress_window, Duration::from_secs(5));
        assert_eq!(p.rate_limits.len(), 2);
        let promo = &p.rate_limits[0];
        assert_eq!(promo.name, "promo");
        assert_eq!(promo.key, [KeyPart::Query("code".into())]);
        assert_eq!(
            (promo.requests, promo.per, promo.burst),
            (3, Duration::from_secs(3600), 3)
        );
        assert!(promo.nodelay && !promo.dry_run);
        let api = &p.rate_limits[1];
        assert_eq!(
            api.key,
            [
                KeyPart::ClientIp { v4: 24, v6: 64 },
                KeyPart::Header("x-key".into())
            ]
        );
        assert!(!api.nodelay && api.dry_run);
        assert_eq!((api.max_keys, api.status), (1000, 503));
        let l = &config.listeners[0].protect;
        assert_eq!(l.access.allow.len(), 2);
        assert_eq!(l.access.deny[0].to_string(), "10.1.0.0/16");
        assert_eq!(
            (
                l.max_connections,
                l.max_connections_per_ip,
                l.max_connections_per_prefix
            ),
            (5000, 100, 500)
        );
        assert_eq!((l.client_prefix_v4, l.client_prefix_v6), (24, 48));
        let r = &config.routes[0].protect;
        assert_eq!(r.rate_limits, ["promo", "api"]);
        let auth = r.auth.as_ref().expect("auth set");
        assert_eq!(auth.realm, "staff");
        let again = crate::parse(&crate::to_toml(&config), std::path::Path::new("t.toml"))
            .expect("written config parses");
        assert_eq!(again.listeners, config.listeners);
        assert_eq!(again.routes, config.routes);
        crate::validate(&config).expect("round trip");
    }

    #[test]
    fn protection_errors_are_reported() {
        let text = r#"
[rate_limit.a]
key = "query:"
rate = "fast"
[[listener]]
address = "127.0.0.1:80"
deny = ["10.0.0.0/99"]
[[route]]
respond = "x"
rate_limit = "nope"
auth_realm = "r"
"#;
        let errors = crate::parse(text, std::path::Path::new("t.toml"))
            .expect_err("invalid")
            .errors;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "rate_limit.a.key",
                "rate_limit.a.rate",
                "listener[0].deny[0]",
                "route[0].rate_limit",
                "route[0].auth_realm",
            ],
            "{errors:?}"
        );
    }
}
