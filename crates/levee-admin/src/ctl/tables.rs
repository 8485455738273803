//! Answers of the admin API as aligned tables and lines for a shell:
//! upstreams and their servers, bans and allows, and a ban's outcome.

use serde_json::Value;

/// `{"upstreams": [...]}` (or one upstream's action reply) as an aligned table.
pub(super) fn table(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let mut rows = vec![
        [
            "UPSTREAM", "SERVER", "STATE", "WEIGHT", "ACTIVE", "IDLE", "REQUESTS",
        ]
        .map(str::to_owned),
    ];
    for u in v.get("upstreams")?.as_array()? {
        let name = u
            .get("name")
            .or_else(|| u.get("upstream"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        for s in u.get("servers")?.as_array()? {
            let text = |k: &str| match s.get(k) {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Null) | None => "-".to_owned(),
                Some(other) => other.to_string(),
            };
            let mut weight = text("effective_weight");
            if s.get("backup").and_then(Value::as_bool) == Some(true) {
                weight.push_str(" (backup)");
            }
            rows.push([
                name.to_owned(),
                text("address"),
                text("state"),
                weight,
                text("active"),
                text("idle"),
                text("requests"),
            ]);
        }
    }
    Some(columns(&rows))
}

/// Rows as left-aligned columns two spaces apart, one line each.
pub(super) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `{"bans": [...]}` (or `"allows"`) as a table: the address, since and
/// until (seconds since the Unix epoch: a shell's `date -d @N` reads them),
/// the fleet member that set it, then the count and, in a fleet, whether
/// the list is the fleet's.
pub(super) fn bans_table(json: &str, key: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let mut rows = vec![["ADDRESS", "SINCE", "UNTIL", "BY"].map(str::to_owned)];
    for b in v.get(key)?.as_array()? {
        let until = b
            .get("until")
            .and_then(Value::as_u64)
            .map_or("lifted".to_owned(), |u| u.to_string());
        let by = b.get("by").and_then(Value::as_str).unwrap_or_default();
        rows.push([
            b.get("address")?.as_str()?.to_owned(),
            b.get("since")?.as_u64()?.to_string(),
            until,
            if by.is_empty() { "-" } else { by }.to_owned(),
        ]);
    }
    let mut out = columns(&rows);
    out.push_str(&format!("{} entries", rows.len() - 1));
    if let Some(reach) = v.get("fleet").and_then(Value::as_str) {
        out.push_str(&format!(" (fleet: {reach})"));
    }
    out.push('\n');
    Some(out)
}

/// What a ban, an allow entry or a lift did, in one line.
pub(super) fn bans_line(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let fleet = match v.get("fleet").and_then(Value::as_str) {
        Some(reach) => format!(" (fleet: {reach})"),
        None => String::new(),
    };
    if let Some(lifted) = v.get("lifted").and_then(Value::as_str) {
        return Some(format!("lifted {lifted}{fleet}\n"));
    }
    let (verb, b) = match (v.get("banned"), v.get("allowed")) {
        (Some(b), _) => ("banned", b),
        (None, Some(b)) => ("allowed", b),
        _ => return None,
    };
    let address = b.get("address")?.as_str()?;
    Some(match b.get("until").and_then(Value::as_u64) {
        Some(until) => {
            format!("{verb} {address} until {until} (seconds since the epoch){fleet}\n")
        }
        None => format!("{verb} {address} until lifted{fleet}\n"),
    })
}
