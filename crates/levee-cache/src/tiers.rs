//! The tiers together: memory first, then disk, behind the one
//! [`Storage`] the proxy uses, and the shared tier beside them (it is
//! asked over the network, so the proxy asks it itself, `shared.rs`).
//!
//! ```text
//! get:    memory ─miss─▶ disk ─miss─▶ (the proxy asks the shared tier, then the origin)
//! put:    memory took it ─▶ disk writes it later (write-through, off the request path)
//!         memory refused it (too large, a file body) ─▶ disk writes it now
//! remove, purge: every local tier (and the proxy purges the shared tier)
//! ```
//!
//! Write-through means a restart finds on disk what memory held too: the
//! hot set survives, which is the point of the disk tier.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::body::{Body, InFlight};
use crate::disk::Disk;
use crate::purge::{Purge, PurgeError, Selector};
use crate::shared::Shared;
use crate::stats::{Counters, STATS};
use crate::store::{Entry, Memory, PurgeFn, Storage};

/// Where a hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Disk,
    Shared,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Disk => "disk",
            Source::Shared => "shared",
        }
    }

    /// The `Cache-Status` parameter naming it: none for memory (the
    /// first tier, and what a hit was before there were others).
    pub fn status_param(self) -> &'static str {
        match self {
            Source::Memory => "",
            Source::Disk => "; tier=disk",
            Source::Shared => "; tier=shared",
        }
    }

    /// Counts a hit from this tier.
    pub fn count_hit(self) {
        let counter = match self {
            Source::Memory => &STATS.hits_memory,
            Source::Disk => &STATS.hits_disk,
            Source::Shared => &STATS.hits_shared,
        };
        Counters::add(counter, 1);
    }
}

/// The local tiers and the shared one.
#[derive(Debug)]
pub struct Tiers {
    /// Shared with the tiers of earlier configs that had the same sizes.
    pub memory: Arc<Memory>,
    pub disk: Option<Arc<Disk>>,
    pub shared: Option<Arc<Shared>>,
    /// Changes on their way to the shared tier (a Redis round trip after
    /// the response): an object only it will hold, or `None` for a key
    /// invalidated there. This member sees its own changes at once.
    staged: Mutex<HashMap<Vec<u8>, Option<Entry>>>,
    /// Purges begun, so a store on its way to the shared tier can tell
    /// whether one that names it ran meanwhile ([`Tiers::purged_since`]).
    purges: Mutex<PurgeLog>,
}

/// How many purges have begun, and what the latest named (`None`: a test
/// of its own, taken to name everything).
#[derive(Debug, Default)]
struct PurgeLog {
    begun: u64,
    recent: VecDeque<(u64, Option<Selector>)>,
}

/// Purges remembered for [`Tiers::purged_since`]; a store that waited
/// longer than this many purges is taken to be named by one.
const RECENT_PURGES: usize = 64;

/// Most changes staged for the shared tier at once; past it a change is
/// not staged (the member may see the shared tier's old state meanwhile).
const MOST_STAGED: usize = 4096;

impl Tiers {
    pub fn new(memory: Arc<Memory>, disk: Option<Arc<Disk>>, shared: Option<Arc<Shared>>) -> Tiers {
        Tiers {
            memory,
            disk,
            shared,
            staged: Mutex::new(HashMap::new()),
            purges: Mutex::new(PurgeLog::default()),
        }
    }

    /// Stages a change for the shared tier (`None`: the key is invalidated).
    pub fn stage(&self, key: &[u8], entry: Option<Entry>) {
        if let Ok(mut s) = self.staged.lock()
            && (s.len() < MOST_STAGED || s.contains_key(key))
        {
            s.insert(key.to_vec(), entry);
        }
    }

    /// The shared tier has the change (or gave up on it): forget it,
    /// unless a later change replaced it.
    pub fn unstage(&self, key: &[u8], entry: &Option<Entry>) {
        if let Ok(mut s) = self.staged.lock()
            && s.get(key).is_some_and(|e| same_entry(e, entry))
        {
            s.remove(key);
        }
    }

