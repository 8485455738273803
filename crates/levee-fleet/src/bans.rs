//! Runtime bans and allow entries shared by the fleet (docs/fleet.md,
//! "Runtime bans"). Redis holds the list, one hash per kind
//! (`{NAME}:bans`, `{NAME}:allows`: a field per network, its entry as
//! JSON); each change is written there and announced on the bus
//! ([`crate::bus::Message::Bans`]), and every member then reads the whole
//! list again, so a ban applies fleet-wide within a second. A member also
//! reads it when it joins, when its link comes back after an outage, and
//! every [`RESYNC`], since pub/sub does not replay what a member missed.
//!
//! The process's lists themselves live in levee-protect (the hot-path
//! check); it is this module's [`Sink`]. A change made on this member is
//! applied there at once and queued here (the outbox) until Redis takes
//! it, so while Redis is away a new ban applies on this member alone and
//! reaches the others when Redis is back. A list read from Redis is
//! adopted with the outbox laid over it, so a change not yet written is
//! never undone by a read.
//!
//! Expiries are absolute times (seconds since the Unix epoch, on the
//! clock of the member that set them): every member ends a ban at the same
//! moment, give or take clock skew. A read removes expired entries from
//! Redis. If Redis lost the list (restarted empty, a failover without
//! persistence: the marker key `{NAME}:bans:kept` is gone), the members
//! write back what they know, so a ban does not vanish with Redis' data.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::bus::{self, Message};
use crate::{Fleet, FleetError};

/// How often a member reads the lists though nothing was announced (a
/// message lost in a short cut that the link did not notice).
pub const RESYNC: Duration = Duration::from_secs(10);

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Addresses refused at accept and per request.
    Ban,
    /// Addresses no ban applies to.
    Allow,
}

impl List {
    pub const ALL: [List; 2] = [List::Ban, List::Allow];

    fn key(self, fleet: &str) -> String {
        match self {
            List::Ban => format!("{{{fleet}}}:bans"),
            List::Allow => format!("{{{fleet}}}:allows"),
        }
    }
}

/// One entry as Redis holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The network (`192.0.2.7/32`, `2001:db8::/32`), also the field name.
    pub net: String,
    /// When it was set, seconds since the Unix epoch.
    pub since: u64,
    /// When it ends, seconds since the Unix epoch; `None`: until lifted.
    pub until: Option<u64>,
    /// The member that set it (empty: set before this process joined).
    #[serde(default)]
    pub by: String,
}

/// A change made on this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(List, Entry),
    Lift(List, String),
}

impl Change {
    /// `entries` as they are after this change.
    fn apply_to(&self, list: List, entries: &mut Vec<Entry>) {
        let (l, net) = match self {
            Change::Put(l, e) => (*l, &e.net),
            Change::Lift(l, net) => (*l, net),
        };
        if l != list {
            return;
        }
        entries.retain(|e| &e.net != net);
        if let Change::Put(_, e) = self {
            entries.push(e.clone());
        }
    }
}

/// The process's lists (levee-protect's ban module).
pub trait Sink: Send + Sync {
    /// Makes `entries` the list, replacing what it held.
    fn replace(&self, list: List, entries: Vec<Entry>);
    /// What the list holds now, expired entries left out.
    fn entries(&self, list: List) -> Vec<Entry>;
}

static SINK: Mutex<Option<Arc<dyn Sink>>> = Mutex::new(None);
/// Changes made here that Redis has not taken yet, oldest first.
static OUTBOX: Mutex<Vec<Change>> = Mutex::new(Vec::new());
static WAKE: Notify = Notify::const_new();
/// Set when the bus said the lists changed: read them again.
static STALE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Gives this module the process's lists (once, before joining a fleet).
pub fn set_sink(sink: Arc<dyn Sink>) {
    *lock(&SINK) = Some(sink);
}

