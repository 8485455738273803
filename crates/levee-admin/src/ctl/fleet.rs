//! `levee ctl fleet`: the answer of `GET /fleet` as a table for a shell,
//! stale members marked, and where config hashes differ said at the end.

use std::collections::BTreeMap;

use serde_json::Value;

/// The table, or `None` when the JSON is not what `GET /fleet` sends.
pub(super) fn table(json: &str, now_ms: u64) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let text = |v: &Value| match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let members = v.get("members")?.as_array()?;
    // The hash most fresh members share; the others are marked.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in members.iter().filter(|m| m["fresh"] == true) {
        *counts.entry(text(&m["config_hash"])).or_default() += 1;
    }
    let common = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(h, _)| h.clone());
    let since = v["redis"]["since_ms"].as_u64().unwrap_or(now_ms);
    let mut out = format!(
        "fleet {}, this member {}: Redis {} for {:.1}s; {} live member(s)\n",
        text(&v["fleet"]),
        text(&v["instance"]),
        text(&v["redis"]["state"]),
        now_ms.saturating_sub(since) as f64 / 1000.0,
        text(&v["live"]),
    );
    let mut rows = vec![
        [
            "INSTANCE",
            "STATUS",
            "SEEN",
            "VERSION",
            "CONFIG",
            "CONNS",
            "REQ/S",
            "CPU%",
            "LISTENERS",
        ]
        .map(str::to_owned),
    ];
    for m in members {
        let hash = text(&m["config_hash"]);
        let marked = match &common {
            Some(c) if counts.len() > 1 && *c != hash => format!("{hash} *"),
            _ => hash,
        };
        let listeners = m["listeners"]
            .as_array()
            .map(|a| a.iter().map(&text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        rows.push([
            text(&m["instance"]),
            match (m["fresh"] == true, m["drained"] == true) {
                (true, false) => "fresh",
                (true, true) => "fresh, drained",
                (false, false) => "STALE",
                (false, true) => "STALE, drained",
            }
            .to_owned(),
            format!("{:.1}s", m["age_ms"].as_u64().unwrap_or(0) as f64 / 1000.0),
            text(&m["version"]),
            marked,
            text(&m["connections"]),
            text(&m["requests_per_s"]),
            text(&m["cpu_percent"]),
            listeners,
        ]);
    }
    out.push_str(&super::columns(&rows));
    if counts.len() > 1 {
        let mut by_hash: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in members.iter().filter(|m| m["fresh"] == true) {
            by_hash
                .entry(text(&m["config_hash"]))
                .or_default()
                .push(text(&m["instance"]));
        }
        let parts: Vec<String> = by_hash
            .iter()
            .map(|(h, who)| format!("{h} on {}", who.join(", ")))
            .collect();
        out.push_str(&format!("config hashes differ: {}\n", parts.join("; ")));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, hash: &str, fresh: bool) -> Value {
        serde_json::json!({
            "instance": name, "fresh": fresh, "age_ms": if fresh { 300 } else { 7100 },
            "version": "0.1.0", "config_hash": hash, "listeners": ["web 127.0.0.2:80"],
            "state": "serving", "connections": 3, "requests_per_s": 1.5, "cpu_percent": 0.4,
        })
    }

    fn status(members: Vec<Value>) -> String {
        serde_json::json!({
            "fleet": "shop", "instance": "a", "live": 2,
            "redis": { "state": "up", "since_ms": 1_000 },
            "members": members,
        })
        .to_string()
    }

    #[test]
    fn stale_members_and_differing_hashes_are_marked() {
        let json = status(vec![
            member("a", "aaaa", true),
            member("b", "aaaa", true),
            member("c", "cccc", true),
            member("d", "dddd", false),
        ]);
        let t = table(&json, 11_000).expect("a table");
        assert!(
            t.starts_with("fleet shop, this member a: Redis up for 10.0s; 2 live member(s)\n"),
            "{t}"
        );
        let line = |name: &str| {
            t.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            line("a ").contains("fresh") && !line("a ").contains('*'),
            "{t}"
        );
        assert!(line("c ").contains("cccc *"), "{t}");
        assert!(
            line("d ").contains("STALE") && line("d ").contains("7.1s"),
            "{t}"
        );
        assert!(
            t.ends_with("config hashes differ: aaaa on a, b; cccc on c\n"),
            "{t}"
        );
    }

    #[test]
    fn one_hash_is_not_reported() {
        let json = status(vec![member("a", "aaaa", true), member("b", "aaaa", true)]);
        let t = table(&json, 2_000).expect("a table");
        assert!(!t.contains('*') && !t.contains("differ"), "{t}");
        assert_eq!(table("{}", 0), None);
    }
}
