//! Membership: each member writes its record into the hash `{NAME}:members`
//! every `heartbeat`, stamped with Redis' clock, and reads everyone's back
//! in the same script call. A record older than its member's
//! `heartbeat_ttl` is stale: that member is gone or cut off. The last list
//! read is kept, so the local-fallback arithmetic (how many members share a
//! limit) still has an answer while Redis is away.
//!
//! Records stale for a day are removed by whoever reads them, so a fleet
//! that renamed its members does not list the old names for ever.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::FleetError;
use crate::link::Link;

/// A member's own account of itself (docs/fleet.md lists the fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub instance: String,
    pub version: String,
    /// Hash of the member's effective config (`config_hash`).
    pub config_hash: String,
    /// `NAME ADDRESS` of each listener.
    pub listeners: Vec<String>,
    /// `serving`, or `stopping` once a stop began.
    pub state: String,
    /// Open client connections.
    pub connections: u64,
    /// Requests per second over the last heartbeat.
    pub requests_per_s: f64,
    /// CPU used over the last heartbeat, in percent of one core.
    pub cpu_percent: f64,
    /// Milliseconds since the Unix epoch when the member started.
    pub started_ms: u64,
    pub heartbeat_ms: u64,
    pub ttl_ms: u64,
    /// `[fleet] public_addresses`: what the fleet's DNS answers for this
    /// member. Members of an older version send none (and are in no answer).
    #[serde(default)]
    pub public: Vec<IpAddr>,
    /// `[fleet] weight` in DNS answers.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// A record as read back, with its age on Redis' clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub record: Record,
    pub age_ms: u64,
    pub fresh: bool,
}

/// Records stale for longer than this are removed.
const FORGET_MS: u64 = 24 * 3600 * 1000;

/// Writes this member's record and returns everyone's, in one call.
const BEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stamp = string.format('%.0f', now)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], stamp .. '|' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, stamp)
return all
";

pub fn key(fleet: &str) -> String {
    format!("{{{fleet}}}:members")
}

/// Writes `record` (or, with `None`, removes this member) and reads the
/// members' records.
pub async fn beat(
    link: &Link,
    fleet: &str,
    instance: &str,
    record: Option<&Record>,
) -> Result<Vec<Member>, FleetError> {
    let json = match record {
        Some(r) => serde_json::to_string(r).map_err(|_| FleetError::Protocol("record"))?,
        None => String::new(),
    };
    let script = redis::Script::new(BEAT);
    let mut call = script.prepare_invoke();
    call.key(key(fleet)).arg(instance).arg(json).arg(FORGET_MS);
    let patient = link.timeout().max(std::time::Duration::from_secs(1));
    let raw: Vec<String> = link
        .run_within(patient, |mut conn| async move {
            call.invoke_async(&mut conn).await
        })
        .await?;
    let now: u64 = raw
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or(FleetError::Protocol("membership time"))?;
    let mut members = Vec::new();
    let mut forget = Vec::new();
    for pair in raw[1..].chunks_exact(2) {
        let Some((stamp, json)) = pair[1].split_once('|') else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Record>(json) else {
            continue;
        };
        let age_ms = now.saturating_sub(stamp.parse().unwrap_or(0));
        if age_ms > FORGET_MS {
            forget.push(pair[0].clone());
            continue;
        }
        members.push(Member {
            fresh: age_ms <= record.ttl_ms,
            age_ms,
            record,
        });
    }
    if !forget.is_empty() {
        let k = key(fleet);
        let _ = link
            .run_within(patient, |mut conn| async move {
                redis::cmd("HDEL")
                    .arg(k)
                    .arg(forget)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
    }
    members.sort_by(|a, b| a.record.instance.cmp(&b.record.instance));
    Ok(members)
}

/// CPU time used by this process so far, in clock ticks (`/proc/self/stat`).
pub fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may contain spaces: utime is the
    // 12th and stime the 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tick(11) + tick(12)
}

/// Clock ticks per second as Linux reports CPU times (`USER_HZ`, 100 on
/// every mainstream architecture).
pub const TICKS_PER_S: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_read_this_process() {
        let before = cpu_ticks();
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_ticks() >= before);
    }

    #[test]
    fn records_round_trip_as_json() {
        let r = Record {
            instance: "web-1".into(),
            version: "0.1.0".into(),
            config_hash: "abc".into(),
            listeners: vec!["web 127.0.0.1:80".into()],
            state: "serving".into(),
            connections: 3,
            requests_per_s: 12.5,
            cpu_percent: 1.0,
            started_ms: 1,
            heartbeat_ms: 1000,
            ttl_ms: 5000,
            public: vec!["192.0.2.1".parse().expect("an address")],
            weight: 3,
        };
        let json = serde_json::to_string(&r).expect("serialises");
        assert_eq!(serde_json::from_str::<Record>(&json).expect("parses"), r);
        assert_eq!(key("shop"), "{shop}:members");
    }

    #[test]
    fn records_of_older_members_still_read() {
        let old = r#"{"instance":"a","version":"0.1.0","config_hash":"x","listeners":[],
            "state":"serving","connections":0,"requests_per_s":0.0,"cpu_percent":0.0,
            "started_ms":1,"heartbeat_ms":1000,"ttl_ms":5000}"#;
        let r: Record = serde_json::from_str(old).expect("an older record parses");
        assert_eq!((r.public.len(), r.weight), (0, 1));
    }
}
