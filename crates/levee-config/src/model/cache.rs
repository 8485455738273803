//! The HTTP cache: the process-wide `[cache]` table and a proxy route's
//! `cache_*` keys.

use std::path::PathBuf;
use std::time::Duration;

use super::IpNet;

/// `[cache]`: the store every caching route shares.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Bytes kept in memory, objects and their keys together.
    pub max_size: u64,
    /// A response larger than this is relayed but not stored.
    pub max_object_size: u64,
    /// How stale a response may be and still be served when every server of
    /// the upstream is down (for routes with `cache_stale_if_down`).
    pub stale_if_down: Duration,
    /// How long a miss waits for a concurrent fetch of the same key before
    /// going to the upstream itself.
    pub lock_timeout: Duration,
    /// How long a key whose response was not storable skips coalescing.
    pub hit_for_miss: Duration,
    /// Response field whose space-separated values tag the object for purges.
    pub tag_header: String,
    /// Who may send `PURGE`; empty: nobody.
    pub purge_allow: Vec<IpNet>,
    /// levee's own targeted cache-control field (RFC 9213), which
    /// overrides `CDN-Cache-Control` and `Cache-Control`; empty: none.
    pub control_field: String,
    /// Send `control_field` on to clients (it stops at levee by default).
    pub control_field_forward: bool,
    /// Obey `CDN-Cache-Control` (over `Cache-Control`).
    pub cdn_cache_control: bool,
    /// Send `CDN-Cache-Control` on to clients, as RFC 9213 expects of a CDN
    /// that obeys it; one that levee does not obey is always sent on.
    pub cdn_cache_control_forward: bool,
    /// `[cache.disk]`: objects kept in files, across restarts.
    pub disk: Option<DiskCache>,
    /// `[cache.shared]`: the fleet's shared tier (needs `[fleet]`).
    pub shared: Option<SharedCache>,
}

/// `[cache.disk]`: the disk tier (docs/cache.md, "Tiers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCache {
    /// The directory levee owns: objects, the journal, temporary files.
    pub path: PathBuf,
    /// Bytes of objects on disk (files rounded up to 4 KiB blocks).
    pub max_size: u64,
    /// A response larger than this is not written to disk.
    pub max_object_size: u64,
    /// Flush each object file and the journal to the device before they
    /// count (survives a power loss, costs a device flush per object).
    pub fsync: bool,
}

/// Default `[cache.disk] max_object_size`.
pub const DEFAULT_DISK_MAX_OBJECT: u64 = 1024 * 1024 * 1024;

/// Where the shared tier keeps objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedStore {
    /// The fleet's own Redis (`[fleet]`).
    Redis,
    /// memcached servers (`host:port`), keys spread over them by hash.
    Memcached(Vec<String>),
}

/// `[cache.shared]`: objects shared by the fleet's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCache {
    pub store: SharedStore,
    /// Only objects up to this size are shared.
    pub max_object_size: u64,
    /// The longest one round trip to the shared store may take before a
    /// request goes on without it.
    pub timeout: Duration,
    /// How long the member fetching a cold object holds the fleet's lock
    /// for it (renewed never: a fetch longer than this lets another in).
    pub lock_lease: Duration,
    /// How long other members wait for that fetch before fetching themselves.
    pub lock_wait: Duration,
}

impl Default for SharedCache {
    fn default() -> Self {
        SharedCache {
            store: SharedStore::Redis,
            max_object_size: 1024 * 1024,
            timeout: Duration::from_millis(50),
            lock_lease: Duration::from_secs(10),
            lock_wait: Duration::from_secs(2),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_size: 256 * 1024 * 1024,
            max_object_size: 8 * 1024 * 1024,
            stale_if_down: Duration::from_secs(3600),
            lock_timeout: Duration::from_secs(5),
            hit_for_miss: Duration::from_secs(120),
            tag_header: "Surrogate-Key".to_owned(),
            purge_allow: Vec::new(),
            control_field: "Levee-Cache-Control".to_owned(),
            control_field_forward: false,
            cdn_cache_control: true,
            cdn_cache_control_forward: true,
            disk: None,
            shared: None,
        }
    }
}

/// A proxy route's cache settings (`cache = true` and the `cache_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCache {
    /// Query parameters left out of the key.
    pub key_drop_params: Vec<String>,
    /// Sort query parameters in the key.
    pub key_sort_params: bool,
    /// Request fields added to the key (lower case).
    pub key_headers: Vec<String>,
    /// Cookies added to the key.
    pub key_cookies: Vec<String>,
    /// A request carrying any of these cookies skips the cache.
    pub bypass_cookies: Vec<String>,
    /// A request carrying any of these fields skips the cache (lower case).
    pub bypass_headers: Vec<String>,
    /// Methods served from the cache (upper case); others skip it.
    pub methods: Vec<String>,
    /// Send the RFC 9211 `Cache-Status` field.
    pub status_header: bool,
    /// Serve stale (within `[cache] stale_if_down`) when every server is down.
    pub stale_if_down: bool,
    /// Store responses that carry `Set-Cookie`, without the field (the
    /// client of the miss gets its cookie; hits get none).
    pub strip_set_cookie: bool,
}

impl Default for RouteCache {
    fn default() -> Self {
        RouteCache {
            key_drop_params: Vec::new(),
            key_sort_params: false,
            key_headers: Vec::new(),
            key_cookies: Vec::new(),
            bypass_cookies: Vec::new(),
            bypass_headers: Vec::new(),
            methods: vec!["GET".to_owned(), "HEAD".to_owned()],
            status_header: true,
            stale_if_down: true,
            strip_set_cookie: false,
        }
    }
}
