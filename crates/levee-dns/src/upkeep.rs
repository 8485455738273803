//! The upkeep thread: keeps the [`View`] in step with the fleet. It wakes
//! on the fleet's changes (a heartbeat read, a drain heard on the bus), on
//! a probe verdict that changed, and every 250 ms; rebuilds each fleet
//! record's live set; and when a zone's content changed, gives it the next
//! serial, journals the change for IXFR, swaps the new view in, and sends
//! NOTIFY to the zone's secondaries. Members coming in and going out are
//! logged and counted, and so is the panic rule.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Record;
use tokio::sync::watch;

use crate::Shared;
use crate::live::{LiveSet, Mode, Place, Seen};
use crate::metrics::COUNTERS;
use crate::view::{Change, Journal, View, ZoneView, diff, next_serial};
use crate::zone::Zone;

/// How often the view is rebuilt without being asked: a member whose
/// heartbeat went stale must leave without anything waking the upkeep.
const EVERY: Duration = Duration::from_millis(250);

/// What a zone had when the view was last built, kept across reloads.
#[derive(Debug, Clone)]
pub(crate) struct ZoneState {
    pub serial: u32,
    pub journal: Arc<Journal>,
    pub records: Vec<Record>,
}

pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut changes = levee_fleet::current().map(|f| f.changes());
    let probes = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                if crate::probe::round(&shared).await {
                    shared.wake.notify_one();
                }
                let every = shared.config.load().probe.interval;
                tokio::time::sleep(every).await;
            }
        })
    };
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(EVERY) => {}
            Some(_) = async {
                match &mut changes {
                    Some(rx) => rx.changed().await.ok(),
                    None => std::future::pending().await,
                }
            } => {}
        }
        if changes.is_none() {
            changes = levee_fleet::current().map(|f| f.changes());
        }
        for (zone, serial) in refresh(&shared) {
            tokio::spawn(crate::notify::send(zone, serial));
        }
    }
    probes.abort();
}

/// Rebuilds the view; returns the zones whose serial changed.
pub(crate) fn refresh(shared: &Shared) -> Vec<(Arc<Zone>, u32)> {
    let zones = shared.zones.load_full();
    let old = shared.view.load_full();
    let fleet = levee_fleet::current();
    let (members, drained) = match &fleet {
        Some(f) => (f.snapshot().members, f.drained()),
        None => (Vec::new(), Default::default()),
    };
    let policy = shared.policy.load();
    let place = |ip: IpAddr| -> Place {
        match &policy.geo {
            Some(g) => {
                let w = g.lookup(ip);
                (w.country, w.continent)
            }
            None => (None, None),
        }
    };
    let health = crate::lock(&shared.health);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let mut states = crate::lock(&shared.states);
    let mut view = View::default();
    let mut changed = Vec::new();
    for zone in zones.iter() {
        let before = old
            .zones
            .iter()
            .find(|z| z.zone.config.name == zone.config.name);
        let mut live = Vec::new();
        for f in &zone.fleet {
            let seen: Vec<Seen<'_>> = members
                .iter()
                .filter(|m| !m.record.public.is_empty())
                .map(|m| {
                    let ports = crate::probe::ports(m, f.config.probe_port);
                    let healthy = m
                        .record
                        .public
                        .iter()
                        .map(|ip| {
                            ports.iter().try_fold(true, |all, &p| {
                                health
                                    .up(&(m.record.instance.clone(), *ip, p))
                                    .map(|up| all && up)
                            })
                        })
                        .collect();
                    Seen {
                        instance: &m.record.instance,
                        fresh: m.fresh,
                        serving: m.record.state == "serving",
                        drained: drained.contains(&m.record.instance),
                        public: &m.record.public,
                        weight: m.record.weight,
                        healthy,
                    }
                })
                .collect();
            let set = LiveSet::select(&seen, &place);
            // The same record in the view before (found by name: a reload
            // may have moved it).
            let previous = before.and_then(|b| {
                let j = b.zone.fleet.iter().position(|g| g.owner == f.owner)?;
                b.live.get(j)
            });
            match previous {
                Some(p) if **p == set => live.push(p.clone()),
                _ => {
                    report(&f.config.owner, previous.map(|p| &**p), &set);
                    live.push(Arc::new(set));
                }
            }
        }
        let mut zv = ZoneView {
            zone: zone.clone(),
            serial: 0,
            soa: zone.soa(0),
            live,
            journal: Arc::default(),
        };
        let state = settle(&mut states, zone, zv.records(), unix, &mut changed);
        zv.serial = state.serial;
        zv.soa = zone.soa(state.serial);
        zv.journal = state.journal.clone();
        view.zones.push(zv);
    }
    // Zones no longer configured are forgotten.
    states.retain(|name, _| zones.iter().any(|z| &z.config.name == name));
    view.sort();
    shared.view.store(Arc::new(view));
    changed
}

/// The zone's state once its records are `records`: a zone seen for the
/// first time, or whose records changed, takes the next serial (the change
/// journalled for IXFR) and goes into `changed`, for NOTIFY.
fn settle<'s>(
    states: &'s mut HashMap<String, ZoneState>,
    zone: &Arc<Zone>,
    records: Vec<Record>,
    unix: u32,
    changed: &mut Vec<(Arc<Zone>, u32)>,
) -> &'s ZoneState {
    let state = match states.entry(zone.config.name.clone()) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(v) => {
            let serial = next_serial(0, unix);
            changed.push((zone.clone(), serial));
            v.insert(ZoneState {
                serial,
                journal: Arc::default(),
                records: records.clone(),
            })
        }
    };
    let (removed, added) = diff(&state.records, &records);
    if !removed.is_empty() || !added.is_empty() {
        let serial = next_serial(state.serial, unix);
        state.journal = Arc::new(state.journal.with(Change {
            from: state.serial,
            to: serial,
            removed,
            added,
        }));
        tracing::info!(zone = %zone.config.name, serial, "dns: zone changed");
        state.serial = serial;
        state.records = records;
        changed.push((zone.clone(), serial));
    }
    state
}

/// Logs and counts what changed in a fleet record's set.
fn report(owner: &str, previous: Option<&LiveSet>, now: &LiveSet) {
    let empty = LiveSet::default();
    let before = previous.unwrap_or(&empty);
    let ins: Vec<&String> = now
        .members
        .iter()
        .filter(|m| !before.members.contains(m))
        .collect();
    let outs: Vec<&String> = before
        .members
        .iter()
        .filter(|m| !now.members.contains(m))
        .collect();
    COUNTERS.answer_changes.fetch_add(1, Relaxed);
    COUNTERS.members_in.fetch_add(ins.len() as u64, Relaxed);
    COUNTERS.members_out.fetch_add(outs.len() as u64, Relaxed);
    for m in &ins {
        tracing::info!(record = owner, member = %m, "dns: member in the answers");
    }
    for m in &outs {
        tracing::info!(record = owner, member = %m, "dns: member out of the answers");
    }
    if now.mode == Mode::Unprobed {
        tracing::info!(
            record = owner,
            members = now.members.len(),
            "dns: {}",
            now.mode.as_str()
        );
    } else if now.mode != Mode::In && before.mode != now.mode {
        COUNTERS.panics.fetch_add(1, Relaxed);
        tracing::warn!(
            record = owner,
            members = now.members.len(),
            "dns: no member is in; {}",
            now.mode.as_str()
        );
    } else if now.mode == Mode::In && before.mode != Mode::In && previous.is_some() {
        tracing::info!(
            record = owner,
            members = now.members.len(),
            "dns: members are in again"
        );
    }
}
