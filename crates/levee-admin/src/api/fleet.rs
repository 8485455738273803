//! The fleet endpoints (docs/api.md, docs/fleet.md):
//!
//! ```text
//! GET  /fleet        this member's link to Redis and the member list as last read
//! POST /fleet/ping   body {"note": TEXT} (optional): a ping on the fleet's bus,
//!                    logged by every member
//! ```
//!
//! Both answer 404 when levee runs without `[fleet]`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use levee_fleet::{Fleet, bus};
use serde_json::{Value, json};

use crate::server::Reply;

fn no_fleet() -> Reply {
    Reply::error(404, "levee runs without a [fleet] section")
}

pub(super) fn status() -> Reply {
    match levee_fleet::current() {
        Some(f) => Reply::json(200, &status_json(&f)),
        None => no_fleet(),
    }
}

pub(super) fn ping(body: &[u8]) -> Reply {
    let Some(f) = levee_fleet::current() else {
        return no_fleet();
    };
    let note = match body.iter().all(u8::is_ascii_whitespace) {
        true => String::new(),
        false => match serde_json::from_slice::<Value>(body) {
            Ok(v) => match v.get("note") {
                Some(Value::String(s)) if s.len() <= 200 => s.clone(),
                None => String::new(),
                _ => return Reply::error(400, "expected {\"note\": TEXT} (at most 200 bytes)"),
            },
            Err(_) => return Reply::error(400, "expected a JSON body {\"note\": TEXT}"),
        },
    };
    f.publish(bus::Message::Ping { note: note.clone() });
    Reply::json(
        200,
        &json!({ "sent": "ping", "from": f.instance(), "note": note }),
    )
}

fn status_json(f: &Fleet) -> Value {
    let snapshot = f.snapshot();
    let health = &f.link.health;
    let mut hashes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in snapshot.members.iter().filter(|m| m.fresh) {
        hashes
            .entry(&m.record.config_hash)
            .or_default()
            .push(&m.record.instance);
    }
    let members: Vec<Value> = snapshot
        .members
        .iter()
        .map(|m| {
            let r = &m.record;
            json!({
                "instance": r.instance,
                "fresh": m.fresh,
                "age_ms": m.age_ms,
                "version": r.version,
                "config_hash": r.config_hash,
                "listeners": r.listeners,
                "state": r.state,
                "connections": r.connections,
                "requests_per_s": r.requests_per_s,
                "cpu_percent": r.cpu_percent,
                "started_ms": r.started_ms,
            })
        })
        .collect();
    json!({
        "fleet": f.name(),
        "instance": f.instance(),
        "redis": {
            "state": health.state().as_str(),
            "since_ms": levee_fleet::unix_ms(health.since()),
        },
        "live": f.live(),
        "read_ms_ago": snapshot.read_at.and_then(|t| SystemTime::now().duration_since(t).ok()).map(|d| d.as_millis() as u64),
        "members": members,
        "config_hashes": hashes,
    })
}
