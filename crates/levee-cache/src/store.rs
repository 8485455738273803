//! Where stored responses live: in memory, bounded in bytes.
//!
//! [`Storage`] is the interface the proxy needs (get, put, remove, and a
//! scan for purges); [`Memory`] implements it over `quick_cache`, whose
//! S3-FIFO eviction admits a new object to a small probationary queue first,
//! so a scan of one-off URLs evicts other one-off URLs, not the hot set. The
//! disk tier (`disk.rs`) sits behind it, and `tiers.rs` puts them together
//! behind the same trait.
//!
//! Responses with `Vary` are stored in two parts: under the primary key a
//! [`Entry::Vary`] marker naming the fields, and each variant under
//! [`variant_key`] (primary key, a separator byte, secondary key).
//!
//! One `Memory` is shared by every worker thread: quick_cache shards its
//! map behind short locks, and objects are `Arc`s, so a hit clones a
//! pointer and never holds a lock while the body is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, Weighter};

use crate::body::{Body, InFlight};
use crate::freshness::Stored;

/// A stored response.
#[derive(Debug, Clone)]
pub struct Object {
    pub status: u16,
    /// Bytes of `head` sent to clients; the rest are hidden fields
    /// (targeted cache control that stops at levee), kept because they
    /// still govern the response after a 304. Beside `status`, it fits in
    /// what was padding.
    pub visible: u32,
    /// Header fields as stored (`policy::stored_head`), as HTTP/1 lines
    /// `Name: value\r\n`: one allocation per object, and a hit sends its
    /// visible part with one copy.
    pub head: Box<[u8]>,
    pub body: Body,
    /// Times and directives for freshness and `Age`.
    pub meta: Stored,
    /// Surrogate keys (tags) the app set, for purges.
    pub tags: Box<[Box<str>]>,
}

impl Object {
    /// The stored fields, hidden ones included, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        lines(&self.head)
    }

    /// The lines sent to clients.
    pub fn visible_head(&self) -> &[u8] {
        self.head.get(..self.visible as usize).unwrap_or(&self.head)
    }

    /// The fields sent to clients, in order.
    pub fn visible_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        lines(self.visible_head())
    }

    /// The first value of a stored field, matched case-insensitively.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Bytes it takes in memory: what the store bounds.
    pub fn weight(&self) -> u64 {
        let tags: usize = self.tags.iter().map(|t| t.len() + 16).sum();
        self.body.weight() + (self.head.len() + tags + OBJECT_OVERHEAD) as u64
    }
}

