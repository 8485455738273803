//! Versioned shared tables: state every member must end up agreeing on
//! (the mirror list's runtime edits, docs/mirrors.md "Fleet"), kept in
//! Redis rather than only said on the bus, since pub/sub delivers at most
//! once and a member that was away must catch up by reading.
//!
//! A table `T` is the hash `{NAME}:T` (one JSON row per entry:
//! `{"v": VERSION, "sig": SIGNATURE, "entry": "ENTRY AS JSON TEXT"}`) and
//! the counter `{NAME}:T:version`. Rows are signed as the bus's messages
//! are ([`Signer`]), over the table, the field and the entry's text, and
//! a row without the fleet's signature is skipped: another client of the
//! same Redis cannot add a mirror that members would redirect to. (It
//! could put back an older signed row of the same field; the version is
//! not signed, being Redis'.)
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
use crate::bus::Signer;
use crate::link::Link;

/// Takes the next version, then stores (or, with an empty entry, deletes)
/// the row; answers the version.
const PUT: &str = r#"
local v = redis.call('INCR', KEYS[2])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], '{"v":' .. v .. ',"sig":"' .. ARGV[3] .. '","entry":' .. ARGV[2] .. '}')
end
return v
"#;

/// A row as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub version: u64,
    pub entry: serde_json::Value,
}

/// A row as stored.
#[derive(Debug, Deserialize)]
struct Stored {
    v: u64,
    sig: String,
    /// The entry's JSON text, as signed.
    entry: String,
}

/// What a row's signature covers.
fn signed(table: &str, field: &str, entry: &str) -> String {
    format!("levee table\0{table}\0{field}\0{entry}")
}

/// Reads a stored row of `field`, if it is the fleet's.
fn read_row(table: &str, field: &str, text: &str, signer: &Signer) -> Result<Row, &'static str> {
    let stored: Stored = serde_json::from_str(text).map_err(|_| "not a row levee writes")?;
    let body = signed(table, field, &stored.entry);
    if !signer.verify(body.as_bytes(), stored.sig.as_bytes()) {
        return Err("without the fleet's signature");
    }
    let entry = serde_json::from_str(&stored.entry).map_err(|_| "an entry that is not JSON")?;
    Ok(Row {
        version: stored.v,
        entry,
    })
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
    (fleet, signer): (&str, &Signer),
    table: &str,
    field: &str,
    entry: Option<&serde_json::Value>,
) -> Result<u64, FleetError> {
    let (hash, counter) = keys(fleet, table);
    let (entry, sig) = match entry {
        Some(e) => {
            let text = e.to_string();
            let sig = signer.sign(signed(table, field, &text).as_bytes());
            // The text as a JSON string, spliced into the row by PUT.
            (serde_json::Value::String(text).to_string(), sig)
        }
        None => (String::new(), String::new()),
    };
    let field = field.to_owned();
    link.run_within(patience(link), |mut conn| async move {
        redis::Script::new(PUT)
            .key(hash)
            .key(counter)
            .arg(field)
            .arg(entry)
            .arg(sig)
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
/// row that does not read, or is not signed with the fleet's key
/// (written by another program), is skipped and logged.
pub async fn load(
    link: &Link,
    (fleet, signer): (&str, &Signer),
    table: &str,
) -> Result<Option<Snapshot>, FleetError> {
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
        .filter_map(|(field, text)| match read_row(table, &field, &text, signer) {
            Ok(row) => Some((field, row)),
            Err(why) => {
                tracing::warn!(table, field = %field, why, "fleet: skipping a row of a shared table");
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

    /// What PUT stores for version 7.
    fn stored(sig: &str, entry: &str) -> String {
        let entry = serde_json::Value::String(entry.to_owned()).to_string();
        format!("{{\"v\":7,\"sig\":\"{sig}\",\"entry\":{entry}}}")
    }

    #[test]
    fn only_rows_signed_by_the_fleet_read_back() {
        let signer = Signer::new("shop", "s3cret");
        let entry = r#"{"enabled":false}"#;
        let sig = signer.sign(signed("mirrors:dl", "de1", entry).as_bytes());
        let row = read_row("mirrors:dl", "de1", &stored(&sig, entry), &signer).expect("reads");
        assert_eq!(row.version, 7);
        assert_eq!(row.entry["enabled"], false);
        // Another entry, field, table or key under that signature; no
        // signature; not a row.
        let other = r#"{"enabled":true}"#;
        for (table, field, text, key) in [
            ("mirrors:dl", "de1", stored(&sig, other), &signer),
            ("mirrors:dl", "de2", stored(&sig, entry), &signer),
            ("mirrors:up", "de1", stored(&sig, entry), &signer),
            (
                "mirrors:dl",
                "de1",
                stored(&sig, entry),
                &Signer::new("shop", "guess"),
            ),
            ("mirrors:dl", "de1", stored("", entry), &signer),
            (
                "mirrors:dl",
                "de1",
                format!("{{\"v\":7,\"entry\":{entry}}}"),
                &signer,
            ),
        ] {
            assert!(
                read_row(table, field, &text, key).is_err(),
                "{table} {field} {text}"
            );
        }
    }
}
