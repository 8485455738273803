//! Upstream server actions for the whole fleet: `POST
//! /upstreams/NAME/servers/SERVER/ACTION` with `"fleet": true` in its body
//! (`levee ctl drain UPSTREAM SERVER --fleet`, the dashboard in a fleet).
//! The action is checked here, sent on the bus, and applied by every member
//! that has that upstream and server, this one included; the answer waits
//! for each fresh member's outcome (at most [`WAIT`]), as a push does
//! (push.rs).
//!
//! ```text
//! 200  {"id", "upstream", "server", "action",
//!       "members": [{"instance", "status": applied | not here | refused | no answer,
//!                    "error", "servers": [...]}, …]}
//! 503  Redis is unreachable: nothing was sent (no member acted)
//! ```

use std::time::Duration;

use levee_fleet::actions::{self, Outcome};
use levee_fleet::bus::Message;
use serde_json::{Value, json};

use crate::push::{await_reports, fresh_members};
use crate::server::Reply;

/// How long the answer waits for the members' outcomes: each acts as the
/// message arrives, so this bounds a member cut off from Redis.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Whether `POST path` with `body` asks for a fleet-wide server action.
pub(crate) fn wanted(method: &str, path: &str, body: &[u8]) -> bool {
    method == "POST"
        && path.starts_with("/upstreams/")
        && serde_json::from_slice::<Value>(body)
            .is_ok_and(|v| v.get("fleet").and_then(Value::as_bool) == Some(true))
}

pub(crate) async fn handle(path: &str, body: &[u8]) -> Reply {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(crate::api::percent_decode)
        .collect();
    let ["upstreams", upstream, "servers", server, action] =
        segments.iter().map(String::as_str).collect::<Vec<_>>()[..]
    else {
        return Reply::error(404, format!("no such endpoint: {path}"));
    };
    match action {
        "drain" | "disable" | "enable" => {}
        "weight" => {
            if let Err(message) = crate::api::parse_weight(body) {
                return Reply::error(400, message);
            }
        }
        other => {
            return Reply::error(
                404,
                format!("unknown action `{other}`; expected drain, disable, enable or weight"),
            );
        }
    }
    let Some(fleet) = levee_fleet::current() else {
        return Reply::error(
            404,
            "levee runs without a [fleet] section: leave out \"fleet\" to act on this member",
        );
    };
    if !fleet.is_up() {
        return Reply::error(
            503,
            "Redis is unreachable: no member acted (leave out \"fleet\" to act on this member)",
        );
    }
    let expected = fresh_members(&fleet);
    let id = levee_fleet::push::new_id();
    tracing::info!(id = %id, upstream, server, action, members = expected.len(), "fleet: server action for every member");
    fleet.publish(Message::ServerAction {
        id: id.clone(),
        upstream: upstream.to_owned(),
        server: server.to_owned(),
        action: action.to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
    let members = await_reports(&fleet, &expected, WAIT, member_json, |f| {
        let id = id.clone();
        async move { actions::reports(&f.link, f.name(), &id).await }
    })
    .await;
    Reply::json(
        200,
        &json!({
            "id": id,
            "upstream": upstream,
            "server": server,
            "action": action,
            "members": members,
        }),
    )
}

fn member_json(instance: &str, outcome: Option<&Outcome>) -> Value {
    let Some(o) = outcome else {
        return json!({ "instance": instance, "status": "no answer", "error": null, "servers": [] });
    };
    let status = match o.status {
        200 => "applied",
        404 => "not here",
        _ => "refused",
    };
    json!({
        "instance": instance,
        "status": status,
        "error": o.answer.get("error"),
        "servers": o.answer.get("servers").cloned().unwrap_or(json!([])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_post_to_a_server_with_fleet_true_goes_to_the_fleet() {
        let path = "/upstreams/app/servers/127.0.0.1:8080/drain";
        assert!(wanted("POST", path, br#"{"fleet": true}"#));
        assert!(wanted("POST", path, br#"{"weight": 5, "fleet": true}"#));
        assert!(!wanted("POST", path, br#"{"fleet": false}"#));
        assert!(!wanted("POST", path, br#"{"fleet": "yes"}"#));
        assert!(!wanted("POST", path, b""));
        assert!(!wanted("GET", path, br#"{"fleet": true}"#));
        assert!(!wanted("POST", "/bans", br#"{"fleet": true}"#));
    }

    #[test]
    fn outcomes_read_as_a_table_row() {
        let applied = Outcome {
            status: 200,
            answer: json!({ "upstream": "app", "servers": [{ "address": "127.0.0.1:1" }] }),
        };
        let missing = Outcome {
            status: 404,
            answer: json!({ "error": "unknown upstream `app`" }),
        };
        assert_eq!(member_json("a", Some(&applied))["status"], "applied");
        assert_eq!(
            member_json("a", Some(&applied))["servers"][0]["address"],
            "127.0.0.1:1"
        );
        assert_eq!(member_json("b", Some(&missing))["status"], "not here");
        assert_eq!(
            member_json("b", Some(&missing))["error"],
            "unknown upstream `app`"
        );
        assert_eq!(member_json("c", None)["status"], "no answer");
    }
}
