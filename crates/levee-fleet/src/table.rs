//! Versioned shared tables: state every member must end up agreeing on
//! (the mirror list's runtime edits, docs/mirrors.md "Fleet"), kept in
//! Redis rather than only said on the bus, since pub/sub delivers at most
//! once and a member that was away must catch up by reading.
//!
//! A table `T` is the hash `{NAME}:T` (one JSON row per entry:
//! `{"v": VERSION, "entry": ENTRY}`) and the counter `{NAME}:T:version`.
//! Each write takes the next version from the counter and stores or
//! deletes its row in the same script, so versions order writes exactly
//! as Redis applied them; a member that hears of writes on the bus out of
//! order keeps the higher version. The counter outlives deleted rows, so a
//! missing counter means the table was never written, or Redis lost it
//! (restarted empty).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::FleetError;
use crate::link::Link;

/// Takes the next version, then stores (or, with an empty entry, deletes)
/// the row; answers the version.
const PUT: &str = r#"
local v = redis.call('INCR', KEYS[2])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], '{"v":' .. v .. ',"entry":' .. ARGV[2] .. '}')
end
return v
"#;

/// A row as read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Row {
    #[serde(rename = "v")]
    pub version: u64,
    pub entry: serde_json::Value,
}

/// A table as read: the counter and every row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub rows: BTreeMap<String, Row>,
}

fn keys(fleet: &str, table: &str) -> (String, String) {
    (
        format!("{{{fleet}}}:{table}"),
        format!("{{{fleet}}}:{table}:version"),
    )
}

/// Work no request waits on gets at least a second, as heartbeats do.
fn patience(link: &Link) -> Duration {
    link.timeout().max(Duration::from_secs(1))
}

/// Writes `field`'s entry (`None`: deletes it); the version it was
/// stored as.
pub async fn put(
    link: &Link,
    fleet: &str,
    table: &str,
    field: &str,
    entry: Option<&serde_json::Value>,
) -> Result<u64, FleetError> {
    let (hash, counter) = keys(fleet, table);
    let entry = entry.map(|e| e.to_string()).unwrap_or_default();
    let field = field.to_owned();
    link.run_within(patience(link), |mut conn| async move {
        redis::Script::new(PUT)
            .key(hash)
            .key(counter)
            .arg(field)
            .arg(entry)
            .invoke_async(&mut conn)
            .await
    })
    .await
}

/// The table's counter alone (a cheap check for writes missed on the bus);
/// `None` when the table does not exist.
pub async fn version(link: &Link, fleet: &str, table: &str) -> Result<Option<u64>, FleetError> {
    let (_, counter) = keys(fleet, table);
    link.run_within(patience(link), |mut conn| async move {
        redis::cmd("GET").arg(counter).query_async(&mut conn).await
    })
    .await
}

/// The whole table, read atomically; `None` when it does not exist. A
/// row that does not parse (written by another program) is skipped and
/// logged.
pub async fn load(link: &Link, fleet: &str, table: &str) -> Result<Option<Snapshot>, FleetError> {
    let (hash, counter) = keys(fleet, table);
    let (version, raw): (Option<u64>, BTreeMap<String, String>) = link
        .run_within(patience(link), |mut conn| async move {
            redis::pipe()
                .atomic()
                .get(counter)
                .hgetall(hash)
                .query_async(&mut conn)
                .await
        })
        .await?;
    let Some(version) = version else {
        return Ok(None);
    };
    let rows = raw
        .into_iter()
        .filter_map(|(field, text)| match serde_json::from_str::<Row>(&text) {
            Ok(row) => Some((field, row)),
            Err(e) => {
                tracing::warn!(table, field = %field, error = %e, "fleet: skipping a row levee cannot read");
                None
            }
        })
        .collect();
    Ok(Some(Snapshot { version, rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_fleets_hash_tag() {
        assert_eq!(
            keys("shop", "mirrors:dl"),
            (
                "{shop}:mirrors:dl".into(),
                "{shop}:mirrors:dl:version".into()
            )
        );
    }

    #[test]
    fn a_stored_row_reads_back() {
        // What PUT stores for version 7 and an entry.
        let text = format!("{{\"v\":{},\"entry\":{}}}", 7, r#"{"enabled":false}"#);
        let row: Row = serde_json::from_str(&text).expect("parses");
        assert_eq!(row.version, 7);
        assert_eq!(row.entry["enabled"], false);
    }
}
