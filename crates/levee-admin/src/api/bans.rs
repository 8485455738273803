//! `/bans` and `/allows`: the runtime ban list and the allow entries that
//! exempt addresses from it (`levee_protect::ban`), listed, added to and
//! lifted through the API, `levee ctl ban`/`allow` and the dashboard. In a
//! fleet every change is the fleet's (docs/fleet.md, "Runtime bans"); the
//! answer says whether it reached the other members yet.

use levee_protect::ban::{self, Ban, BanStore, List};
use serde_json::{Value, json};

use crate::server::Reply;

fn ban_json(b: &Ban) -> Value {
    json!({
        "address": b.net.to_string(),
        "since": b.since,
        "until": b.until,
        "by": b.by,
    })
}

fn name(list: List) -> &'static str {
    match list {
        List::Ban => "bans",
        List::Allow => "allows",
    }
}

/// Where a change went: absent outside a fleet.
fn reach() -> Option<&'static str> {
    levee_fleet::current().map(|f| match f.is_up() {
        true => "every member",
        false => "this member now; every member once Redis answers",
    })
}

/// `GET /bans` or `GET /allows`: the entries in force, their count, and in
/// a fleet whether the list is the fleet's right now.
pub(super) fn list(list: List) -> Reply {
    let entries: Vec<Value> = ban::local(list)
        .list(ban::unix_now())
        .iter()
        .map(ban_json)
        .collect();
    let mut v = json!({ "count": entries.len(), name(list): entries });
    if let Some(r) = reach() {
        v["fleet"] = json!(r);
    }
    Reply::json(200, &v)
}

fn address(v: &Value) -> Result<levee_config::IpNet, Reply> {
    let text = v.get("address").and_then(Value::as_str).ok_or_else(|| {
        Reply::error(
            400,
            "expected a JSON body {\"address\": \"192.0.2.7\" or \"192.0.2.0/24\", \"for\": \"10m\" (optional)}",
        )
    })?;
    ban::parse_net(text).map_err(|e| Reply::error(400, e))
}

/// `POST /bans` (or `/allows`) with `{"address": A}` and an optional
/// `"for"`: a duration (`"90s"`, `"10m"`, `"2h"`) or a number of seconds.
pub(super) fn add(list: List, body: &[u8]) -> Reply {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let net = match address(&v) {
        Ok(net) => net,
        Err(reply) => return reply,
    };
    let duration = match v.get("for") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s > 0 => Some(std::time::Duration::from_secs(s)),
            _ => return Reply::error(400, "`for` must be a positive number of seconds"),
        },
        Some(Value::String(s)) => match levee_config::units::parse_duration(s) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => return Reply::error(400, "`for` must be longer than 0"),
            Err(e) => return Reply::error(400, format!("`for`: {e}")),
        },
        Some(_) => return Reply::error(400, "`for` must be a duration such as \"10m\""),
    };
    match ban::add(list, net, duration) {
        Ok(b) => {
            tracing::warn!(list = name(list), address = %b.net, until = ?b.until, "runtime list: address added");
            let key = match list {
                List::Ban => "banned",
                List::Allow => "allowed",
            };
            let mut v = json!({ key: ban_json(&b) });
            if let Some(r) = reach() {
                v["fleet"] = json!(r);
            }
            Reply::json(200, &v)
        }
        Err(e) => Reply::error(409, e),
    }
}

/// `POST /bans/lift` (or `/allows/lift`) with `{"address": A}`: 404 when A
/// was not listed.
pub(super) fn lift(list: List, body: &[u8]) -> Reply {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let net = match address(&v) {
        Ok(net) => net,
        Err(reply) => return reply,
    };
    if ban::lift(list, &net) {
        tracing::warn!(list = name(list), address = %net, "runtime list: address lifted");
        let mut v = json!({ "lifted": net.to_string() });
        if let Some(r) = reach() {
            v["fleet"] = json!(r);
        }
        Reply::json(200, &v)
    } else {
        let what = match list {
            List::Ban => "banned",
            List::Allow => "allowed",
        };
        Reply::error(404, format!("{net} is not {what}"))
    }
}
