//! `/bans`: the runtime ban list (`levee_protect::ban`), listed, added to
//! and lifted through the API, `levee ctl ban` and the dashboard.

use levee_protect::ban::{self, Ban, BanStore};
use serde_json::{Value, json};

use crate::server::Reply;

fn ban_json(b: &Ban) -> Value {
    json!({
        "address": b.net.to_string(),
        "since": b.since,
        "until": b.until,
    })
}

/// `GET /bans`.
pub fn list() -> Reply {
    let bans: Vec<Value> = ban::store()
        .list(ban::unix_now())
        .iter()
        .map(ban_json)
        .collect();
    Reply::json(200, &json!({ "bans": bans }))
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

/// `POST /bans` with `{"address": A}` and an optional `"for"`: a duration
/// (`"90s"`, `"10m"`, `"2h"`) or a number of seconds.
pub fn add(body: &[u8]) -> Reply {
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
    match ban::ban(net, duration) {
        Ok(b) => {
            tracing::warn!(address = %b.net, until = ?b.until, "address banned");
            Reply::json(200, &json!({ "banned": ban_json(&b) }))
        }
        Err(e) => Reply::error(409, e),
    }
}

/// `POST /bans/lift` with `{"address": A}`: 404 when A was not banned.
pub fn lift(body: &[u8]) -> Reply {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let net = match address(&v) {
        Ok(net) => net,
        Err(reply) => return reply,
    };
    if ban::store().remove(&net) {
        tracing::warn!(address = %net, "ban lifted");
        Reply::json(200, &json!({ "lifted": net.to_string() }))
    } else {
        Reply::error(404, format!("{net} is not banned"))
    }
}
