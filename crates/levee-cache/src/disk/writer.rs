//! The disk tier's thread: replays the journal at start, sweeps files the
//! journal does not name, then writes what the memory tier stored, removes
//! what was evicted or purged, syncs, and compacts the journal.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::journal::{Record, Segments};
use super::{Inner, Job, SYNC_EVERY, Slot, lock};

/// The journal is rewritten once it holds this many records beyond twice
/// the live entries.
const COMPACT_SLACK: u64 = 4096;

pub(super) fn run(inner: Arc<Inner>) {
    let started = Instant::now();
    let known = match load(&inner) {
        Ok(known) => known,
        Err(e) => {
            inner.unusable(format!(
                "reading the journal in {}: {e}",
                inner.dir().display()
            ));
            return;
        }
    };
    let ms = started.elapsed().as_millis() as u64;
    inner.stats.load_ms.store(ms.max(1), Ordering::Relaxed);
    inner.ready.store(true, Ordering::Release);
    tracing::info!(
        path = %inner.dir().display(),
        entries = inner.index.len(),
        bytes = inner.index.weight(),
        ms,
        "disk cache tier ready"
    );
    let swept = sweep(&inner, &known);
    inner.stats.swept.fetch_add(swept, Ordering::Relaxed);
    let mut last_sync = Instant::now();
    loop {
        drain_evictions(&inner);
        let job = {
            let mut s = lock(&inner.state);
            if s.stop {
                drop(s);
                // Let a tier opened on this directory have it.
                lock(&inner._lock).take();
                return;
            }
            match s.queue.pop_front() {
                Some(job) => {
                    if let Job::Write { key, entry } = &job {
                        s.queued_bytes = s.queued_bytes.saturating_sub(job.bytes());
                        s.busy = Some((key.clone(), super::tags_of(entry).into()));
                        s.cancelled = false;
                    }
                    Some(job)
                }
                None => {
                    if inner.settings.fsync
                        && let Some(j) = s.journal.as_mut()
                        && j.dirty
                    {
                        j.dirty = false;
                        if let Err(e) = j.file.sync_data() {
                            inner.failed("syncing the journal", &e);
                        }
                    }
                    // Evictions and the periodic sync are looked at after
                    // every wake-up (an eviction wakes the thread too).
                    let _ = inner
                        .wake
                        .wait_timeout(s, Duration::from_secs(1))
                        .unwrap_or_else(|p| p.into_inner());
                    None
                }
            }
        };
        match job {
            Some(Job::Write { key, entry }) => {
                let id_floor = inner.next_id.load(Ordering::Relaxed);
                lock(&inner.writing).insert(id_floor);
                let _ = inner.write(&key, &entry, true);
                lock(&inner.writing).remove(&id_floor);
                lock(&inner.state).busy = None;
            }
            Some(Job::Unlink { key, id }) => unlink(&inner, key, id),
            None => {}
        }
        if !inner.settings.fsync && last_sync.elapsed() >= SYNC_EVERY {
            last_sync = Instant::now();
            mark_synced(&inner);
        }
        compact_if_due(&inner);
    }
}

/// Removes the files the index evicted and records their removal.
fn drain_evictions(inner: &Inner) {
    let evicted: Vec<super::Evicted> = {
        let rx = lock(&inner.evicted);
        rx.try_iter().collect()
    };
    for e in evicted {
        unlink(inner, e.key.into_vec(), e.slot.id);
    }
}

fn unlink(inner: &Inner, key: Vec<u8>, id: u64) {
    match std::fs::remove_file(inner.file(id)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => inner.failed("removing an object", &e),
    }
    let mut s = lock(&inner.state);
    let record = Record::Remove { key, id };
    if let Some(j) = s.journal.as_mut()
        && let Err(e) = j.write(&record)
    {
        drop(s);
        inner.failed("appending to the journal", &e);
        return;
    }
    s.records += 1;
}

