//! What the tier's handles and its writer thread share, and do to it:
//! the directory and its files' names, the tier's health, the writer's
//! queue with its bounds, and a write committed to the journal.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::file::write_atomically;
use super::journal::Record;
use super::{BACKOFF, Inner, Job, Slot, lock};
use crate::store::Entry;

/// File ids reserved at a time.
const ID_BLOCK: u64 = 1 << 16;
/// How long opening waits for the directory's lock.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// Most bytes of objects queued for the writer.
const QUEUE_BYTES: u64 = 64 * 1024 * 1024;
/// Most jobs queued for the writer.
const QUEUE_JOBS: usize = 16 * 1024;

impl Inner {
    pub(super) fn dir(&self) -> &Path {
        &self.settings.path
    }

    pub(super) fn file(&self, id: u64) -> PathBuf {
        self.dir()
            .join("objects")
            .join(format!("{:02x}", id & 0xff))
            .join(format!("{id:016x}"))
    }

    pub(super) fn tmp(&self, id: u64) -> PathBuf {
        self.dir().join("tmp").join(format!("{id:016x}"))
    }

    /// Creates the directories and takes the lock.
    pub(super) fn prepare(&self) -> Result<(), String> {
        let dir = self.dir();
        let fail = |what: &str, e: io::Error| format!("{what} {}: {e}", dir.display());
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| fail("creating", e))?;
        for n in 0..=0xffu64 {
            std::fs::create_dir_all(dir.join("objects").join(format!("{n:02x}")))
                .map_err(|e| fail("creating objects in", e))?;
        }
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| fail("opening the lock of", e))?;
        // A tier this process just replaced lets go once its thread has
        // finished its current write: give it a moment.
        let deadline = Instant::now() + LOCK_WAIT;
        while rustix::fs::flock(
            &lock_file,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        )
        .is_err()
        {
            if Instant::now() >= deadline {
                return Err(format!("{} is used by another levee", dir.display()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        *lock(&self._lock) = Some(lock_file);
        Ok(())
    }

    pub(super) fn unusable(&self, why: String) {
        tracing::error!(reason = %why, "disk cache tier unusable; caching in memory only");
        *lock(&self.unusable) = Some(why);
    }

    /// Whether writes are on now.
    pub(super) fn writable(&self) -> bool {
        if !self.ready.load(Ordering::Acquire) || lock(&self.unusable).is_some() {
            return false;
        }
        let mut t = lock(&self.trouble);
        match t.until {
            Some(until) if until > Instant::now() => false,
            Some(_) => {
                t.until = None;
                tracing::info!(path = %self.dir().display(), "disk cache: trying writes again");
                true
            }
            None => true,
        }
    }

    /// A write failed: writes are off for [`BACKOFF`], logged once per spell.
    pub(super) fn failed(&self, what: &str, e: &io::Error) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let mut t = lock(&self.trouble);
        if t.until.is_none() {
            tracing::warn!(path = %self.dir().display(), error = %e, what, "disk cache: write failed; writes off for a while, caching in memory");
        }
        t.until = Some(Instant::now() + BACKOFF);
        t.reason = format!("{what}: {e}");
    }

    pub(super) fn accepts(&self, entry: &Entry) -> bool {
        let ok = match entry {
            Entry::Object(o) => o.body.len() <= self.settings.max_object_size,
            Entry::Vary(_) => true,
        } && self.writable();
        if !ok {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    pub(super) fn enqueue(&self, job: Job) -> bool {
        let mut s = lock(&self.state);
        let bytes = job.bytes();
        if s.queue.len() >= QUEUE_JOBS || s.queued_bytes + bytes > QUEUE_BYTES {
            drop(s);
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        s.queued_bytes += bytes;
        s.queue.push_back(job);
        drop(s);
        self.wake.notify_one();
        true
    }

    /// A new file id. Ids are reserved in blocks, recorded in `DIR/ids`
    /// before use, so every file a crash left unrecorded has an id below
    /// the recorded bound and the next start can sweep it.
    pub(super) fn new_id(&self) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut reserved = lock(&self.reserved);
        if id >= *reserved {
            let bound = id + ID_BLOCK;
            if let Err(e) = write_atomically(&self.dir().join("ids"), &format!("{bound}\n")) {
                // The bound on disk is older: an orphan above it would be
                // kept until a later start sweeps it. Nothing is served from it.
                self.failed("reserving file ids", &e);
            }
            *reserved = bound;
        }
        id
    }

    /// Drops `slot` from the index (if still there) and has its file removed.
    pub(super) fn forget(&self, key: &[u8], slot: &Arc<Slot>) {
        if self
            .index
            .remove_if(key, |s| Arc::ptr_eq(s, slot))
            .is_some()
        {
            self.enqueue_unlink(key, slot.id);
        }
    }

    pub(super) fn enqueue_unlink(&self, key: &[u8], id: u64) {
        lock(&self.state).queue.push_back(Job::Unlink {
            key: key.to_vec(),
            id,
        });
        self.wake.notify_one();
    }

    /// Writes `entry` (an object's whole file, or a marker's record) and
    /// commits it. `queued`: a job of the writer thread, cancelled by a
    /// purge that matched it meanwhile.
    pub(super) fn write(&self, key: &[u8], entry: &Entry, queued: bool) -> io::Result<()> {
        let (id, size, tags, vary) = match entry {
            Entry::Vary(names) => (self.new_id(), 0, Box::default(), Some(names.clone())),
            Entry::Object(obj) => {
                let id = self.new_id();
                let size = self.write_file(id, key, obj)?;
                (id, size, obj.tags.clone(), None)
            }
        };
        self.commit(key, id, size, tags, vary, queued)
    }

    /// Makes a written file an entry: rename, journal record, index. Under
    /// the state lock, so a purge sees it either before or after.
    pub(super) fn commit(
        &self,
        key: &[u8],
        id: u64,
        size: u64,
        tags: Box<[Box<str>]>,
        vary: Option<Arc<[String]>>,
        queued: bool,
    ) -> io::Result<()> {
        let mut state = lock(&self.state);
        if queued && state.cancelled {
            drop(state);
            if vary.is_none() {
                let _ = std::fs::remove_file(self.tmp(id));
            }
            return Ok(());
        }
        if vary.is_none()
            && let Err(e) = std::fs::rename(self.tmp(id), self.file(id))
        {
            drop(state);
            let _ = std::fs::remove_file(self.tmp(id));
            self.failed("renaming an object", &e);
            return Err(e);
        }
        let record = Record::Put {
            key: key.to_vec(),
            id,
            size,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            vary: vary.as_ref().map(|v| v.to_vec()),
        };
        let appended = match state.journal.as_mut() {
            Some(j) => j.write(&record),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        if let Err(e) = appended {
            drop(state);
            let _ = std::fs::remove_file(self.file(id));
            self.failed("appending to the journal", &e);
            return Err(e);
        }
        state.records += 1;
        let slot = Arc::new(Slot {
            id,
            size,
            tags,
            vary,
        });
        let old = self.index.remove(key);
        self.index.insert(Box::from(key), slot);
        if let Some((_, old)) = old {
            state.queue.push_back(Job::Unlink {
                key: key.to_vec(),
                id: old.id,
            });
        }
        drop(state);
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(())
    }
}