    /// Whether `entry` is still what is staged for `key` (a purge since
    /// has dropped it: then it is not sent).
    pub fn is_staged(&self, key: &[u8], entry: &Option<Entry>) -> bool {
        self.staged
            .lock()
            .is_ok_and(|s| s.get(key).is_some_and(|e| same_entry(e, entry)))
    }

    /// Whether the shared tier may be asked about `key` (not invalidated
    /// by this member a moment ago).
    pub fn shared_visible(&self, key: &[u8]) -> bool {
        self.staged
            .lock()
            .is_ok_and(|s| !matches!(s.get(key), Some(None)))
    }

    /// The entry under `key` in the first local tier that has it.
    pub fn get_from(&self, key: &[u8]) -> Option<(Entry, Source)> {
        if let Some(e) = self.memory.get(key) {
            return Some((e, Source::Memory));
        }
        if let Some(e) = self.disk.as_ref().and_then(|d| d.get(key)) {
            return Some((e, Source::Disk));
        }
        let staged = self.staged.lock().ok()?;
        staged
            .get(key)?
            .as_ref()
            .map(|e| (e.clone(), Source::Shared))
    }

    /// The memory tier's capacity (`[cache] max_size`).
    pub fn capacity(&self) -> u64 {
        self.memory.capacity()
    }

    /// The memory tier's largest object.
    pub fn max_object(&self) -> u64 {
        self.memory.max_object()
    }

    /// The largest object any tier takes.
    pub fn max_object_anywhere(&self) -> u64 {
        let disk = self
            .disk
            .as_ref()
            .map_or(0, |d| d.settings().max_object_size);
        let shared = self
            .shared
            .as_ref()
            .map_or(0, |s| s.settings.max_object_size);
        self.memory.max_object().max(disk).max(shared)
    }

    pub fn in_flight(&self) -> &InFlight {
        self.memory.in_flight()
    }

    pub fn evictions(&self) -> u64 {
        self.memory.evictions()
    }

    /// Removes what `what` names from every local tier; returns how many
    /// keys went (a key held by memory and disk counts once).
    pub fn purge_local(&self, what: Purge<'_>) -> Result<usize, PurgeError> {
        let selector = Selector::new(what)?;
        Ok(self.purge_selected(&selector).keys)
    }

    /// [`Tiers::purge_local`] with a selector made already.
    pub fn purge_selected(&self, selector: &Selector) -> Purged {
        self.log_purge(Some(selector));
        let purged = self.purge_keys(&|k, tags| selector.matches(k, tags));
        Counters::add(&STATS.purged, purged.keys as u64);
        purged
    }

    /// How many purges have begun. A store sent to the shared tier after
    /// the response reads it when it is stored locally; before its put and
    /// after, [`Tiers::purged_since`] says whether a purge that names it
    /// began in between: that purge may have run on Redis before the put
    /// landed, so the object is not sent, or is removed again. A purge is
    /// counted before it touches any tier, local or shared.
    pub fn purges(&self) -> u64 {
        self.purges.lock().map_or(0, |l| l.begun)
    }

    /// Whether a purge that began after `since` ([`Tiers::purges`]) names
    /// `key` with `tags` (or may: one of its own test, or one no longer
    /// remembered).
    pub fn purged_since(&self, since: u64, key: &[u8], tags: &[Box<str>]) -> bool {
        let Ok(log) = self.purges.lock() else {
            return true;
        };
        if log.begun == since {
            return false;
        }
        if log.recent.front().is_none_or(|(n, _)| *n > since + 1) {
            return true;
        }
        log.recent
            .iter()
            .filter(|(n, _)| *n > since)
            .any(|(_, s)| s.as_ref().is_none_or(|s| s.matches(key, tags)))
    }

