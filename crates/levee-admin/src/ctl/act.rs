//! `levee ctl drain|disable|enable|weight UPSTREAM SERVER ... --fleet`: a
//! server action for every member of the fleet (`"fleet": true`, the admin
//! API's fleet_act.rs), printed as one row per member, as `levee ctl fleet
//! push` prints its table.

use serde_json::{Value, json};

use super::{Client, CtlError, api_error, columns, encode, request};

/// What the action did: the table to print, and whether it is done as
/// asked (every member answered, none refused, at least one applied: the
/// command's exit status).
#[derive(Debug)]
pub struct Done {
    pub table: String,
    pub ok: bool,
}

/// Sends `action` (`drain`, `disable`, `enable`, or `weight` with `weight`,
/// `None` for the configured one) for `upstream`'s `server` to every
/// member.
pub fn fleet_action(
    client: &Client,
    upstream: &str,
    server: &str,
    action: &str,
    weight: Option<Option<u32>>,
) -> Result<Done, CtlError> {
    let path = format!(
        "/upstreams/{}/servers/{}/{action}",
        encode(upstream),
        encode(server)
    );
    let body = match weight {
        Some(w) => json!({ "fleet": true, "weight": w }),
        None => json!({ "fleet": true }),
    };
    let (status, text) = request(client, "POST", &path, &body.to_string())?;
    if status != 200 {
        return Err(api_error(status, text));
    }
    render(&text).ok_or(CtlError::BadResponse)
}

fn render(answer: &str) -> Option<Done> {
    let v: Value = serde_json::from_str(answer).ok()?;
    let mut rows = vec![["INSTANCE", "RESULT", "SERVERS"].map(str::to_owned)];
    let (mut applied, mut bad) = (0, 0);
    let members = v.get("members")?.as_array()?;
    for m in members {
        let status = m.get("status")?.as_str()?;
        match status {
            "applied" => applied += 1,
            "not here" => {}
            _ => bad += 1,
        }
        let servers: Vec<String> = m
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{} {}",
                    s["address"].as_str().unwrap_or("?"),
                    s["state"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let detail = match m.get("error").and_then(Value::as_str) {
            Some(e) => e.to_owned(),
            None => servers.join(", "),
        };
        rows.push([
            m.get("instance")?.as_str()?.to_owned(),
            status.to_owned(),
            if detail.is_empty() {
                "-".into()
            } else {
                detail
            },
        ]);
    }
    let mut table = format!(
        "{} {} {} on every member\n",
        v.get("action")?.as_str()?,
        v.get("upstream")?.as_str()?,
        v.get("server")?.as_str()?
    );
    table.push_str(&columns(&rows));
    table.push_str(&format!(
        "{applied} of {} member(s) applied the action\n",
        members.len()
    ));
    Some(Done {
        table,
        ok: bad == 0 && applied > 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_member_and_the_verdict() {
        let answer = r#"{"id": "1", "upstream": "app", "server": "a:80", "action": "drain",
            "members": [
              {"instance": "web-1", "status": "applied", "error": null,
               "servers": [{"address": "127.0.0.1:80", "state": "draining"}]},
              {"instance": "web-2", "status": "not here", "error": "unknown upstream `app`", "servers": []},
              {"instance": "web-3", "status": "no answer", "error": null, "servers": []}]}"#;
        let done = render(answer).expect("renders");
        assert!(
            done.table.starts_with("drain app a:80 on every member\n"),
            "{}",
            done.table
        );
        assert!(
            done.table
                .contains("web-1     applied    127.0.0.1:80 draining"),
            "{}",
            done.table
        );
        assert!(
            done.table.contains("unknown upstream `app`"),
            "{}",
            done.table
        );
        assert!(
            done.table
                .ends_with("1 of 3 member(s) applied the action\n"),
            "{}",
            done.table
        );
        assert!(!done.ok, "web-3 did not answer");
        let all = answer.replace("no answer", "applied");
        assert!(render(&all).expect("renders").ok);
    }
}
