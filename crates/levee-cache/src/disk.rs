//! The disk tier: stored responses in files, kept across restarts.
//!
//! ```text
//! DIR/lock                 flock: one levee per directory
//! DIR/journal.N            what is stored where (journal.rs)
//! DIR/synced               the last id known to be on the device, and the boot
//! DIR/objects/XX/ID        header (codec.rs) then body; XX = ID's low byte
//! DIR/tmp/ID               a file being written (renamed into objects/ when complete)
//! ```
//!
//! - **Index.** Keys, file ids, sizes and tags live in memory, in the same
//!   S3-FIFO map as the memory tier (`quick_cache`), weighed by the bytes
//!   of their files in 4 KiB blocks; heads and bodies stay on disk. A hit
//!   opens the file, reads and checks its header (a few KiB) and hands
//!   the body to the HTTP side as a [`FileRegion`], sent with `sendfile`.
//! - **Start.** The index is the journal replayed: one sequential read,
//!   no object opened ([`Disk::open`] loads it in a thread of its own;
//!   lookups miss until it is ready). Files the journal does not name are
//!   swept afterwards.
//! - **Writes** are atomic: a temporary file, written whole, then renamed;
//!   the journal record follows the rename, so a file is used only once
//!   complete. A crash mid-write leaves a temporary file (removed at start)
//!   or an unrecorded object (swept), never a torn object. `fsync = true`
//!   syncs each file before its rename and the journal after each batch;
//!   without it, the writer syncs the file system every [`SYNC_EVERY`] and
//!   records the last id synced with the boot's id: after a machine crash
//!   (the boot id changed) objects written after that point are dropped.
//! - **Who writes.** Objects the memory tier stored are written through by
//!   the writer thread (`writer.rs`), off the request path; an object too
//!   large for memory is streamed to its temporary file by the miss that
//!   relays it ([`DiskCopy`]) and committed when complete, on the request's
//!   thread, as nginx writes its cache files.
//! - **Failures.** A write that fails (ENOSPC, EIO, a read-only file
//!   system) turns writes off for [`BACKOFF`], logged once and counted: the
//!   cache goes on in memory and clients never see it. A read that fails
//!   counts and is a miss.
//!
//! File I/O here is blocking, as the static file sender's: a hit's open
//! and header read, and a streamed copy's writes, run on the worker thread
//! (page cache speed; a cold disk stalls that worker as nginx's would).

mod copy;
mod file;
mod inner;
pub mod journal;
mod writer;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, Weighter};

use crate::store::{Entry, Object, PurgeFn};
pub use copy::DiskCopy;
use file::write_atomically;
use journal::Appender;

/// How long writes stay off after one failed.
pub const BACKOFF: Duration = Duration::from_secs(10);
/// How often, without `fsync`, the writer syncs the file system and
/// records how far it got.
pub const SYNC_EVERY: Duration = Duration::from_secs(30);
/// A disk block: sizes are counted in these.
const BLOCK: u64 = 4096;
/// The first read of a hit: most headers fit.
const FIRST_READ: usize = 4096;

/// `[cache.disk]` as the tier needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub path: PathBuf,
    pub max_size: u64,
    pub max_object_size: u64,
    pub fsync: bool,
}

/// What the index keeps per entry.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    /// Bytes of the file (0 for a Vary marker).
    size: u64,
    tags: Box<[Box<str>]>,
    vary: Option<Arc<[String]>>,
}

impl Slot {
    fn weight(&self) -> u64 {
        self.size.div_ceil(BLOCK).max(1) * BLOCK
    }
}

#[derive(Debug, Clone, Copy)]
struct ByBlocks;

impl Weighter<Box<[u8]>, Arc<Slot>> for ByBlocks {
    fn weight(&self, _key: &Box<[u8]>, slot: &Arc<Slot>) -> u64 {
        slot.weight()
    }
}

