//! `POST /fleet/push` (docs/api.md): a config for the fleet's members, sent
//! on the bus; answered once the members it went to have reported (or the
//! wait is over) with each member's outcome. `levee ctl fleet push` checks
//! the file first and runs the canary (`--first N`) over this endpoint
//! (ctl/push.rs).
//!
//! ```text
//! body {"config": TEXT, "hash": HASH, "members": [NAME, …], "wait_ms": N}
//!      members: who applies it (default: every member; the answer waits
//!               for those fresh now); wait_ms: default 30,000, at most 80,000
//! 200  {"id", "hash", "members": [{"instance", "status", "config_hash",
//!       "file", "errors": [...]}, …]}
//!      status: applied | refused | unsaved | no answer
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use levee_fleet::Fleet;
use levee_fleet::bus::Message;
use levee_fleet::push::{self, Report};
use serde_json::{Value, json};

use crate::server::Reply;

/// How long the answer waits for reports unless told.
const WAIT: Duration = Duration::from_secs(30);
/// The longest it may be told to wait (under `levee ctl`'s read timeout).
const MAX_WAIT: Duration = Duration::from_secs(80);
/// How often the reports are read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// What the audit line says of a push: its hash and members, never the
/// config (it may hold a mail master password).
pub(crate) fn audit_target(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    json!({ "hash": v.get("hash"), "members": v.get("members") }).to_string()
}

pub(crate) async fn handle(body: &[u8]) -> Reply {
    let Some(fleet) = levee_fleet::current() else {
        return Reply::error(404, "levee runs without a [fleet] section");
    };
    let bad = || {
        Reply::error(
            400,
            "expected {\"config\": TEXT, \"hash\": HASH} and optionally \"members\": [NAME, …] and \"wait_ms\": N",
        )
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad();
    };
    let (Some(config), Some(hash)) = (
        v.get("config").and_then(Value::as_str),
        v.get("hash").and_then(Value::as_str),
    ) else {
        return bad();
    };
    let named: Option<Vec<String>> = match v.get("members") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            let names: Option<Vec<String>> =
                a.iter().map(|n| n.as_str().map(str::to_owned)).collect();
            match names {
                Some(n) if !n.is_empty() => Some(n),
                _ => return bad(),
            }
        }
        Some(_) => return bad(),
    };
    let wait = match v.get("wait_ms") {
        None => WAIT,
        Some(n) => match n.as_u64() {
            Some(ms) => Duration::from_millis(ms).min(MAX_WAIT),
            None => return bad(),
        },
    };
    if !fleet.is_up() {
        return Reply::error(503, "Redis is unreachable: nothing was pushed");
    }
    // Who the answer waits for: those named, or every member fresh now.
    let expected: BTreeSet<String> = match &named {
        Some(n) => n.iter().cloned().collect(),
        None => fresh_members(&fleet),
    };
    let id = push::new_id();
    tracing::info!(id = %id, hash = %hash, members = expected.len(), "fleet: pushing a config");
    fleet.publish(Message::ConfigPush {
        id: id.clone(),
        hash: hash.to_owned(),
        config: config.to_owned(),
        targets: named,
    });
    let members = await_reports(&fleet, &expected, wait, member_json, |f| {
        let id = id.clone();
        async move { push::reports(&f.link, f.name(), &id).await }
    })
    .await;
    Reply::json(200, &json!({ "id": id, "hash": hash, "members": members }))
}

/// Every member fresh at the last heartbeat, this one included.
pub(crate) fn fresh_members(fleet: &Fleet) -> BTreeSet<String> {
    fleet
        .snapshot()
        .members
        .iter()
        .filter(|m| m.fresh)
        .map(|m| m.record.instance.clone())
        .chain([fleet.instance().to_owned()])
        .collect()
}

/// Reads the reports with `read` until every `expected` member has one or
/// `wait` is over; one `row` per member, those that did not answer last.
pub(crate) async fn await_reports<T, F, Fut>(
    fleet: &Arc<Fleet>,
    expected: &BTreeSet<String>,
    wait: Duration,
    row: fn(&str, Option<&T>) -> Value,
    read: F,
) -> Vec<Value>
where
    F: Fn(Arc<Fleet>) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeMap<String, T>, levee_fleet::FleetError>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut reports = BTreeMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        // The member that took the request may have rejoined the fleet
        // since (a push that changed `[fleet]`): read through the current
        // link.
        let now = levee_fleet::current().unwrap_or_else(|| fleet.clone());
        if let Ok(r) = read(now).await {
            reports = r;
        }
        let all = expected.iter().all(|m| reports.contains_key(m));
        if all || tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    let mut rows: Vec<Value> = reports.iter().map(|(who, r)| row(who, Some(r))).collect();
    rows.extend(
        expected
            .iter()
            .filter(|m| !reports.contains_key(*m))
            .map(|who| row(who, None)),
    );
    rows
}

fn member_json(instance: &str, report: Option<&Report>) -> Value {
    match report {
        Some(r) => json!({
            "instance": instance,
            "status": r.status.as_str(),
            "config_hash": r.config_hash,
            "file": r.file,
            "errors": r.errors,
        }),
        None => json!({
            "instance": instance,
            "status": "no answer",
            "config_hash": null,
            "file": null,
            "errors": [],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_line_never_holds_the_config() {
        let body = br#"{"config": "[[listener]]\npassword = \"s3cret\"", "hash": "ab12", "members": ["m0"]}"#;
        let t = audit_target(body);
        assert!(!t.contains("s3cret"), "{t}");
        assert!(t.contains("ab12") && t.contains("m0"), "{t}");
    }
}