/// Replays the journal into the index and opens the next segment; returns
/// the ids in use and the highest id the journal named (for the sweep).
fn load(inner: &Inner) -> io::Result<(HashSet<u64>, u64)> {
    let segments = Segments::new(inner.dir());
    let (mut replayed, last) = segments.replay()?;
    if replayed.torn > 0 {
        tracing::warn!(
            segments = replayed.torn,
            "disk cache: the journal ended in a torn record (a crash mid-append); what it named is swept"
        );
    }
    let boot = boot_id();
    if !inner.settings.fsync
        && let Some((was, mark)) = read_mark(inner)
        && boot.is_some()
        && Some(&was) != boot.as_ref()
    {
        let before = replayed.live.len();
        replayed.live.retain(|_, l| l.id <= mark);
        tracing::warn!(
            dropped = before - replayed.live.len(),
            "disk cache: the machine restarted since the last sync; objects written after it may be torn and are dropped"
        );
    }
    // Leftovers of writes a crash interrupted.
    if let Ok(dir) = std::fs::read_dir(inner.dir().join("tmp")) {
        for entry in dir.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let reserved = std::fs::read_to_string(inner.dir().join("ids"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    // Files a crash left unrecorded have ids below the reserved bound.
    let bound = replayed.max_id.max(reserved);
    inner.next_id.store(bound + 1, Ordering::Relaxed);
    let mut live: Vec<(Vec<u8>, super::journal::Live)> = replayed.live.into_iter().collect();
    // Oldest first: S3-FIFO then evicts them first, as before the restart.
    live.sort_unstable_by_key(|(_, l)| l.id);
    let known: HashSet<u64> = live.iter().map(|(_, l)| l.id).collect();
    inner
        .stats
        .loaded
        .store(live.len() as u64, Ordering::Relaxed);
    for (key, l) in live {
        let slot = Arc::new(Slot {
            id: l.id,
            size: l.size,
            tags: l.tags.into_iter().map(Box::from).collect(),
            vary: l.vary,
        });
        inner.index.insert(key.into_boxed_slice(), slot);
    }
    let journal = segments.append(last + 1)?;
    {
        let mut s = lock(&inner.state);
        s.journal = Some(journal);
        s.records = replayed.records;
    }
    mark_synced(inner);
    Ok((known, bound))
}

/// Removes object files no entry names, up to the highest id used before
/// this start (later ones are this run's).
fn sweep(inner: &Inner, (known, max_id): &(HashSet<u64>, u64)) -> u64 {
    let mut swept = 0;
    for n in 0..=0xffu64 {
        let Ok(dir) = std::fs::read_dir(inner.dir().join("objects").join(format!("{n:02x}")))
        else {
            continue;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| u64::from_str_radix(n, 16).ok()) else {
                continue;
            };
            if id <= *max_id && !known.contains(&id) {
                // Named by no entry: unrecorded (a crash between rename and
                // record), evicted while its removal was lost, or dropped.
                if std::fs::remove_file(entry.path()).is_ok() {
                    swept += 1;
                }
            }
        }
    }
    if swept > 0 {
        tracing::info!(files = swept, "disk cache: swept files no entry names");
    }
    swept
}

/// This boot's id: a machine restart changes it.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The boot and the last id known to be on the device.
fn read_mark(inner: &Inner) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(inner.dir().join("synced")).ok()?;
    let (boot, id) = text.trim().split_once(' ')?;
    Some((boot.to_owned(), id.parse().ok()?))
}

/// Syncs the file system and records how far every object is on the
/// device: ids below the oldest write still running.
fn mark_synced(inner: &Inner) {
    let Some(boot) = boot_id() else { return };
    let through = {
        let writing = lock(&inner.writing);
        let next = inner.next_id.load(Ordering::Relaxed);
        writing
            .iter()
            .next()
            .map_or(next, |&oldest| oldest.min(next))
            - 1
    };
    let result = (|| {
        let dir = std::fs::File::open(inner.dir())?;
        rustix::fs::syncfs(&dir)?;
        super::write_atomically(&inner.dir().join("synced"), &format!("{boot} {through}\n"))
    })();
    if let Err(e) = result {
        inner.failed("syncing", &e);
    }
}

/// Rewrites the journal as the live entries once it is mostly history.
fn compact_if_due(inner: &Inner) {
    let (snapshot, live) = {
        let mut s = lock(&inner.state);
        let live = inner.index.len() as u64;
        if s.records <= 2 * live + COMPACT_SLACK {
            return;
        }
        let Some(number) = s.journal.as_ref().map(|j| j.number) else {
            return;
        };
        // New records go to a segment after the snapshot's, so replay
        // applies them on top of it.
        match Segments::new(inner.dir()).append(number + 2) {
            Ok(next) => s.journal = Some(next),
            Err(e) => {
                drop(s);
                inner.failed("starting a journal segment", &e);
                return;
            }
        }
        s.records = live;
        (number + 1, live)
    };
    let records = inner.index.iter().map(|(key, slot)| Record::Put {
        key: key.into_vec(),
        id: slot.id,
        size: slot.size,
        tags: slot.tags.iter().map(|t| t.to_string()).collect(),
        vary: slot.vary.as_ref().map(|v| v.to_vec()),
    });
    match Segments::new(inner.dir()).write_snapshot(snapshot, records) {
        Ok(()) => tracing::debug!(entries = live, "disk cache: journal compacted"),
        Err(e) => inner.failed("compacting the journal", &e),
    }
}