/// The fields of `Name: value\r\n` lines.
fn lines(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// What the store keeps per object beyond its head, body and tags: the
/// struct in its `Arc`, rounded up to the allocator's size class, the
/// map's slot (key handle, entry, links, table) at twice its size because
/// the map grows by doubling, and the allocator's slack on the struct, the
/// head, the key and the list of pieces. Measured with 20,000 objects of
/// 10 KiB (and a 225-byte head): 666–876 bytes each beyond the body; the
/// weight counts about 1,010 (with the body's pieces).
const OBJECT_OVERHEAD: usize =
    (std::mem::size_of::<Object>() + 16).next_multiple_of(64) + 2 * MAP_SLOT + 4 * ALLOC_SLACK;

/// An allocation's average cost beyond its size: the rounding up to its
/// size class and its share of the page.
const ALLOC_SLACK: usize = 48;

/// One entry of the map: the key and entry handles, quick_cache's links
/// and state, and its table's index.
const MAP_SLOT: usize = std::mem::size_of::<(Box<[u8]>, Entry)>() + 24;

/// What lives under a key.
#[derive(Debug, Clone)]
pub enum Entry {
    Object(Arc<Object>),
    /// The response varies on these (lower-case, sorted) request fields:
    /// look up [`variant_key`] for the object.
    Vary(Arc<[String]>),
}

impl Entry {
    /// The object's surrogate keys (none for a Vary marker).
    pub fn tags(&self) -> &[Box<str>] {
        match self {
            Entry::Object(o) => &o.tags,
            Entry::Vary(_) => &[],
        }
    }

    fn weight(&self, key: &[u8]) -> u64 {
        key.len() as u64
            + match self {
                Entry::Object(o) => o.weight(),
                Entry::Vary(names) => {
                    let names: usize = names.iter().map(|n| n.len() + 24).sum();
                    (names + 16 + 2 * MAP_SLOT) as u64
                }
            }
    }
}

/// The key of one variant of a response that varies.
pub fn variant_key(primary: &[u8], secondary: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(primary.len() + secondary.len() + 1);
    key.extend_from_slice(primary);
    key.push(VARIANT);
    key.extend_from_slice(secondary);
    key
}

/// Separates the primary and the secondary key in a variant's key; never in a URL.
const VARIANT: u8 = 1;

/// Whether `key` belongs to the URL `url`: the URL itself, a variant of it,
/// or it with route-added key parts (which start with a NUL byte).
pub fn key_is_url(key: &[u8], url: &[u8]) -> bool {
    key.strip_prefix(url)
        .is_some_and(|rest| rest.first().is_none_or(|&b| b == VARIANT || b == 0))
}

/// A purge's test of an entry: its key and its tags (a Vary marker has none).
pub type PurgeFn<'a> = dyn Fn(&[u8], &[Box<str>]) -> bool + 'a;

/// What the proxy needs from a storage tier.
pub trait Storage: Send + Sync {
    fn get(&self, key: &[u8]) -> Option<Entry>;
    /// Stores `entry`; false when it is larger than an object may be.
    fn put(&self, key: Vec<u8>, entry: Entry) -> bool;
    fn remove(&self, key: &[u8]);
    /// Removes every entry for which `purge(key, tags)` is true (a Vary
    /// marker has no tags); returns how many.
    fn purge(&self, purge: &PurgeFn<'_>) -> usize;
    /// Bytes held now, stored and being copied.
    fn bytes(&self) -> u64;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy)]
struct ByWeight;

impl Weighter<Box<[u8]>, Entry> for ByWeight {
    fn weight(&self, key: &Box<[u8]>, entry: &Entry) -> u64 {
        entry.weight(key)
    }
}

/// Counts evictions (never removals or replacements).
#[derive(Debug, Clone, Default)]
struct Evictions(Arc<AtomicU64>);

impl Lifecycle<Box<[u8]>, Entry> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _key: Box<[u8]>, _entry: Entry) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keys are boxed slices: one word less per entry than a `Vec`.
type Map = Cache<Box<[u8]>, Entry, ByWeight, quick_cache::DefaultHashBuilder, Evictions>;

/// The in-memory tier.
pub struct Memory {
    map: Map,
    /// Bodies being copied by misses: their part of the capacity.
    in_flight: InFlight,
    max_object: u64,
    evictions: Arc<AtomicU64>,
    capacity: u64,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("capacity", &self.capacity)
            .field("bytes", &self.map.weight())
            .field("len", &self.map.len())
            .finish()
    }
}

/// A guess at the average object size, only to size the map's tables.
const TYPICAL_OBJECT: u64 = 16 * 1024;

impl Memory {
    /// A store of at most `capacity` bytes, counting the copies of misses
    /// in flight, whose objects are at most `max_object` bytes. An eighth of
    /// the capacity (at least one object, at most half) is for the copies.
    pub fn new(capacity: u64, max_object: u64) -> Memory {
        let evictions = Evictions::default();
        let counter = evictions.0.clone();
        let in_flight = (capacity / 8).max(max_object).min(capacity / 2);
        let stored = capacity - in_flight;
        let items = usize::try_from((stored / TYPICAL_OBJECT).clamp(16, 1 << 20)).unwrap_or(16);
        let map = Map::with(
            items,
            stored.max(1),
            ByWeight,
            quick_cache::DefaultHashBuilder::default(),
            evictions,
        );
        Memory {
            map,
            in_flight: InFlight::new(in_flight),
            max_object,
            evictions: counter,
            capacity,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn max_object(&self) -> u64 {
        self.max_object
    }

    /// The budget of the copies of misses in flight.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Objects evicted to make room since the store was made.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

impl Storage for Memory {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.map.get(key)
    }

    fn put(&self, key: Vec<u8>, entry: Entry) -> bool {
        if entry.weight(&key) > self.max_object {
            return false;
        }
        self.map.insert(key.into_boxed_slice(), entry);
        true
    }

    fn remove(&self, key: &[u8]) {
        self.map.remove(key);
    }

    fn purge(&self, purge: &PurgeFn<'_>) -> usize {
        let removed = std::cell::Cell::new(0);
        self.map.retain(|k, e| {
            let gone = purge(k, e.tags());
            removed.set(removed.get() + usize::from(gone));
            !gone
        });
        removed.get()
    }

    fn bytes(&self) -> u64 {
        self.map.weight() + self.in_flight.used()
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests;
