//! `/mirrors` endpoints: the download redirector's sets and mirrors with
//! their state, adding, editing, switching and scanning them, and the
//! download statistics (docs/api.md).
//!
//! ```text
//! GET  /mirrors                               every set, its mirrors and their state
//! GET  /mirrors/SET                           one set
//! POST /mirrors/SET/scan                      walk the tree and scan every mirror now
//! GET  /mirrors/SET/stats                     downloads per file (top N), mirror, country, day
//! POST /mirrors/SET/mirrors                   add a mirror: body as a [[mirrors.SET.mirror]] table, in JSON
//! PUT  /mirrors/SET/mirrors/NAME              replace mirror NAME (same body)
//! POST /mirrors/SET/mirrors/NAME/enable       offer it again (also lifts an automatic disabling)
//! POST /mirrors/SET/mirrors/NAME/disable      stop offering it
//! DELETE /mirrors/SET/mirrors/NAME            forget its runtime edits (back to the config file's)
//! ```
//!
//! A change stands until it is reset, over the config file's mirrors; in a
//! fleet it is also stored in Redis and reaches every member (the answer's
//! `fleet` says whether it did yet: docs/mirrors.md, "Fleet").

use std::sync::Arc;
use std::time::SystemTime;

use levee_http::Site;
use levee_mirror::MirrorSet;
use levee_mirror::edits::{Outcome, mirror_from_json};
use levee_mirror::mirror::Mirror;
use serde_json::{Value, json};

use crate::server::Reply;

pub(super) fn handle(site: &Site, method: &str, rest: &[&str], body: &[u8]) -> Reply {
    let set = |name: &str| site.mirrors.get(name).cloned();
    match (method, rest) {
        ("GET" | "HEAD", []) => {
            let mut names: Vec<&String> = site.mirrors.keys().collect();
            names.sort();
            let sets: Vec<Value> = names
                .into_iter()
                .filter_map(|n| site.mirrors.get(n))
                .map(|s| set_json(s))
                .collect();
            Reply::json(200, &json!({ "sets": sets }))
        }
        (_, []) => Reply::error(405, format!("{method} is not allowed here; use GET")),
        (_, [name, ..]) if set(name).is_none() => {
            Reply::error(404, format!("unknown mirror set `{name}`"))
        }
        ("GET" | "HEAD", [name]) => with(set(name), |s| Reply::json(200, &set_json(s))),
        ("POST", [name, "scan"]) => with(set(name), |s| {
            s.scan_now.notify_one();
            Reply::json(200, &json!({ "set": s.name, "scanning": true }))
        }),
        ("GET" | "HEAD", [name, "stats"]) => with(set(name), |s| Reply::json(200, &stats_json(s))),
        ("POST", [name, "mirrors"]) => with(set(name), |s| put(s, None, body)),
        ("PUT", [name, "mirrors", mirror]) => with(set(name), |s| put(s, Some(mirror), body)),
        ("POST", [name, "mirrors", mirror, action @ ("enable" | "disable")]) => {
            with(set(name), |s| match s.switch(mirror, *action == "enable") {
                Ok(Outcome::Done) => changed(s, mirror, 200),
                Ok(Outcome::NoSuch) => {
                    Reply::error(404, format!("set `{}` has no mirror `{mirror}`", s.name))
                }
                Err(e) => Reply::error(500, e.to_string()),
            })
        }
        ("DELETE", [name, "mirrors", mirror]) => with(set(name), |s| match s.reset(mirror) {
            Ok(Outcome::Done) => changed(s, mirror, 200),
            Ok(Outcome::NoSuch) => Reply::error(
                404,
                format!(
                    "set `{}` has no runtime edit of mirror `{mirror}`; a mirror of the config file is removed from the file",
                    s.name
                ),
            ),
            Err(e) => Reply::error(500, e.to_string()),
        }),
        (_, [_] | [_, "stats"]) => {
            Reply::error(405, format!("{method} is not allowed here; use GET"))
        }
        (_, [_, "scan"] | [_, "mirrors"] | [_, "mirrors", _, _]) => {
            Reply::error(405, format!("{method} is not allowed here; use POST"))
        }
        (_, [_, "mirrors", _]) => Reply::error(
            405,
            format!("{method} is not allowed here; use PUT or DELETE"),
        ),
        _ => Reply::error(404, "no such endpoint".to_owned()),
    }
}

fn with(set: Option<Arc<MirrorSet>>, f: impl FnOnce(&MirrorSet) -> Reply) -> Reply {
    match set {
        Some(s) => f(&s),
        None => Reply::error(404, "unknown mirror set".to_owned()),
    }
}