/// Applies a change made on this member: `apply` changes the local list
/// (its error, if any, is returned and nothing is shared); then, in a
/// fleet, the change is queued for Redis and the bus. Both under one lock,
/// so a list read from Redis meanwhile is adopted with this change on it.
pub fn record<T, E>(change: Change, apply: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let mut outbox = lock(&OUTBOX);
    let done = apply()?;
    if crate::current().is_some() {
        outbox.push(change);
        drop(outbox);
        WAKE.notify_one();
    }
    Ok(done)
}

/// The bus said another member changed a list.
pub(crate) fn announced() {
    STALE.store(true, std::sync::atomic::Ordering::Relaxed);
    WAKE.notify_one();
}

/// Lists what is in force and removes what has expired; the first item
/// says whether the marker was there (`kept`) or Redis lost the lists
/// (`lost`).
const READ: &str = r#"
local out = {}
if redis.call('EXISTS', KEYS[2]) == 1 then out[1] = 'kept' else out[1] = 'lost' end
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
for i = 1, #all, 2 do
  local u = tonumber(string.match(all[i + 1], '"until":(%d+)'))
  if u and u <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i + 1]
  end
end
return out
"#;

/// Writes back entries a member knows without replacing what Redis holds
/// for the same network, and sets the marker.
const SEED: &str = r#"
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[2], '1')
return 1
"#;

fn marker(fleet: &str) -> String {
    format!("{{{fleet}}}:bans:kept")
}

struct Scripts {
    read: redis::Script,
    seed: redis::Script,
}

