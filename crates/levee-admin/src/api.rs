//! The JSON control API (`docs/api.md`):
//!
//! ```text
//! GET  /upstreams                                   every upstream and its servers
//! GET  /upstreams/NAME                              one upstream
//! POST /upstreams/NAME/servers/SERVER/drain         no new requests; in-flight ones finish
//! POST /upstreams/NAME/servers/SERVER/disable       no requests
//! POST /upstreams/NAME/servers/SERVER/enable        back to normal
//! POST /upstreams/NAME/servers/SERVER/weight        body {"weight": N} (1-1000) or {"weight": null}
//! GET  /metrics                                     Prometheus text format
//! GET  /cache                                       store size and entries
//! POST /cache/purge                                 body {"url": U} | {"prefix": P} | {"tag": T}
//! POST /mail/users/NAME/close                       close NAME's logged-in mail sessions
//! GET  /fleet                                       the fleet's members (api/fleet.rs)
//! GET  /certs                                       every certificate (api/certs.rs)
//! POST /certs/NAME/renew                            renew an ACME certificate now
//! POST /fleet/ping                                  a ping on the fleet's bus
//! POST /fleet/members/NAME/drain                    NAME leaves the fleet's DNS answers
//! POST /fleet/members/NAME/undrain                  NAME comes back to them
//! POST /fleet/push                                  a config for the members (push.rs, via gate.rs)
//! /mirrors/...                                      the download redirector (api/mirrors.rs)
//! GET  /bans                                        the runtime ban list
//! POST /bans                                        body {"address": A, "for": "10m"} (for optional)
//! POST /bans/lift                                   body {"address": A}
//! GET  /allows, POST /allows, POST /allows/lift      allow entries: exempt from every ban
//! ```
//!
//! `SERVER` is a server's address as configured (`app1.internal:8080`,
//! every record of the name) or one resolved address (`10.0.0.5:8080`).
//! Changes act at once on every worker (they are atomics in the server's
//! state) and survive reloads until the config changes that server.

use std::sync::Arc;

use levee_http::Shared;
use levee_upstream::{AdminState, Group, Member};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::server::Reply;

/// Answers one admin request.
pub fn handle(shared: &Shared, method: &str, target: &str, body: &[u8]) -> Reply {
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let site = shared.site.load_full();
    let group = |name: &str| site.upstreams.get(name).cloned();
    match (method, segments.as_slice()) {
        ("GET" | "HEAD", ["metrics"]) => Reply::new(
            200,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(&site).into_bytes(),
        ),
        ("GET" | "HEAD", ["upstreams"]) => {
            let mut names: Vec<&String> = site.upstreams.keys().collect();
            names.sort();
            let list: Vec<Value> = names
                .into_iter()
                .filter_map(|n| site.upstreams.get(n))
                .map(|g| upstream_json(g))
                .collect();
            Reply::json(200, &json!({ "upstreams": list }))
        }
        ("GET" | "HEAD", ["upstreams", name]) => match group(name) {
            Some(g) => Reply::json(200, &upstream_json(&g)),
            None => unknown_upstream(name),
        },
        ("POST" | "PUT", ["upstreams", name, "servers", server, action]) => {
            let Some(g) = group(name) else {
                return unknown_upstream(name);
            };
            act(&g, server, action, body)
        }
        ("GET" | "HEAD", ["cache"]) => cache::status(&site),
        ("POST", ["cache", "purge"]) => cache::purge(&site, body),
        (_, ["cache"]) => Reply::error(405, format!("{method} is not allowed here; use GET")),
        ("GET" | "HEAD", ["certs"]) => certs::list(),
        (_, ["certs"]) => Reply::error(405, format!("{method} is not allowed here; use GET")),
        (_, ["certs", _, "renew"]) => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        ("GET" | "HEAD", ["fleet"]) => fleet::status(),
        ("POST", ["fleet", "ping"]) => fleet::ping(body),
        ("POST", ["fleet", "members", name, action @ ("drain" | "undrain")]) => {
            fleet::drain(name, *action == "drain")
        }
        (_, ["fleet"]) => Reply::error(405, format!("{method} is not allowed here; use GET")),
        (_, ["fleet", "ping"] | ["fleet", "members", _, "drain" | "undrain"]) => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        ("POST", ["mail", "users", user, "close"]) => {
            let (closing, reach) = levee_mail::kick::close_user_everywhere(user);
            Reply::json(
                200,
                &json!({ "user": user, "closing": closing, "reach": reach.as_str() }),
            )
        }
        (_, ["mirrors", rest @ ..]) => mirrors::handle(&site, method, rest, body),
        ("GET" | "HEAD", [list @ ("bans" | "allows")]) => bans::list(runtime_list(list)),
        ("POST", [list @ ("bans" | "allows")]) => bans::add(runtime_list(list), body),
        ("POST", [list @ ("bans" | "allows"), "lift"]) => bans::lift(runtime_list(list), body),
        (_, ["bans" | "allows", "lift"]) => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        (_, ["bans" | "allows"]) => Reply::error(
            405,
            format!("{method} is not allowed here; use GET or POST"),
        ),
        (_, ["cache", "purge"] | ["mail", "users", _, "close"]) => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        (_, ["metrics"] | ["upstreams"] | ["upstreams", _]) => {
            Reply::error(405, format!("{method} is not allowed here; use GET"))
        }
        (_, ["upstreams", _, "servers", _, _]) => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        _ => Reply::error(404, format!("no such endpoint: {path}")),
    }
}

