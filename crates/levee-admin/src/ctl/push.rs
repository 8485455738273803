//! `levee ctl fleet push FILE [--first N]`: the admin API side of a config
//! rollout (the file was checked here first, as `levee check` does, by
//! the caller). Without `--first` one push goes to every member. With it,
//! the first N fresh members (by name) take it, then the command waits
//! for their health (a fresh heartbeat, `serving`, the pushed config's
//! hash) before pushing to the rest; a canary that refuses, or is not
//! healthy in time, stops the rollout there.

use std::time::{Duration, Instant};

use levee_config::Config;
use serde_json::{Value, json};

use super::{Client, CtlError, api_error, columns, request};

/// How long the canaries may take to report healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// The admin listener's limit on a push body (server.rs).
const MAX_BODY: usize = 1 << 20;

/// What a rollout did: the table to print, and whether every member
/// applied the config (the command's exit status).
#[derive(Debug)]
pub struct Rollout {
    pub table: String,
    pub all_applied: bool,
}

/// One member's outcome, as `POST /fleet/push` reports it.
#[derive(Debug, Clone)]
struct Row {
    instance: String,
    status: String,
    config_hash: String,
    file: String,
    errors: Vec<String>,
}

pub fn push(
    client: &Client,
    config: &Config,
    text: &str,
    first: Option<usize>,
) -> Result<Rollout, CtlError> {
    let hash = levee_fleet::config_hash(config);
    let mut notes = Vec::new();
    let rows = match first {
        None => send(client, text, &hash, None)?,
        Some(n) => {
            let mut fresh = fresh_members(client)?;
            fresh.sort();
            let rest = fresh.split_off(n.min(fresh.len()));
            let canaries = fresh;
            if canaries.is_empty() {
                return Err(CtlError::Api {
                    status: 409,
                    message: "no fresh member to push to".to_owned(),
                });
            }
            let mut rows = send(client, text, &hash, Some(&canaries))?;
            let applied = rows.iter().all(|r| r.status == "applied");
            if !applied {
                notes.push(format!(
                    "a canary did not apply the config: not pushed to {}",
                    list(&rest)
                ));
            } else if let Err((why, sick)) = wait_healthy(client, &rows) {
                notes.push(format!("{why}: not pushed to {}", list(&rest)));
                for r in rows.iter_mut().filter(|r| sick.contains(&r.instance)) {
                    r.status = "unhealthy".to_owned();
                }
            } else if !rest.is_empty() {
                notes.push(format!("canaries healthy: {}", list(&canaries)));
                rows.extend(send(client, text, &hash, Some(&rest))?);
            }
            for name in rest {
                if !rows.iter().any(|r| r.instance == name) {
                    rows.push(Row {
                        instance: name,
                        status: "not pushed".to_owned(),
                        config_hash: String::new(),
                        file: String::new(),
                        errors: Vec::new(),
                    });
                }
            }
            rows
        }
    };
    Ok(render(&hash, &rows, &notes))
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(no other member)".to_owned()
    } else {
        names.join(", ")
    }
}

/// `POST /fleet/push` to `members` (every member when `None`).
fn send(
    client: &Client,
    text: &str,
    hash: &str,
    members: Option<&[String]>,
) -> Result<Vec<Row>, CtlError> {
    let mut body = json!({ "config": text, "hash": hash });
    if let Some(m) = members {
        body["members"] = json!(m);
    }
    let body = body.to_string();
    if body.len() > MAX_BODY {
        return Err(CtlError::Api {
            status: 413,
            message: format!(
                "the config is too large to push: {} bytes as JSON, at most {MAX_BODY}",
                body.len()
            ),
        });
    }
    let (status, answer) = request(client, "POST", "/fleet/push", &body)?;
    if status != 200 {
        return Err(api_error(status, answer));
    }
    rows(&answer).ok_or(CtlError::BadResponse)
}