/// Keeps this member's lists and the fleet's in step, on the fleet thread,
/// until the task is dropped.
pub(crate) async fn keep(fleet: Arc<Fleet>) {
    let scripts = Scripts {
        read: redis::Script::new(READ),
        seed: redis::Script::new(SEED),
    };
    // Whether this member's lists went to Redis since it joined; the
    // link's outage count when they were last read.
    let mut seeded = false;
    let mut downs = u64::MAX;
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        let mut read = false;
        tokio::select! {
            _ = WAKE.notified() => {}
            _ = resync.tick() => read = true,
            // The link coming back wakes nobody: look every 100 ms.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if !fleet.is_up() {
            continue;
        }
        let now_downs = fleet
            .link
            .health
            .went_down
            .load(std::sync::atomic::Ordering::Relaxed);
        read |= now_downs != downs || STALE.swap(false, std::sync::atomic::Ordering::Relaxed);
        // Read first: after an outage the read finds out whether Redis
        // lost the lists (no marker) and writes them back before this
        // member's own changes land; those leave the marker alone, so the
        // other members find the loss too.
        let run = async {
            if read || !seeded {
                sync(&fleet, &scripts, !seeded).await?;
            }
            flush(&fleet).await
        };
        match run.await {
            Ok(_) => {
                seeded = true;
                downs = now_downs;
            }
            Err(e) => {
                tracing::debug!(error = %e, "fleet: ban lists not in step yet");
                // Try again on the next wake-up, reading in full.
                STALE.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

fn patient(fleet: &Fleet) -> Duration {
    fleet.link.timeout().max(Duration::from_secs(1))
}

/// Writes the outbox to Redis and announces it; whether anything was sent.
async fn flush(fleet: &Fleet) -> Result<bool, FleetError> {
    let pending = lock(&OUTBOX).clone();
    if pending.is_empty() {
        return Ok(false);
    }
    let name = fleet.name().to_owned();
    let mut pipe = redis::pipe();
    for c in &pending {
        match c {
            Change::Put(l, e) => {
                let json = serde_json::to_string(e).map_err(|_| FleetError::Protocol("ban"))?;
                pipe.hset(l.key(&name), &e.net, json).ignore();
            }
            Change::Lift(l, net) => {
                pipe.hdel(l.key(&name), net).ignore();
            }
        }
    }
    fleet
        .link
        .run_within(patient(fleet), |mut conn| async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await?;
    // Taken: what was queued meanwhile stays for the next round.
    lock(&OUTBOX).drain(..pending.len());
    bus::publish(
        &fleet.link,
        fleet.name(),
        fleet.instance(),
        Message::Bans {},
        &fleet.signer(),
    )
    .await?;
    Ok(true)
}

/// Reads both lists (writing back this member's when `seed`, or when Redis
/// lost them) and adopts them.
async fn sync(fleet: &Fleet, scripts: &Scripts, seed: bool) -> Result<(), FleetError> {
    let mut read = Vec::new();
    for list in List::ALL {
        let mut got = fetch(fleet, scripts, list).await?;
        if seed || got.0 == "lost" {
            write_back(fleet, scripts, list).await?;
            got = fetch(fleet, scripts, list).await?;
        }
        read.push((list, got.1));
    }
    let Some(sink) = lock(&SINK).clone() else {
        return Ok(());
    };
    let outbox = lock(&OUTBOX);
    for (list, mut entries) in read {
        for c in outbox.iter() {
            c.apply_to(list, &mut entries);
        }
        sink.replace(list, entries);
    }
    Ok(())
}

async fn fetch(
    fleet: &Fleet,
    scripts: &Scripts,
    list: List,
) -> Result<(String, Vec<Entry>), FleetError> {
    let mut call = scripts.read.prepare_invoke();
    call.key(list.key(fleet.name()))
        .key(marker(fleet.name()))
        .arg(crate::unix_ms(std::time::SystemTime::now()) / 1000);
    let raw: Vec<String> = fleet
        .link
        .run_within(patient(fleet), |mut conn| async move {
            call.invoke_async(&mut conn).await
        })
        .await?;
    let mut raw = raw.into_iter();
    let state = raw.next().ok_or(FleetError::Protocol("ban list"))?;
    // An entry levee cannot read (a newer member's) is skipped.
    let entries = raw.filter_map(|j| serde_json::from_str(&j).ok()).collect();
    Ok((state, entries))
}

async fn write_back(fleet: &Fleet, scripts: &Scripts, list: List) -> Result<(), FleetError> {
    let mine = lock(&SINK)
        .clone()
        .map(|s| s.entries(list))
        .unwrap_or_default();
    let mut call = scripts.seed.prepare_invoke();
    call.key(list.key(fleet.name())).key(marker(fleet.name()));
    for e in &mine {
        let json = serde_json::to_string(e).map_err(|_| FleetError::Protocol("ban"))?;
        call.arg(&e.net).arg(json);
    }
    if !mine.is_empty() {
        tracing::info!(
            entries = mine.len(),
            ?list,
            "fleet: writing this member's runtime list back to Redis"
        );
    }
    fleet
        .link
        .run_within(patient(fleet), |mut conn| async move {
            call.invoke_async::<i64>(&mut conn).await
        })
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(net: &str, until: Option<u64>) -> Entry {
        Entry {
            net: net.into(),
            since: 1,
            until,
            by: "m1".into(),
        }
    }

    #[test]
    fn changes_lay_over_a_list_read_from_redis() {
        let mut read = vec![entry("192.0.2.1/32", None), entry("192.0.2.2/32", Some(9))];
        Change::Lift(List::Ban, "192.0.2.1/32".into()).apply_to(List::Ban, &mut read);
        Change::Put(List::Ban, entry("192.0.2.2/32", None)).apply_to(List::Ban, &mut read);
        // Another list's change leaves this one alone.
        Change::Put(List::Allow, entry("192.0.2.3/32", None)).apply_to(List::Ban, &mut read);
        assert_eq!(read, vec![entry("192.0.2.2/32", None)]);
        assert_eq!(List::Allow.key("shop"), "{shop}:allows");
        assert_eq!(marker("shop"), "{shop}:bans:kept");
    }

    #[test]
    fn entries_are_json_with_the_expiry_the_script_reads() {
        let j = serde_json::to_string(&entry("10.0.0.0/8", Some(1_700_000_000))).expect("JSON");
        assert!(j.contains(r#""until":1700000000"#), "{j}");
        let forever = serde_json::to_string(&entry("10.0.0.0/8", None)).expect("JSON");
        assert!(forever.contains(r#""until":null"#), "{forever}");
        let old: Entry =
            serde_json::from_str(r#"{"net":"10.0.0.0/8","since":1,"until":null}"#).expect("reads");
        assert_eq!(old.by, "");
    }
}