/// What the writer is told besides objects to write: files the index
/// evicted (sent from inside the map's lock, so without taking any other).
#[derive(Debug)]
pub(crate) struct Evicted {
    key: Box<[u8]>,
    slot: Arc<Slot>,
}

#[derive(Debug, Clone)]
struct Evictions {
    tx: mpsc::Sender<Evicted>,
    wake: Arc<Condvar>,
    count: Arc<AtomicU64>,
}

impl Lifecycle<Box<[u8]>, Arc<Slot>> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), key: Box<[u8]>, slot: Arc<Slot>) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Evicted { key, slot });
        self.wake.notify_one();
    }
}

type Index = Cache<Box<[u8]>, Arc<Slot>, ByBlocks, quick_cache::DefaultHashBuilder, Evictions>;

/// One job for the writer thread.
#[derive(Debug)]
pub(crate) enum Job {
    /// Write `entry` for `key` (an object's whole file, or a Vary record).
    Write { key: Vec<u8>, entry: Entry },
    /// Forget file `id` of `key`: unlink it and record the removal.
    Unlink { key: Vec<u8>, id: u64 },
}

impl Job {
    fn bytes(&self) -> u64 {
        match self {
            Job::Write {
                entry: Entry::Object(o),
                ..
            } => o.body.len() + o.head.len() as u64,
            _ => 0,
        }
    }
}

/// The key being written and its tags.
type Busy = (Vec<u8>, Box<[Box<str>]>);

/// The writer's queue and the journal, under one lock: a commit (rename,
/// record, index) and a purge never interleave, so a purge cannot be undone
/// by a write that was queued before it.
#[derive(Debug)]
pub(crate) struct State {
    queue: std::collections::VecDeque<Job>,
    queued_bytes: u64,
    /// The key the writer is writing now, with its tags, and whether a
    /// removal or purge has since cancelled it.
    busy: Option<Busy>,
    cancelled: bool,
    journal: Option<Appender>,
    /// Records appended since the last compaction (replayed ones included).
    records: u64,
    stop: bool,
}

/// Counters for metrics and `levee ctl cache stats`.
#[derive(Debug, Default)]
pub struct DiskStats {
    /// Objects and markers written and committed.
    pub writes: AtomicU64,
    /// Writes not done: queue full, object too large, writes off.
    pub skipped: AtomicU64,
    /// Failed writes and reads.
    pub errors: AtomicU64,
    /// Files found torn, damaged or missing on a hit (each one a miss).
    pub corrupt: AtomicU64,
    /// Entries evicted to stay within `max_size`.
    pub evictions: Arc<AtomicU64>,
    /// Milliseconds the start's replay took (0 until ready).
    pub load_ms: AtomicU64,
    /// Entries the replay found.
    pub loaded: AtomicU64,
    /// Files swept at start (unrecorded, or newer than the last sync
    /// before a machine crash).
    pub swept: AtomicU64,
}

/// Why the tier is not writing, and until when.
#[derive(Debug, Default)]
struct Trouble {
    until: Option<Instant>,
    reason: String,
}

/// The disk tier. Cheap to share (`Arc`); dropping the last handle stops
/// its writer thread.
pub struct Disk {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    settings: Settings,
    index: Index,
    state: Mutex<State>,
    wake: Arc<Condvar>,
    evicted: Mutex<mpsc::Receiver<Evicted>>,
    next_id: AtomicU64,
    /// Ids of files being written now (a streamed copy's, the writer's):
    /// the sync mark stays below the oldest.
    writing: Mutex<std::collections::BTreeSet<u64>>,
    /// Ids below this are recorded as possibly used (`DIR/ids`).
    reserved: Mutex<u64>,
    ready: AtomicBool,
    /// Set when the directory cannot be used at all (not creatable, locked
    /// by another levee): the tier stays empty.
    unusable: Mutex<Option<String>>,
    trouble: Mutex<Trouble>,
    pub stats: DiskStats,
    /// Held for the process's life: the directory's flock.
    _lock: Mutex<Option<File>>,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("path", &self.inner.settings.path)
            .field("entries", &self.inner.index.len())
            .field("ready", &self.inner.ready.load(Ordering::Relaxed))
            .finish()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("path", &self.settings.path)
            .finish()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Ok(mut s) = self.inner.state.lock() {
            s.stop = true;
        }
        self.inner.wake.notify_all();
    }
}

