//! The shared tier: objects the fleet's members share, in the fleet's
//! Redis (`[fleet]`), so one member's fetch serves all of them.
//!
//! ```text
//! local miss ─▶ GET {F}:c:H ── hit ─▶ store locally, answer (tier=shared)
//!                  └ miss ─▶ SET {F}:cl:H NX PX lease ── won ─▶ fetch from the origin, store
//!                                 │                               here and in {F}:c:H, DEL the lock
//!                                 └ lost ─▶ poll {F}:c:H until lock_wait:
//!                                            found ─▶ answer; lock gone ─▶ try to win it;
//!                                            time up ─▶ fetch from the origin alone
//! ```
//!
//! - **Keys.** `{F}` is the fleet's name (a Cluster hash tag: one slot for a
//!   fleet's keys), `H` a 128-bit SipHash of the cache key; the value is
//!   the entry as `codec.rs` writes it, key included, so a collision is a
//!   miss. Values expire when the object can no longer be served: its
//!   remaining freshness plus the longest stale allowance.
//! - **Purge indexes.** `{F}:cu:H(url)` is the set of keys of one URL (its
//!   variants and route-added parts), `{F}:ct:TAG` the keys of a tag, and
//!   `{F}:curls` (sorted by name) the URLs, for prefix purges; written by
//!   one script with the value.
//! - **Bounds.** Only objects up to `max_object_size` (1 MB) with their
//!   body in memory are shared. Every call is bounded by `timeout`; Redis
//!   down or slow is a miss and no lock, so each member fetches alone,
//!   never an error to a client.
//!
//! The I/O runs on the fleet thread's connection (`levee_fleet::Link`);
//! requests only wait for answers. With `store = "memcached"` the same
//! values live on memcached servers instead (`shared/memcached.rs` says
//! how it makes the lock and the purge indexes); the fleet's Redis then
//! only names the fleet and carries its bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;

mod keys;
mod memcached;

pub use keys::decode;
use keys::{hash, hash128, hashes, namespace, nonce, url_of};
pub use memcached::{McError, Memcached};

use crate::body::Body;
use crate::codec;
use crate::freshness::{Heuristic, Stored};
use crate::purge::Selector;
use crate::store::{Entry, Object, variant_key};
use crate::{Field, key};

/// `[cache.shared]` as the tier needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub max_object_size: u64,
    pub timeout: Duration,
    pub lock_lease: Duration,
    pub lock_wait: Duration,
    /// How long a stale object is still worth keeping (`[cache] stale_if_down`).
    pub keep_stale: Duration,
    /// memcached servers (`host:port`) holding the objects; empty: the
    /// fleet's Redis does.
    pub memcached: Vec<String>,
}

/// Counters for metrics and `levee ctl cache stats`.
#[derive(Debug, Default)]
pub struct SharedStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stored: AtomicU64,
    /// Calls that failed or timed out (each one a miss or a skipped store).
    pub errors: AtomicU64,
    /// Cold objects this member fetched for the fleet (it won the lock).
    pub locks_won: AtomicU64,
    /// Cold objects this member waited for another member to fetch.
    pub locks_waited: AtomicU64,
    /// Waits that ran out: this member fetched too.
    pub lock_timeouts: AtomicU64,
}

/// Why a call to the shared tier failed. Requests never see these.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("no fleet is running")]
    NoFleet,
    #[error(transparent)]
    Fleet(#[from] levee_fleet::FleetError),
    #[error(transparent)]
    Memcached(#[from] McError),
}

/// The shared tier.
#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub stats: SharedStats,
    /// This member's stores sent after a response hold it shared, from
    /// their last look at what purges removed until they are in Redis and
    /// unstaged; a purge holds it alone over its local and shared parts.
    /// So a purge never runs between a store's look and its put (which
    /// would leave the purged object in Redis), and what is staged is
    /// exactly what Redis does not hold yet (so a purge counts it once).
    pub gate: tokio::sync::RwLock<()>,
    put: Script,
    release: Script,
    /// The memcached servers, when they hold the objects.
    memcached: Option<Memcached>,
}

/// The fleet's lock on a cold key, held by the member that fetches it.
/// Release it with [`Shared::release`] once the object is stored (or
/// found uncacheable); a lock never released expires after its lease.
#[derive(Debug)]
pub struct FleetLock {
    key: String,
    token: String,
    /// The hashes of the URL and the key (memcached's lock lives on the
    /// URL's server).
    at: (u128, u128),
}

/// An object found, the key it is stored under, and the names of the
/// Vary marker that led to it.
pub type Found = (Arc<Object>, Vec<u8>, Option<Arc<[String]>>);

