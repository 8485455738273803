//! Config pushes (`levee ctl fleet push`, docs/fleet.md "Config rollout"):
//! the push goes out on the bus ([`crate::bus::Message::ConfigPush`]), and
//! each member writes its report into the hash `{NAME}:push:ID`, one field
//! per member. Reports are kept in a key rather than sent on the bus so that
//! whoever waits for them (the member whose admin API took the push) reads
//! every one, also those written while its own subscription was being
//! renewed; they expire after [`KEEP`].
//!
//! Like every message on the bus, a push is signed with the fleet's key
//! ([`crate::bus::Signer`]): another client of the same Redis cannot push
//! a config.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::FleetError;
use crate::link::Link;

/// How long a push's reports stay readable.
pub const KEEP: Duration = Duration::from_secs(3600);

/// What a member did with a push.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Checked, applied as a reload, and saved over the member's config
    /// file.
    Applied,
    /// Refused (by its checks or the reload); the member keeps its config.
    Refused,
    /// Applied, but the file could not be saved: the member runs the push
    /// and would start on its old file.
    Unsaved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Refused => "refused",
            Status::Unsaved => "unsaved",
        }
    }
}

/// One member's report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    pub status: Status,
    /// The member's [`crate::config_hash`] of the pushed config, as its
    /// heartbeat reports it once applied.
    pub config_hash: String,
    /// The member's config file, which a push rewrites.
    pub file: String,
    /// Why it refused, one problem a line (`FILE:LINE:COLUMN: KEY: MESSAGE`).
    #[serde(default)]
    pub errors: Vec<String>,
}

pub fn key(fleet: &str, id: &str) -> String {
    format!("{{{fleet}}}:push:{id}")
}

/// A new push's identifier: the time and 48 random bits, so two pushes
/// never share their reports.
pub fn new_id() -> String {
    let mut random = [0u8; 6];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", crate::unix_ms(std::time::SystemTime::now()))
}

/// Writes this member's report of push `id`.
pub async fn report(
    link: &Link,
    fleet: &str,
    id: &str,
    instance: &str,
    report: &Report,
) -> Result<(), FleetError> {
    let json = serde_json::to_string(report).map_err(|_| FleetError::Protocol("report"))?;
    let key = key(fleet, id);
    let patient = link.timeout().max(Duration::from_secs(1));
    link.run_within(patient, |mut conn| async move {
        redis::pipe()
            .hset(&key, instance, json)
            .ignore()
            .pexpire(&key, KEEP.as_millis() as i64)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    })
    .await
}

/// Every report of push `id` so far, by member; a report levee cannot read
/// (a newer member's) is skipped.
pub async fn reports(
    link: &Link,
    fleet: &str,
    id: &str,
) -> Result<BTreeMap<String, Report>, FleetError> {
    let key = key(fleet, id);
    let patient = link.timeout().max(Duration::from_secs(1));
    let raw: BTreeMap<String, String> = link
        .run_within(patient, |mut conn| async move {
            redis::cmd("HGETALL").arg(key).query_async(&mut conn).await
        })
        .await?;
    Ok(raw
        .into_iter()
        .filter_map(|(who, json)| Some((who, serde_json::from_str(&json).ok()?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_reports_round_trip() {
        assert_ne!(new_id(), new_id());
        assert_eq!(key("shop", "1-ab"), "{shop}:push:1-ab");
        let r = Report {
            status: Status::Refused,
            config_hash: "abc".into(),
            file: "/etc/levee/levee.toml".into(),
            errors: vec!["/etc/levee/levee.toml:3:1: route: missing".into()],
        };
        let json = serde_json::to_string(&r).expect("JSON");
        assert!(json.contains("\"status\":\"refused\""), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).expect("parses"), r);
    }
}
