//! Config pushes (`levee ctl fleet push`, docs/fleet.md "Config rollout"):
//! the push goes out on the bus ([`crate::bus::Message::ConfigPush`]), and
//! each member writes its report into the hash `{NAME}:push:ID`, one field
//! per member. Reports are kept in a key rather than sent on the bus so that
//! whoever waits for them (the member whose admin API took the push) reads
//! every one, also those written while its own subscription was being
//! renewed; they expire after [`KEEP`].
//!
//! A push is signed ([`Signer`]: HMAC-SHA256 keyed by the fleet's name and
//! levee's Redis password) and a member applies only one whose signature
//! holds, so another client of the same Redis (an application with its
//! own ACL user allowed to publish) cannot push a config. Without a Redis
//! password the key follows from the fleet's name: then Redis' ACL is the
//! only boundary (docs/fleet.md).

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

/// Signs and checks pushes with the fleet's shared secret.
#[derive(Clone)]
pub struct Signer(ring::hmac::Key);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub fn new(fleet: &str, secret: &str) -> Signer {
        let seed = format!("levee fleet push\0{fleet}\0{secret}");
        let key = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
        Signer(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_ref()))
    }

    /// The fields a signature covers, each with its length first so no two
    /// pushes read alike.
    fn message(id: &str, hash: &str, config: &str, targets: Option<&[String]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(config.len() + 64);
        let mut field = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        };
        field(id.as_bytes());
        field(hash.as_bytes());
        field(config.as_bytes());
        match targets {
            None => field(b"*"),
            Some(t) => {
                for name in t {
                    field(name.as_bytes());
                }
            }
        }
        out
    }

    /// The signature, in hex.
    pub fn sign(&self, id: &str, hash: &str, config: &str, targets: Option<&[String]>) -> String {
        let tag = ring::hmac::sign(&self.0, &Self::message(id, hash, config, targets));
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` is this fleet's for those fields (in constant
    /// time).
    pub fn verify(
        &self,
        id: &str,
        hash: &str,
        config: &str,
        targets: Option<&[String]>,
        signature: &str,
    ) -> bool {
        let Some(tag) = unhex(signature) else {
            return false;
        };
        let message = Self::message(id, hash, config, targets);
        ring::hmac::verify(&self.0, &message, &tag).is_ok()
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
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
    fn only_the_fleets_own_signature_holds() {
        let s = Signer::new("shop", "s3cret");
        let targets = vec!["m0".to_owned()];
        let sig = s.sign("1-ab", "h", "x = 1\n", Some(&targets));
        assert!(s.verify("1-ab", "h", "x = 1\n", Some(&targets), &sig));
        // Another config, other targets, another secret or fleet: refused.
        assert!(!s.verify("1-ab", "h", "x = 2\n", Some(&targets), &sig));
        assert!(!s.verify("1-ab", "h", "x = 1\n", None, &sig));
        assert!(!Signer::new("shop", "guess").verify("1-ab", "h", "x = 1\n", Some(&targets), &sig));
        assert!(!Signer::new("shoe", "s3cret").verify(
            "1-ab",
            "h",
            "x = 1\n",
            Some(&targets),
            &sig
        ));
        assert!(!s.verify("1-ab", "h", "x = 1\n", Some(&targets), ""));
        assert!(!s.verify("1-ab", "h", "x = 1\n", Some(&targets), "zz"));
        assert!(format!("{s:?}").contains("redacted"));
    }

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