/// The health of the tier, as shown in `/cache` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Replaying the journal: lookups miss, nothing is written.
    Loading,
    Ready,
    /// Writes are off for now (a failed write), reads go on.
    Degraded(String),
    /// The directory cannot be used; the cache is memory only.
    Unusable(String),
}

impl Disk {
    /// Opens the tier at `settings.path`: creates the directories, takes
    /// the lock and starts the thread that replays the journal and then
    /// writes. Problems are logged and leave an unusable, empty tier;
    /// they never stop levee.
    pub fn open(settings: Settings) -> Disk {
        let (tx, rx) = mpsc::channel();
        let wake = Arc::new(Condvar::new());
        let stats = DiskStats::default();
        let evictions = Evictions {
            tx,
            wake: wake.clone(),
            count: stats.evictions.clone(),
        };
        let items = usize::try_from((settings.max_size / (64 * 1024)).clamp(16, 1 << 22))
            .unwrap_or(1 << 16);
        let index = Index::with(
            items,
            settings.max_size.max(1),
            ByBlocks,
            quick_cache::DefaultHashBuilder::default(),
            evictions,
        );
        let inner = Arc::new(Inner {
            settings,
            index,
            state: Mutex::new(State {
                queue: Default::default(),
                queued_bytes: 0,
                busy: None,
                cancelled: false,
                journal: None,
                records: 0,
                stop: false,
            }),
            wake,
            evicted: Mutex::new(rx),
            next_id: AtomicU64::new(1),
            writing: Mutex::new(Default::default()),
            reserved: Mutex::new(0),
            ready: AtomicBool::new(false),
            unusable: Mutex::new(None),
            trouble: Mutex::new(Trouble::default()),
            stats,
            _lock: Mutex::new(None),
        });
        match inner.prepare() {
            Ok(()) => {
                let thread = inner.clone();
                let spawned = std::thread::Builder::new()
                    .name("levee-cache-disk".into())
                    .spawn(move || writer::run(thread));
                if let Err(e) = spawned {
                    inner.unusable(format!("starting its thread: {e}"));
                }
            }
            Err(e) => inner.unusable(e),
        }
        Disk { inner }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn stats(&self) -> &DiskStats {
        &self.inner.stats
    }

    pub fn health(&self) -> Health {
        if let Some(why) = lock(&self.inner.unusable).clone() {
            return Health::Unusable(why);
        }
        if !self.inner.ready.load(Ordering::Acquire) {
            return Health::Loading;
        }
        let t = lock(&self.inner.trouble);
        match t.until {
            Some(until) if until > Instant::now() => Health::Degraded(t.reason.clone()),
            _ => Health::Ready,
        }
    }

    /// Whether lookups can find anything yet.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Bytes of the files stored (in blocks).
    pub fn bytes(&self) -> u64 {
        self.inner.index.weight()
    }

    pub fn len(&self) -> usize {
        self.inner.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry stored under `key`: a Vary marker from the index, or the
    /// object with its header read from its file and its body left there.
    /// A file that is missing, torn or damaged is a miss (and forgotten).
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        if !self.is_ready() {
            return None;
        }
        let slot = self.inner.index.get(key)?;
        if let Some(names) = &slot.vary {
            return Some(Entry::Vary(names.clone()));
        }
        match self.inner.read(key, &slot) {
            Ok(obj) => Some(Entry::Object(Arc::new(obj))),
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::NotFound {
                    self.inner.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.inner.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %self.inner.file(slot.id).display(), error = %e, "disk cache: read failed; answered as a miss");
                }
                self.inner.forget(key, &slot);
                None
            }
        }
    }

    /// Queues `entry` to be written by the writer thread (the memory tier
    /// holds it meanwhile). False when it is not queued: too large, writes
    /// off, or the queue full.
    pub fn put_later(&self, key: &[u8], entry: &Entry) -> bool {
        if !self.inner.accepts(entry) {
            return false;
        }
        self.inner.enqueue(Job::Write {
            key: key.to_vec(),
            entry: entry.clone(),
        })
    }

    /// Writes `entry` now, on this thread (an object no other tier holds:
    /// it must be findable when this returns).
    pub fn put_now(&self, key: &[u8], entry: &Entry) -> bool {
        if !self.inner.accepts(entry) {
            return false;
        }
        self.inner.write(key, entry, false).is_ok()
    }

    /// Starts a file for a body that will stream in (a miss too large for
    /// memory). `None` when writes are off or the tier is not ready.
    pub fn copy(&self, key: &[u8], object: &Object, expected: Option<u64>) -> Option<DiskCopy<'_>> {
        if expected.is_some_and(|n| n > self.inner.settings.max_object_size)
            || !self.inner.writable()
        {
            return None;
        }
        DiskCopy::start(&self.inner, key, object)
    }

    /// Removes the entry for `key`, and any queued or running write of it.
    pub fn remove(&self, key: &[u8]) {
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        if !state.queue.is_empty() {
            state
                .queue
                .retain(|job| !matches!(job, Job::Write { key: k, .. } if k == key));
            state.queued_bytes = state.queue.iter().map(Job::bytes).sum();
        }
        if state.busy.as_ref().is_some_and(|(k, _)| k == key) {
            state.cancelled = true;
        }
        if let Some((_, slot)) = inner.index.remove(key) {
            state.queue.push_back(Job::Unlink {
                key: key.to_vec(),
                id: slot.id,
            });
            drop(state);
            inner.wake.notify_one();
        }
    }

    /// Removes every entry for which `purge(key, tags)` holds, and any
    /// queued or running write of one; returns how many entries went.
    pub fn purge(&self, purge: &PurgeFn<'_>) -> usize {
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        let before = state.queue.len();
        state.queue.retain(|job| match job {
            Job::Write { key, entry } => !purge(key, tags_of(entry)),
            Job::Unlink { .. } => true,
        });
        let dropped = before - state.queue.len();
        if dropped > 0 {
            state.queued_bytes = state.queue.iter().map(Job::bytes).sum();
        }
        if let Some((key, tags)) = &state.busy
            && purge(key, tags)
        {
            state.cancelled = true;
        }
        // A single key is looked up, not scanned for.
        let matching: Vec<(Box<[u8]>, Arc<Slot>)> = inner
            .index
            .iter()
            .filter(|(k, s)| purge(k, &s.tags))
            .collect();
        let mut removed = 0;
        for (key, slot) in matching {
            if inner
                .index
                .remove_if(&key, |s| Arc::ptr_eq(s, &slot))
                .is_some()
            {
                removed += 1;
                state.queue.push_back(Job::Unlink {
                    key: key.into_vec(),
                    id: slot.id,
                });
            }
        }
        drop(state);
        inner.wake.notify_one();
        removed
    }

    /// Waits until the writer has nothing queued (tests, and a clean stop).
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            {
                let s = lock(&self.inner.state);
                if s.queue.is_empty() && s.busy.is_none() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

/// The tags a queued write carries.
fn tags_of(entry: &Entry) -> &[Box<str>] {
    match entry {
        Entry::Object(o) => &o.tags,
        Entry::Vary(_) => &[],
    }
}

/// Locks, taking the data of a poisoned lock (a panic elsewhere leaves
/// nothing half-done that these locks guard).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