/// Adds a mirror (`name` is `None`) or replaces mirror `name`.
fn put(set: &MirrorSet, name: Option<&str>, body: &[u8]) -> Reply {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Reply::error(
            400,
            "expected a JSON object: the keys of a [[mirrors.SET.mirror]] table".to_owned(),
        );
    };
    if let Some(n) = name {
        match fields.get("name") {
            None => {
                fields.insert("name".into(), Value::String(n.to_owned()));
            }
            Some(Value::String(given)) if given == n => {}
            Some(_) => return Reply::error(400, format!("the body's name must be `{n}`")),
        }
    }
    let mirror = match mirror_from_json(&Value::Object(fields)) {
        Ok(m) => m,
        Err(errors) => {
            return Reply::json(422, &json!({ "error": "invalid mirror", "errors": errors }));
        }
    };
    let exists = set
        .view()
        .mirrors
        .iter()
        .any(|m| m.profile.name() == mirror.name);
    match (name, exists) {
        (None, true) => {
            return Reply::error(
                409,
                format!(
                    "mirror `{}` exists; PUT /mirrors/{}/mirrors/{} to change it",
                    mirror.name, set.name, mirror.name
                ),
            );
        }
        (Some(n), false) => {
            return Reply::error(404, format!("set `{}` has no mirror `{n}`", set.name));
        }
        _ => {}
    }
    let mirror_name = mirror.name.clone();
    if let Err(e) = set.put(mirror) {
        return Reply::error(500, e.to_string());
    }
    changed(set, &mirror_name, if name.is_none() { 201 } else { 200 })
}

/// The answer to a change of mirror `name`: the mirror as it stands now
/// (`null` once a reset removed it), and in a fleet whether the others get
/// the change now or once Redis is back.
fn changed(set: &MirrorSet, name: &str, status: u16) -> Reply {
    let view = set.view();
    let mirror = view
        .mirrors
        .iter()
        .find(|m| m.profile.name() == name)
        .map_or(Value::Null, mirror_json);
    let mut answer = match mirror {
        Value::Object(m) => Value::Object(m),
        _ => json!({ "name": name, "removed": true }),
    };
    if let Some(fleet) = levee_fleet::current() {
        answer["fleet"] = Value::from(if fleet.is_up() {
            "sent to every member"
        } else {
            "this member only: Redis is unreachable; stored there and sent when it is back"
        });
    }
    Reply::json(status, &answer)
}

fn set_json(set: &MirrorSet) -> Value {
    let view = set.view();
    let settings = set.settings();
    let mirrors: Vec<Value> = view.mirrors.iter().map(mirror_json).collect();
    json!({
        "name": set.name,
        "root": settings.root.display().to_string(),
        "files": view.tree.len(),
        "links": view.tree.links(),
        "hashed": view.tree.hashed(),
        "state_bytes": view.tree.heap_bytes()
            + view.mirrors.iter().map(|m| m.holdings.has.heap_bytes()).sum::<usize>(),
        "geoip": !set.geo().is_empty(),
        "mirrors": mirrors,
    })
}

fn mirror_json(m: &Mirror) -> Value {
    let mut config = serde_json::to_value(levee_config::mirror_to_toml(&m.profile.config))
        .unwrap_or(Value::Null);
    config["source"] = Value::from(m.source.as_str());
    let live = &m.live;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let state = json!({
        "state": m.state().as_str(),
        "enabled": live.enabled(),
        "up": live.up(),
        "auto_disabled": live.auto_disabled(),
        "strikes": live.strikes(),
        "problem": live.problem(),
        "files": m.holdings.has.count(),
        "stale": m.holdings.stale,
        "stale_examples": m.holdings.stale_examples,
        "scanned": m.holdings.scanned_at.map(levee_mirror::render::metalink::rfc3339),
        "last_scan": live.last_scan.lock().ok().and_then(|s| s.clone()),
        "redirects": live.redirects.load(relaxed),
        "bytes": live.bytes.load(relaxed),
    });
    if let (Value::Object(c), Value::Object(s)) = (&mut config, state) {
        c.extend(s);
    }
    config
}

fn stats_json(set: &MirrorSet) -> Value {
    let view = set.view();
    let top = set.settings().top_files as usize;
    let files: Vec<Value> = view
        .tree
        .top(top)
        .into_iter()
        .map(|(id, n)| {
            json!({ "path": format!("/{}", String::from_utf8_lossy(view.tree.path(id))), "downloads": n })
        })
        .collect();
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let mut mirrors: serde_json::Map<String, Value> = view
        .mirrors
        .iter()
        .map(|m| {
            (
                m.profile.name().to_owned(),
                json!(m.live.redirects.load(relaxed)),
            )
        })
        .collect();
    mirrors.insert("(local)".into(), json!(set.stats.local.load(relaxed)));
    let countries: serde_json::Map<String, Value> = set
        .stats
        .countries()
        .into_iter()
        .map(|(c, n)| (c, json!(n)))
        .collect();
    let days: serde_json::Map<String, Value> = set
        .stats
        .days(SystemTime::now())
        .into_iter()
        .map(|(d, n)| (d, json!(n)))
        .collect();
    json!({
        "set": set.name,
        "files": files,
        "mirrors": mirrors,
        "countries": countries,
        "days": days,
    })
}