fn rows(answer: &str) -> Option<Vec<Row>> {
    let v: Value = serde_json::from_str(answer).ok()?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    v.get("members")?
        .as_array()?
        .iter()
        .map(|m| {
            Some(Row {
                instance: m.get("instance")?.as_str()?.to_owned(),
                status: text(&m["status"]),
                config_hash: text(&m["config_hash"]),
                file: text(&m["file"]),
                errors: m["errors"]
                    .as_array()
                    .map(|a| a.iter().map(text).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The members `GET /fleet` lists as fresh.
fn fresh_members(client: &Client) -> Result<Vec<String>, CtlError> {
    let (status, answer) = request(client, "GET", "/fleet", "")?;
    if status != 200 {
        return Err(api_error(status, answer));
    }
    let v: Value = serde_json::from_str(&answer).map_err(|_| CtlError::BadResponse)?;
    Ok(v["members"]
        .as_array()
        .ok_or(CtlError::BadResponse)?
        .iter()
        .filter(|m| m["fresh"] == true)
        .filter_map(|m| m["instance"].as_str().map(str::to_owned))
        .collect())
}

/// Waits until every member of `rows` heartbeats as healthy on the config
/// it applied; when one does not in time, why and who.
fn wait_healthy(client: &Client, rows: &[Row]) -> Result<(), (String, Vec<String>)> {
    let deadline = Instant::now() + HEALTHY_WITHIN;
    loop {
        let (status, answer) =
            request(client, "GET", "/fleet", "").map_err(|e| (e.to_string(), Vec::new()))?;
        let v: Value = serde_json::from_str(&answer).unwrap_or_default();
        let listed = v["members"].as_array().cloned().unwrap_or_default();
        let sick: Vec<String> = rows
            .iter()
            .filter(|r| {
                !listed.iter().any(|m| {
                    m["instance"] == r.instance.as_str()
                        && m["fresh"] == true
                        && m["state"] == "serving"
                        && m["config_hash"] == r.config_hash.as_str()
                })
            })
            .map(|r| r.instance.clone())
            .collect();
        if status == 200 && sick.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let why = format!(
                "not healthy on the pushed config within {}s: {}",
                HEALTHY_WITHIN.as_secs(),
                sick.join(", ")
            );
            return Err((why, sick));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn render(hash: &str, rows: &[Row], notes: &[String]) -> Rollout {
    let mut table = vec![["INSTANCE", "RESULT", "CONFIG", "FILE"].map(str::to_owned)];
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| a.instance.cmp(&b.instance));
    for r in &sorted {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        table.push([
            r.instance.clone(),
            r.status.clone(),
            dash(&r.config_hash),
            dash(&r.file),
        ]);
    }
    let mut out = format!("config {hash} pushed\n");
    out.push_str(&columns(&table));
    for r in sorted.iter().filter(|r| !r.errors.is_empty()) {
        out.push_str(&format!("{} ({}):\n", r.instance, r.status));
        for e in &r.errors {
            out.push_str(&format!("  {e}\n"));
        }
    }
    for n in notes {
        out.push_str(n);
        out.push('\n');
    }
    let applied = rows.iter().filter(|r| r.status == "applied").count();
    out.push_str(&format!(
        "{applied} of {} member(s) applied the config\n",
        rows.len()
    ));
    Rollout {
        table: out,
        all_applied: !rows.is_empty() && applied == rows.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_become_a_table_with_each_error_and_a_verdict() {
        let answer = r#"{"id": "1-ab", "hash": "abc", "members": [
            {"instance": "m1", "status": "refused", "config_hash": "abc", "file": "/etc/levee.toml",
             "errors": ["/etc/levee.toml:4:11: route[0].proxy: unknown upstream `ap`"]},
            {"instance": "m0", "status": "applied", "config_hash": "abc", "file": "/etc/levee.toml", "errors": []},
            {"instance": "m2", "status": "no answer", "config_hash": null, "file": null, "errors": []}
        ]}"#;
        let rows = rows(answer).expect("rows");
        let r = render("abc", &rows, &[]);
        assert!(!r.all_applied);
        let lines: Vec<&str> = r.table.lines().collect();
        assert_eq!(lines[0], "config abc pushed");
        assert!(lines[1].starts_with("INSTANCE  RESULT"), "{}", r.table);
        assert!(lines[2].starts_with("m0        applied"), "{}", r.table);
        assert!(
            lines[4].starts_with("m2        no answer  -"),
            "{}",
            r.table
        );
        assert!(
            r.table.contains(
                "m1 (refused):\n  /etc/levee.toml:4:11: route[0].proxy: unknown upstream `ap`\n"
            ),
            "{}",
            r.table
        );
        assert!(r.table.ends_with("1 of 3 member(s) applied the config\n"));
        let all = rows
            .into_iter()
            .filter(|r| r.status == "applied")
            .collect::<Vec<_>>();
        assert!(render("abc", &all, &[]).all_applied);
        assert!(!render("abc", &[], &[]).all_applied);
    }
}
