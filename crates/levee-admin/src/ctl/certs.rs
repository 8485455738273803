//! `levee ctl certs`: the answer of `GET /certs` as a table for a shell:
//! names, issuer, expiry, source and the last renewal's outcome.

use serde_json::Value;

/// A Unix time as `YYYY-MM-DD HH:MM` UTC (civil-from-days, no clock read).
fn date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}")
}

/// The table, or `None` when the JSON is not what `GET /certs` sends.
pub(super) fn table(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let text = |v: &Value| match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let mut rows = vec![
        [
            "NAME",
            "SOURCE",
            "NAMES",
            "ISSUER",
            "EXPIRES (UTC)",
            "LAST RENEWAL",
        ]
        .map(str::to_owned),
    ];
    for c in v.get("certs")?.as_array()? {
        let names = c["names"]
            .as_array()
            .map(|a| a.iter().map(&text).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "-".into());
        let last = match &c["last"] {
            Value::Object(_) => format!(
                "{} {}: {}",
                if c["last"]["ok"] == true {
                    "ok"
                } else {
                    "FAILED"
                },
                c["last"]["at"].as_u64().map_or_else(|| "-".into(), date),
                text(&c["last"]["message"])
            ),
            _ => "-".to_owned(),
        };
        rows.push([
            text(&c["name"]),
            text(&c["source"]),
            names,
            text(&c["issuer"]),
            c["not_after"].as_u64().map_or_else(|| "-".into(), date),
            last,
        ]);
    }
    Some(super::columns(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(date(0), "1970-01-01 00:00");
        assert_eq!(date(951_782_400), "2000-02-29 00:00");
        assert_eq!(date(1_767_225_599), "2025-12-31 23:59");
    }

    #[test]
    fn a_table_row_per_certificate() {
        let json = r#"{"certs":[{"name":"a.test","source":"acme","names":["a.test"],
            "issuer":"Pebble","not_after":0,"last":{"at":0,"ok":false,"message":"CA down"}},
            {"name":"/etc/x.pem","source":"file","names":null,"issuer":null,"not_after":null,"last":null}]}"#;
        let t = table(json).unwrap();
        assert!(t.contains("a.test"), "{t}");
        assert!(t.contains("FAILED 1970-01-01 00:00: CA down"), "{t}");
        assert!(t.lines().nth(2).unwrap().starts_with("/etc/x.pem"), "{t}");
    }
}