/// What the shared tier says about a local miss.
#[derive(Debug)]
pub enum Lookup {
    /// Found: the object, the key it is stored under, and the names of
    /// the Vary marker that led to it.
    Hit(Arc<Object>, Vec<u8>, Option<Arc<[String]>>),
    /// Not there: fetch from the origin, holding the fleet's lock if won.
    Fetch(Option<FleetLock>),
}

/// Sets the value and adds it to its indexes, each kept as long as its
/// longest-lived member. KEYS: value, URL set, URL list, tag sets...;
/// ARGV: bytes, ttl seconds, URL.
const PUT: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local ttl = tonumber(ARGV[2])
local function index(k)
  redis.call('SADD', k, KEYS[1])
  if redis.call('TTL', k) < ttl then redis.call('EXPIRE', k, ttl) end
end
index(KEYS[2])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
for i = 4, #KEYS do index(KEYS[i]) end
return 1
";

/// Deletes the lock only if it is still ours (its lease may have run out
/// and another member taken it).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// How often a member waiting for another's fetch looks again.
const POLL: Duration = Duration::from_millis(25);
/// The longest a shared object is kept.
const MAX_TTL: u64 = 30 * 86_400;

impl Shared {
    pub fn new(settings: Settings) -> Shared {
        Shared {
            stats: SharedStats::default(),
            gate: tokio::sync::RwLock::new(()),
            put: Script::new(PUT),
            release: Script::new(RELEASE),
            memcached: (!settings.memcached.is_empty())
                .then(|| Memcached::new(&settings.memcached)),
            settings,
        }
    }

    fn fleet() -> Result<Arc<levee_fleet::Fleet>, SharedError> {
        levee_fleet::current().ok_or(SharedError::NoFleet)
    }

    fn value_key(fleet: &str, key: &[u8]) -> String {
        format!("{{{fleet}}}:c:{}", hash(key))
    }

    fn url_key(fleet: &str, url: &[u8]) -> String {
        format!("{{{fleet}}}:cu:{}", hash(url))
    }

    fn urls_key(fleet: &str) -> String {
        format!("{{{fleet}}}:curls")
    }

    fn tag_key(fleet: &str, tag: &str) -> String {
        format!("{{{fleet}}}:ct:{tag}")
    }

    fn count<T>(&self, r: Result<T, SharedError>) -> Result<T, SharedError> {
        if r.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// The entry stored under `key`, if any.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Entry>, SharedError> {
        let fleet = Self::fleet()?;
        if let Some(mc) = &self.memcached {
            let (url, h) = hashes(key);
            let ns = namespace(fleet.name());
            let got = mc.get(&ns, url, h, self.settings.timeout).await;
            let got = self.count(got.map_err(SharedError::from))?;
            return Ok(got.and_then(|bytes| decode(key, bytes)));
        }
        let k = Self::value_key(fleet.name(), key);
        let got: Option<Vec<u8>> = self.count(
            fleet
                .link
                .run_within(self.settings.timeout, |mut c| async move {
                    redis::cmd("GET").arg(k).query_async(&mut c).await
                })
                .await
                .map_err(SharedError::from),
        )?;
        Ok(got.and_then(|bytes| decode(key, bytes)))
    }

