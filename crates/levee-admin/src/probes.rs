//! The probes a load balancer, Kubernetes or systemd's operator points at
//! the admin listener, answered without credentials (they say nothing a
//! probe's network could not learn by connecting, and a kubelet or a
//! balancer has no token); `Host` and `Origin` are checked as for any
//! request (gate.rs), so a web page cannot read them either:
//!
//! ```text
//! GET /healthz   200 "ok": the process serves (its control thread answers)
//! GET /readyz    200 "ready": listeners bound, every upstream server name
//!                resolved, not stopping; else 503 with the reasons
//! GET /version   {"name": "levee", "version": "0.1.0"}
//! ```

use levee_http::Shared;
use serde_json::json;

use crate::server::Reply;

/// The answer to a probe, or `None` when `path` is not one.
pub(crate) fn answer(shared: &Shared, method: &str, path: &str) -> Option<Reply> {
    if !matches!(path, "/healthz" | "/readyz" | "/version") {
        return None;
    }
    if !matches!(method, "GET" | "HEAD") {
        return Some(Reply::error(
            405,
            format!("{method} is not allowed here; use GET"),
        ));
    }
    Some(match path {
        "/healthz" => text(200, "ok\n"),
        "/readyz" => match not_ready(shared) {
            reasons if reasons.is_empty() => text(200, "ready\n"),
            reasons => text(503, &format!("not ready: {}\n", reasons.join("; "))),
        },
        _ => Reply::json(
            200,
            &json!({ "name": "levee", "version": env!("CARGO_PKG_VERSION") }),
        ),
    })
}

fn text(status: u16, body: &str) -> Reply {
    Reply::new(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

/// Why levee is not ready to take traffic: stopping (or handing over to a
/// new binary), or upstream server names that have not resolved yet. The
/// listeners are bound before the admin listener starts, so they are.
pub fn not_ready(shared: &Shared) -> Vec<String> {
    let mut reasons = Vec::new();
    if shared.draining() {
        reasons.push("stopping".to_owned());
    }
    let site = shared.site.load();
    let mut names: Vec<&String> = site.upstreams.keys().collect();
    names.sort();
    for name in names {
        let Some(group) = site.upstreams.get(name) else {
            continue;
        };
        let members = group.members();
        for server in &group.config.servers {
            if !members.list.iter().any(|m| m.configured == server.address) {
                reasons.push(format!(
                    "upstream {name}: `{}` has not resolved",
                    server.address
                ));
            }
        }
    }
    reasons
}
