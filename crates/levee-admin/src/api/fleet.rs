//! The fleet endpoints (docs/api.md, docs/fleet.md):
//!
//! ```text
//! GET  /fleet        this member's link to Redis and the member list as last read
//! POST /fleet/ping   body {"note": TEXT} (optional): a ping on the fleet's bus,
//!                    logged by every member
//! POST /fleet/members/NAME/drain, /undrain
//!                    NAME leaves (comes back to) the fleet's DNS answers,
//!                    on every member at once (docs/dns.md)
//! ```
//!
//! All answer 404 when levee runs without `[fleet]`.

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
                // Every member logs it: one line, no control characters.
                Some(Value::String(s)) if s.len() <= 200 && !s.chars().any(char::is_control) => {
                    s.clone()
                }
                None => String::new(),
                _ => {
                    return Reply::error(
                        400,
                        "expected {\"note\": TEXT}: at most 200 bytes, no control characters",
                    );
                }
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

/// Drains or undrains member `name`: 200 when Redis is up (every member
/// hears it at once), 202 when it is applied here and waits for Redis.
pub(super) fn drain(name: &str, drained: bool) -> Reply {
    let Some(f) = levee_fleet::current() else {
        return no_fleet();
    };
    let known = name == f.instance()
        || f.snapshot()
            .members
            .iter()
            .any(|m| m.record.instance == name);
    if !known {
        return Reply::error(
            404,
            format!("`{name}` is not a member of fleet `{}`", f.name()),
        );
    }
    f.set_drained(name, drained);
    let up = f.link.health.is_up();
    Reply::json(
        if up { 200 } else { 202 },
        &json!({
            "instance": name,
            "drained": drained,
            "shared": up,
            "note": if up { "every member hears it now" } else { "applied here; sent to the fleet when Redis answers" },
        }),
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
    let drained = f.drained();
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
                "public": r.public,
                "weight": r.weight,
                "drained": drained.contains(&r.instance),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn status_and_pings_of_a_member_whose_redis_is_away() {
        assert_eq!(status().status, 404);
        let text = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
                    [fleet]\nname = \"api\"\ninstance = \"me\"\nredis = \"redis://127.0.0.1:1\"\n";
        let config = levee_config::parse(text, "t.toml".as_ref()).expect("valid");
        let settings =
            levee_fleet::Settings::load(config.fleet.as_ref().expect("fleet"), "t".as_ref())
                .expect("settings");
        let fleet = Fleet::start(settings, Default::default(), Box::new(Default::default))
            .expect("fleet thread");
        let reply = status();
        assert_eq!(reply.status, 200);
        let v: Value = serde_json::from_slice(&reply.body).expect("JSON");
        assert_eq!(v["instance"], "me");
        assert_eq!(v["redis"]["state"], "down");
        assert_eq!(v["live"], 1);
        assert_eq!(ping(br#"{"note": "deploy 42"}"#).status, 200);
        assert_eq!(ping(b"").status, 200);
        // Every member logs the note: no line breaks smuggled into logs.
        assert_eq!(ping(br#"{"note": "a\nfake log line"}"#).status, 400);
        assert_eq!(ping(b"not json").status, 400);
        // Redis is away: applied here, not yet shared.
        assert_eq!(drain("me", true).status, 202);
        assert!(fleet.drained().contains("me"));
        assert_eq!(drain("nobody", true).status, 404);
        assert_eq!(drain("me", false).status, 202);
        assert!(fleet.drained().is_empty());
        fleet.stop(Duration::ZERO);
        assert_eq!(status().status, 404);
    }
}