    /// The object for a request with `fields` under `key` (following a
    /// Vary marker), with the key it is stored under and the marker's names.
    pub async fn find(
        &self,
        key: &[u8],
        fields: &[Field<'_>],
    ) -> Result<Option<Found>, SharedError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(Entry::Object(o)) => Ok(Some((o, key.to_vec(), None))),
            Some(Entry::Vary(names)) => {
                let variant = variant_key(key, &key::secondary(&names, fields));
                Ok(match self.get(&variant).await? {
                    Some(Entry::Object(o)) => Some((o, variant, Some(names))),
                    _ => None,
                })
            }
        }
    }

    /// A local miss: the shared object, or the go-ahead to fetch it (with
    /// the fleet's lock when this member won it). Members that lose the
    /// lock wait up to `lock_wait` for the winner's object.
    pub async fn lookup(&self, key: &[u8], fields: &[Field<'_>]) -> Lookup {
        let deadline = tokio::time::Instant::now() + self.settings.lock_wait;
        let mut waited = false;
        loop {
            match self.find(key, fields).await {
                Ok(Some((obj, stored_under, names))) => {
                    self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(obj, stored_under, names);
                }
                Ok(None) => {}
                // Redis is away: fetch alone, at once.
                Err(_) => return self.miss(None),
            }
            match self.lock(key).await {
                Ok(Some(lock)) => {
                    self.stats.locks_won.fetch_add(1, Ordering::Relaxed);
                    return self.miss(Some(lock));
                }
                Ok(None) => {
                    if !waited {
                        waited = true;
                        self.stats.locks_waited.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => return self.miss(None),
            }
            if tokio::time::Instant::now() + POLL > deadline {
                self.stats.lock_timeouts.fetch_add(1, Ordering::Relaxed);
                return self.miss(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn miss(&self, lock: Option<FleetLock>) -> Lookup {
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Fetch(lock)
    }

    /// Tries to take the fleet's lock on `key` for `lock_lease`.
    async fn lock(&self, key: &[u8]) -> Result<Option<FleetLock>, SharedError> {
        let fleet = Self::fleet()?;
        let lock_key = format!("{{{}}}:cl:{}", fleet.name(), hash(key));
        let token = format!("{}:{}", fleet.instance(), nonce());
        let at = hashes(key);
        if let Some(mc) = &self.memcached {
            let ns = namespace(fleet.name());
            let (lease, limit) = (self.settings.lock_lease, self.settings.timeout);
            let won = mc.lock(&ns, at, &token, lease, limit).await;
            let won = self.count(won.map_err(SharedError::from))?;
            return Ok(won.then_some(FleetLock {
                key: lock_key,
                token,
                at,
            }));
        }
        let lease = self.settings.lock_lease.as_millis() as u64;
        let (k, t) = (lock_key.clone(), token.clone());
        let won: Option<String> = self.count(
            fleet
                .link
                .run_within(self.settings.timeout, |mut c| async move {
                    redis::cmd("SET")
                        .arg(k)
                        .arg(t)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease.max(1))
                        .query_async(&mut c)
                        .await
                })
                .await
                .map_err(SharedError::from),
        )?;
        Ok(won.map(|_| FleetLock {
            key: lock_key,
            token,
            at,
        }))
    }

    /// Releases a lock this member holds.
    pub async fn release(&self, lock: FleetLock) {
        let Ok(fleet) = Self::fleet() else { return };
        if let Some(mc) = &self.memcached {
            let ns = namespace(fleet.name());
            let r = mc
                .release(&ns, lock.at, &lock.token, self.settings.timeout)
                .await;
            if let Err(e) = r {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "shared cache: lock release failed; its lease ends it");
            }
            return;
        }
        let script = self.release.clone();
        let released: Result<i64, _> = fleet
            .link
            .run_within(self.settings.timeout, |mut c| async move {
                script
                    .key(lock.key)
                    .arg(lock.token)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        if released.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether `entry` may be shared: a marker, or an object within the
    /// size bound whose body is in memory.
    pub fn takes(&self, entry: &Entry) -> bool {
        match entry {
            Entry::Vary(_) => true,
            Entry::Object(o) => {
                matches!(o.body, Body::Pieces(_)) && o.body.len() <= self.settings.max_object_size
            }
        }
    }

    /// How long `stored` is worth keeping, in seconds: its remaining
    /// freshness and the longest stale use it allows.
    pub fn ttl(&self, stored: &Stored, now: u64) -> u64 {
        let d = &stored.directives;
        let left = stored
            .lifetime(Heuristic::default())
            .saturating_sub(stored.current_age(now));
        let stale = d
            .stale_while_revalidate
            .unwrap_or(0)
            .max(d.stale_if_error.unwrap_or(0))
            .max(self.settings.keep_stale.as_secs());
        left.saturating_add(stale).clamp(1, MAX_TTL)
    }

    /// Stores `entry` under `key` for `ttl` seconds. True when stored.
    pub async fn put(&self, key: &[u8], entry: &Entry, ttl: u64) -> bool {
        if !self.takes(entry) {
            return false;
        }
        let Ok(fleet) = Self::fleet() else {
            return false;
        };
        let (bytes, tags) = match entry {
            Entry::Vary(names) => (codec::vary_header(key, names), Vec::new()),
            Entry::Object(o) => {
                let mut bytes = codec::object_header(key, o, o.body.len());
                for p in o.body.pieces() {
                    bytes.extend_from_slice(p);
                }
                (bytes, o.tags.to_vec())
            }
        };
        let name = fleet.name();
        let url = url_of(key);
        // A store is worth a longer wait than a lookup: no request waits
        // on it (the object is already local).
        let patient = self.settings.timeout.max(Duration::from_millis(500));
        if let Some(mc) = &self.memcached {
            let ns = namespace(name);
            let r = mc
                .put(&ns, url, hashes(key), &tags, &bytes, ttl, patient)
                .await;
            return match r {
                Ok(stored) => {
                    if stored {
                        self.stats.stored.fetch_add(1, Ordering::Relaxed);
                    }
                    stored
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "shared cache: store failed");
                    false
                }
            };
        }
        let mut inv = self.put.key(Self::value_key(name, key));
        inv.key(Self::url_key(name, url)).key(Self::urls_key(name));
        for t in &tags {
            inv.key(Self::tag_key(name, t));
        }
        inv.arg(bytes).arg(ttl).arg(url);
        let stored: Result<i64, _> = fleet
            .link
            .run_within(
                patient,
                |mut c| async move { inv.invoke_async(&mut c).await },
            )
            .await;
        match stored {
            Ok(_) => {
                self.stats.stored.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "shared cache: store failed");
                false
            }
        }
    }

    /// Removes the entries under `keys` (invalidation after an unsafe
    /// method, a retired response). Their purge indexes keep the names
    /// until they expire, which costs a purge a few deletes of nothing.
    pub async fn remove(&self, keys: &[Vec<u8>]) -> bool {
        let Ok(fleet) = Self::fleet() else {
            return false;
        };
        if keys.is_empty() {
            return true;
        }
        if let Some(mc) = &self.memcached {
            let ns = namespace(fleet.name());
            let mut ok = true;
            for k in keys {
                let (url, h) = hashes(k);
                if mc.delete(&ns, url, h, self.settings.timeout).await.is_err() {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    ok = false;
                }
            }
            return ok;
        }
        let names: Vec<String> = keys
            .iter()
            .map(|k| Self::value_key(fleet.name(), k))
            .collect();
        let removed: Result<i64, _> = fleet
            .link
            .run_within(self.settings.timeout, |mut c| async move {
                redis::cmd("DEL").arg(names).query_async(&mut c).await
            })
            .await;
        let ok = removed.is_ok();
        if !ok {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Removes what `selector` names from the shared tier; returns how
    /// many keys went. For operators (it reads the indexes), not requests.
    pub async fn purge(&self, selector: &Selector) -> Result<usize, SharedError> {
        let fleet = Self::fleet()?;
        let name = fleet.name().to_owned();
        let patient = self.settings.timeout.max(Duration::from_secs(2));
        if let Some(mc) = &self.memcached {
            let ns = namespace(&name);
            let r = match selector {
                Selector::Urls(list) => {
                    let mut n = 0;
                    for u in list {
                        match mc.purge_url(&ns, hash128(u), patient).await {
                            Ok(k) => n += k,
                            Err(e) => return self.count(Err(e.into())),
                        }
                    }
                    Ok(n)
                }
                Selector::Prefixes(list) => mc.purge_prefixes(&ns, list, patient).await,
                Selector::Tag(tag) => mc.purge_tag(&ns, tag, patient).await,
            };
            return self.count(r.map_err(SharedError::from));
        }
        let link = fleet.link.clone();
        let r = link
            .run_within(patient, |mut c| async move {
                let mut indexes: Vec<String> = Vec::new();
                let mut urls: Vec<Vec<u8>> = Vec::new();
                match selector {
                    Selector::Urls(list) => urls.extend(list.iter().cloned()),
                    Selector::Prefixes(list) => {
                        for p in list {
                            let mut min = b"[".to_vec();
                            min.extend_from_slice(p);
                            let mut max = b"[".to_vec();
                            max.extend_from_slice(p);
                            max.push(0xff);
                            let found: Vec<Vec<u8>> = redis::cmd("ZRANGEBYLEX")
                                .arg(Self::urls_key(&name))
                                .arg(min)
                                .arg(max)
                                .query_async(&mut c)
                                .await?;
                            urls.extend(found);
                        }
                    }
                    Selector::Tag(tag) => indexes.push(Self::tag_key(&name, tag)),
                }
                indexes.extend(urls.iter().map(|u| Self::url_key(&name, u)));
                let mut removed = 0usize;
                for index in &indexes {
                    let members: Vec<String> = redis::cmd("SMEMBERS")
                        .arg(index)
                        .query_async(&mut c)
                        .await?;
                    if !members.is_empty() {
                        let n: usize = redis::cmd("DEL").arg(&members).query_async(&mut c).await?;
                        removed += n;
                    }
                    let _: i64 = redis::cmd("DEL").arg(index).query_async(&mut c).await?;
                }
                if !urls.is_empty() {
                    let _: i64 = redis::cmd("ZREM")
                        .arg(Self::urls_key(&name))
                        .arg(&urls)
                        .query_async(&mut c)
                        .await?;
                }
                Ok(removed)
            })
            .await;
        self.count(r.map_err(SharedError::from))
    }
}

#[cfg(test)]
mod tests;