    /// Counts a purge about to begin (before any tier is touched).
    fn log_purge(&self, selector: Option<&Selector>) {
        if let Ok(mut log) = self.purges.lock() {
            log.begun += 1;
            let n = log.begun;
            if log.recent.len() == RECENT_PURGES {
                log.recent.pop_front();
            }
            log.recent.push_back((n, selector.cloned()));
        }
    }

    /// Removes from every local tier; says how many distinct keys went.
    fn purge_keys(&self, purge: &PurgeFn<'_>) -> Purged {
        let gone: Mutex<HashSet<Vec<u8>>> = Mutex::new(HashSet::new());
        let record = |k: &[u8], tags: &[Box<str>]| {
            let hit = purge(k, tags);
            if hit && let Ok(mut g) = gone.lock() {
                g.insert(k.to_vec());
            }
            hit
        };
        self.memory.purge(&record);
        if let Some(d) = &self.disk {
            d.purge(&record);
        }
        let local = gone.lock().map_or(0, |g| g.len());
        if let Ok(mut staged) = self.staged.lock() {
            staged.retain(|k, e| match e {
                Some(e) => !record(k, e.tags()),
                None => true,
            });
        }
        let keys = gone.into_inner().map_or(0, |g| g.len());
        Purged {
            keys,
            staged: keys - local,
        }
    }
}

/// What a purge removed from this member's tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Distinct keys, from any local tier or staged.
    pub keys: usize,
    /// Of those, keys only staged: objects on their way to the shared
    /// tier, which it does not hold yet (so its count does not have them).
    pub staged: usize,
}

impl Purged {
    /// Entries removed, with `shared` from the shared tier: the most any
    /// one tier removed (they hold the same objects), counting the staged
    /// ones with the shared tier's.
    pub fn with_shared(self, shared: usize) -> usize {
        self.keys.max(shared + self.staged)
    }
}

fn same_entry(a: &Option<Entry>, b: &Option<Entry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Entry::Object(a)), Some(Entry::Object(b))) => Arc::ptr_eq(a, b),
        (Some(Entry::Vary(a)), Some(Entry::Vary(b))) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Whether `entry`'s body lives in a file (the disk tier's): the memory
/// tier does not hold those, or it would hold their files open.
fn file_backed(entry: &Entry) -> bool {
    matches!(entry, Entry::Object(o) if matches!(o.body, Body::File(_)))
}

impl Storage for Tiers {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.get_from(key).map(|(e, _)| e)
    }

    fn put(&self, key: Vec<u8>, entry: Entry) -> bool {
        let Some(disk) = &self.disk else {
            return !file_backed(&entry) && self.memory.put(key, entry);
        };
        if !file_backed(&entry) && self.memory.put(key.clone(), entry.clone()) {
            // Memory has it meanwhile; a full queue or a failing disk only
            // means it will not survive a restart.
            disk.put_later(&key, &entry);
            return true;
        }
        disk.put_now(&key, &entry)
    }

    /// Removes `key` from the local tiers; with a shared tier, also hides
    /// it there from this member until the caller has removed it from
    /// Redis ([`Tiers::unstage`] with `None`), and counts as a purge of
    /// the key and its variants: a fill of it whose put to the shared tier
    /// is still on its way then removes it again once the put has landed
    /// (an invalidation must not be undone by an older response).
    fn remove(&self, key: &[u8]) {
        self.log_purge(Some(&Selector::Urls(vec![key.to_vec()])));
        self.memory.remove(key);
        if let Some(d) = &self.disk {
            d.remove(key);
        }
        if self.shared.is_some() {
            self.stage(key, None);
        }
    }

    fn purge(&self, purge: &PurgeFn<'_>) -> usize {
        self.log_purge(None);
        self.purge_keys(purge).keys
    }

    /// The memory tier's bytes (the disk's are [`Disk::bytes`]).
    fn bytes(&self) -> u64 {
        self.memory.bytes()
    }

    /// The memory tier's entries (the disk's are [`Disk::len`]).
    fn len(&self) -> usize {
        self.memory.len()
    }
}

#[cfg(test)]
mod tests;
