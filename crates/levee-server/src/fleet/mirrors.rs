//! The download redirector's runtime edits shared through the fleet
//! (docs/mirrors.md, "Fleet"). Per mirror set, a task on the control
//! thread ([`share`]) writes this member's edits into the set's table in
//! Redis (`{NAME}:mirrors:SET`, levee-fleet's `table.rs`) and announces
//! each on the bus; every other member applies it as it arrives
//! ([`heard`], on the fleet thread). The task reads the whole table when
//! it starts (a member starting, or a reload), whenever Redis was away
//! meanwhile, and when the table's version, read every [`CHECK`], shows a
//! write the bus did not bring (pub/sub delivers at most once).
//!
//! An edit made while Redis is away applies here at once and stays
//! "unsent" (also on disk) until Redis is back; it is then written over
//! what others wrote meanwhile. Health, probes and automatic disabling are
//! not shared: each member judges each mirror from where it stands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use levee_fleet::bus::Message;
use levee_fleet::{Fleet, FleetError, table};
use levee_mirror::MirrorSet;
use levee_mirror::edits::Edit;
use levee_mirror::edits::shared::Row;
use serde_json::Value;

/// How often the table's version is compared with what was last read.
const CHECK: Duration = Duration::from_secs(5);
/// How often the task looks at the link when nothing wakes it.
const TICK: Duration = Duration::from_millis(250);

/// Shares `set`'s edits through `fleet` until the task is dropped (the
/// next reload starts another).
pub(crate) async fn share(set: Arc<MirrorSet>, fleet: Arc<Fleet>) {
    set.set_shared(true);
    // The link's outage count when the table was last read whole, and
    // the table's version then.
    let mut read: Option<(u64, u64)> = None;
    let mut checked = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = set.share_now.notified() => {}
            _ = tick.tick() => {}
        }
        if !fleet.is_up() {
            continue;
        }
        let outages = fleet.link.health.went_down.load(Ordering::Relaxed);
        if let Err(e) = write_unsent(&set, &fleet).await {
            tracing::debug!(set = %set.name, error = %e, "fleet: mirror edits not written yet");
            continue;
        }
        let stale = match read {
            Some((o, _)) if o != outages => true,
            None => true,
            Some((_, version)) if checked.elapsed() >= CHECK => {
                checked = tokio::time::Instant::now();
                match table::version(&fleet.link, fleet.name(), &set.table()).await {
                    Ok(now) => now != Some(version),
                    Err(_) => false,
                }
            }
            Some(_) => false,
        };
        if !stale {
            continue;
        }
        match read_table(&set, &fleet).await {
            Ok(version) => {
                read = Some((outages, version));
                checked = tokio::time::Instant::now();
            }
            Err(e) => {
                tracing::warn!(set = %set.name, error = %e, "fleet: cannot read the shared mirror list")
            }
        }
    }
}

/// Writes what Redis has not got, each then announced on the bus; what
/// fails stays unsent.
async fn write_unsent(set: &MirrorSet, fleet: &Fleet) -> Result<(), FleetError> {
    let Ok(unsent) = set.take_unsent() else {
        return Ok(());
    };
    let table = set.table();
    let mut rest = unsent.into_iter();
    while let Some((name, entry)) = rest.next() {
        let signer = fleet.signer();
        let put = table::put(
            &fleet.link,
            (fleet.name(), &signer),
            &table,
            &name,
            entry.as_ref(),
        );
        match put.await {
            Ok(version) => {
                set.sent(&name, version);
                tracing::info!(set = %set.name, mirror = %name, version, "fleet: mirror edit shared");
                fleet.publish(Message::MirrorEdit {
                    set: set.name.clone(),
                    name,
                    version,
                    entry,
                });
            }
            Err(e) => {
                set.unsent_again(std::iter::once(name).chain(rest.map(|(n, _)| n)));
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Reads the table whole and makes it this member's edits; the table's
/// version (0 when Redis has none: this member's edits then seed it).
async fn read_table(set: &MirrorSet, fleet: &Fleet) -> Result<u64, FleetError> {
    let signer = fleet.signer();
    let snapshot = table::load(&fleet.link, (fleet.name(), &signer), &set.table()).await?;
    let version = snapshot.as_ref().map_or(0, |s| s.version);
    let table = snapshot.map(|s| {
        let rows: BTreeMap<String, Row> = s
            .rows
            .into_iter()
            .filter_map(|(name, row)| {
                let edit = readable(set, &name, &row.entry)?;
                Some((
                    name,
                    Row {
                        version: row.version,
                        edit: Some(edit),
                    },
                ))
            })
            .collect();
        (s.version, rows)
    });
    match set.load_shared(table) {
        Ok(0) => {}
        Ok(n) => tracing::info!(set = %set.name, changed = n, "fleet: mirror list read from Redis"),
        Err(e) => tracing::warn!(set = %set.name, error = %e, "fleet: mirror list not applied"),
    }
    Ok(version)
}

/// An edit from the table or the bus, held to the config's rules; one
/// that fails them (another levee version's, or another program's) is
/// logged and skipped.
fn readable(set: &MirrorSet, name: &str, entry: &Value) -> Option<Edit> {
    match Edit::from_json(entry) {
        Ok(e) if e.mirror.as_ref().is_none_or(|m| m.name == name) => Some(e),
        Ok(_) => {
            tracing::warn!(set = %set.name, mirror = %name, "fleet: skipping a shared mirror edit under another name");
            None
        }
        Err(error) => {
            tracing::warn!(set = %set.name, mirror = %name, %error, "fleet: skipping a shared mirror edit");
            None
        }
    }
}

/// Applies an edit another member announced (on the fleet thread: an
/// in-memory change and a small file write).
pub(crate) fn heard(
    site: &levee_http::Site,
    set: &str,
    name: &str,
    version: u64,
    entry: Option<&Value>,
) {
    let Some(s) = site.mirrors.get(set) else {
        return;
    };
    let edit = match entry {
        Some(v) => match readable(s, name, v) {
            Some(e) => Some(e),
            None => return,
        },
        None => None,
    };
    match s.apply_shared(name, Row { version, edit }) {
        Ok(true) => {
            tracing::info!(set = %set, mirror = %name, version, "fleet: mirror edit applied")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(set = %set, mirror = %name, error = %e, "fleet: mirror edit not applied")
        }
    }
}