fn runtime_list(name: &str) -> levee_protect::ban::List {
    match name {
        "allows" => levee_protect::ban::List::Allow,
        _ => levee_protect::ban::List::Ban,
    }
}

/// A server action another member sent on the bus (`"fleet": true`),
/// applied here as this member's API would: the status and JSON answer.
pub fn apply_fleet_action(
    site: &levee_http::Site,
    upstream: &str,
    server: &str,
    action: &str,
    body: &[u8],
) -> (u16, Value) {
    let reply = match site.upstreams.get(upstream) {
        Some(g) => act(g, server, action, body),
        None => unknown_upstream(upstream),
    };
    let answer = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, answer)
}

fn unknown_upstream(name: &str) -> Reply {
    Reply::error(404, format!("unknown upstream `{name}`"))
}

/// Applies `action` to the servers `server` names in `group`.
fn act(group: &Arc<Group>, server: &str, action: &str, body: &[u8]) -> Reply {
    let targets = group.find(server);
    if targets.is_empty() {
        return Reply::error(
            404,
            format!("upstream `{}` has no server `{server}`", group.name),
        );
    }
    match action {
        "drain" => set_admin(&targets, AdminState::Draining),
        "disable" => set_admin(&targets, AdminState::Disabled),
        "enable" => set_admin(&targets, AdminState::Enabled),
        "weight" => match parse_weight(body) {
            Ok(w) => {
                for m in &targets {
                    m.state.set_weight_override(w);
                }
            }
            Err(message) => return Reply::error(400, message),
        },
        other => {
            return Reply::error(
                404,
                format!("unknown action `{other}`; expected drain, disable, enable or weight"),
            );
        }
    }
    let now = Instant::now();
    let servers: Vec<Value> = targets.iter().map(|m| server_json(group, m, now)).collect();
    Reply::json(200, &json!({ "upstream": group.name, "servers": servers }))
}

fn set_admin(targets: &[Member], state: AdminState) {
    for m in targets {
        m.state.set_admin(state);
    }
}

/// `{"weight": N}` with N in 1..=1000, or `{"weight": null}` for the configured one.
pub(crate) fn parse_weight(body: &[u8]) -> Result<Option<u32>, String> {
    let bad = || {
        "expected a JSON body {\"weight\": N} with N from 1 to 1000, or {\"weight\": null}"
            .to_owned()
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    match v.get("weight") {
        Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(w @ 1..=1000) => Ok(Some(w as u32)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn upstream_json(group: &Group) -> Value {
    let now = Instant::now();
    let members = group.members();
    let servers: Vec<Value> = members
        .list
        .iter()
        .map(|m| server_json(group, m, now))
        .collect();
    json!({
        "name": group.name,
        "balance": balance_name(&group.config.balance),
        "health_check": group.config.health_check.is_some(),
        // No server usable, but some routable: requests go to those
        // whatever their health (panic mode, balance.rs).
        "panic": !group.any_usable(&members, now)
            && members.list.iter().any(|m| m.state.routable()),
        "panic_picks": group.stats.panic.load(std::sync::atomic::Ordering::Relaxed),
        "servers": servers,
    })
}

fn balance_name(b: &levee_config::Balance) -> &'static str {
    use levee_config::Balance::*;
    match b {
        RoundRobin => "round_robin",
        LeastConn => "least_conn",
        Latency => "latency",
        Hash(_) => "hash",
        Sticky { .. } => "sticky",
    }
}

fn server_json(group: &Group, m: &Member, now: Instant) -> Value {
    let s = &m.state;
    let slow_start = group.config.slow_start;
    let effective = s.effective_weight(m.weight, now, slow_start) as f64
        / levee_upstream::state::WEIGHT_SCALE as f64;
    json!({
        "address": m.addr.to_string(),
        "configured": m.configured,
        "backup": m.backup,
        "state": s.status(now, slow_start).as_str(),
        "admin": s.admin().as_str(),
        "healthy": s.check_up(),
        "ejected_ms": s.ejected_for(now).map(|d| d.as_millis() as u64),
        "weight": m.weight,
        "weight_override": s.weight_override(),
        "effective_weight": effective,
        "active": s.active(),
        "idle": s.stats.idle().max(0),
        "requests": s.stats.requests(),
    })
}

/// Decodes `%XX` escapes (an IPv6 server is `[::1]:80`, often escaped).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

mod bans;
mod cache;
pub(crate) mod certs;
mod fleet;

pub use cache::apply_fleet_purge;
mod mirrors;
#[cfg(test)]
mod tests;
