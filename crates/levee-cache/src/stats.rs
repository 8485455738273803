//! Cache counters, process-wide, read by the admin `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    pub hits: AtomicU64,
    /// Hits by the tier that answered (stale and collapsed answers included).
    pub hits_memory: AtomicU64,
    pub hits_disk: AtomicU64,
    pub hits_shared: AtomicU64,
    pub misses: AtomicU64,
    /// Stale responses served (while revalidating, on error, servers down).
    pub stale: AtomicU64,
    /// Misses that waited for another request's fetch.
    pub coalesced: AtomicU64,
    /// Responses stored.
    pub stored: AtomicU64,
    /// Entries removed by purges and invalidations.
    pub purged: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The counters of this process.
pub static STATS: Counters = Counters {
    hits: AtomicU64::new(0),
    hits_memory: AtomicU64::new(0),
    hits_disk: AtomicU64::new(0),
    hits_shared: AtomicU64::new(0),
    misses: AtomicU64::new(0),
    stale: AtomicU64::new(0),
    coalesced: AtomicU64::new(0),
    stored: AtomicU64::new(0),
    purged: AtomicU64::new(0),
};
