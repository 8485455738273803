//! The cache's state and settings as the site holds them.
//!
//! The [`Tier`] (store and in-flight fetches) is process-wide and outlives
//! reloads: a reload that keeps `[cache] max_size` and `max_object_size`
//! keeps every object in memory, and one that keeps `[cache.disk]` keeps
//! the disk tier (its directory is only ever opened once per process: a
//! changed size there needs a restart). Settings that may change on
//! reload ([`SiteCache`], [`RouteCache`]) are rebuilt with the site.

use std::sync::{Arc, Mutex};

use levee_cache::disk::{self, Disk};
use levee_cache::flight::Flights;
use levee_cache::key::KeySpec;
use levee_cache::policy::Rules;
use levee_cache::shared::{self, Shared};
use levee_cache::store::Memory;
use levee_cache::tiers::Tiers;
use levee_config::{AccessList, CacheConfig, SharedStore};
use levee_protect::Acl;

/// Stored responses and the fetches in flight, shared by every worker.
#[derive(Debug)]
pub struct Tier {
    /// Memory, then disk (`[cache.disk]`); the shared tier beside them.
    pub store: Tiers,
    pub flights: Flights,
}

/// The cache as one site (one config generation) sees it.
#[derive(Debug)]
pub struct SiteCache {
    pub tier: Arc<Tier>,
    pub config: CacheConfig,
    /// Who may send `PURGE`.
    pub purge_acl: Acl,
    /// How responses are read and stored: `[cache]`'s targeted fields,
    /// and (the second) with `Set-Cookie` stripped, for routes that store
    /// such responses. Built once per site, so requests only borrow them.
    rules: [Rules; 2],
}

/// A caching route's settings, ready for the hot path.
#[derive(Debug, Clone)]
pub struct RouteCache {
    pub spec: KeySpec,
    pub bypass_cookies: Vec<String>,
    pub bypass_headers: Vec<String>,
    pub get: bool,
    pub head: bool,
    pub status_header: bool,
    pub stale_if_down: bool,
    /// Store responses with `Set-Cookie`, without the field.
    pub strip_set_cookie: bool,
}

impl RouteCache {
    pub fn new(c: &levee_config::RouteCache) -> RouteCache {
        RouteCache {
            spec: KeySpec {
                drop_params: c.key_drop_params.clone(),
                sort_params: c.key_sort_params,
                headers: c.key_headers.clone(),
                cookies: c.key_cookies.clone(),
            },
            bypass_cookies: c.bypass_cookies.clone(),
            bypass_headers: c.bypass_headers.clone(),
            get: c.methods.iter().any(|m| m == "GET"),
            head: c.methods.iter().any(|m| m == "HEAD"),
            status_header: c.status_header,
            stale_if_down: c.stale_if_down,
            strip_set_cookie: c.strip_set_cookie,
        }
    }
}

/// The target list (RFC 9213 §2.2: levee's own field before
/// `CDN-Cache-Control`) and the targeted fields that stop at levee.
fn rules(config: &CacheConfig) -> Rules {
    let mut rules = Rules::default();
    let own = config.control_field.to_ascii_lowercase();
    if !own.is_empty() {
        rules.targets.push(own.clone());
        if !config.control_field_forward {
            rules.hidden.push(own);
        }
    }
    if config.cdn_cache_control {
        rules.targets.push("cdn-cache-control".to_owned());
        if !config.cdn_cache_control_forward {
            rules.hidden.push("cdn-cache-control".to_owned());
        }
    }
    rules
}

/// The tier of the running process, if any route has cached yet.
static TIER: Mutex<Option<Arc<Tier>>> = Mutex::new(None);
/// The disk tier of the running process: its directory is opened once.
static DISK: Mutex<Option<Arc<Disk>>> = Mutex::new(None);
/// The shared tier of the running process (its counters live on).
static SHARED: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The disk tier `[cache.disk]` asks for: the running one when it has the
/// same directory (its other settings apply at the next start), else one
/// opened now.
fn disk_tier(config: &CacheConfig) -> Option<Arc<Disk>> {
    let mut current = DISK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = &config.disk else {
        *current = None;
        return None;
    };
    let wanted = disk::Settings {
        path: c.path.clone(),
        max_size: c.max_size,
        max_object_size: c.max_object_size,
        fsync: c.fsync,
    };
    if let Some(d) = current.as_ref()
        && d.settings().path == wanted.path
    {
        if *d.settings() != wanted {
            tracing::warn!(path = %wanted.path.display(), "[cache.disk] changed: the new sizes and fsync apply after a restart");
        }
        return Some(d.clone());
    }
    // The old tier (another directory) lets its lock go as it is dropped.
    *current = None;
    let d = Arc::new(Disk::open(wanted));
    *current = Some(d.clone());
    Some(d)
}

/// The shared tier `[cache.shared]` asks for (the running one when its
/// settings are the same).
fn shared_tier(config: &CacheConfig) -> Option<Arc<Shared>> {
    let mut current = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = &config.shared else {
        *current = None;
        return None;
    };
    let wanted = shared::Settings {
        max_object_size: c.max_object_size,
        timeout: c.timeout,
        lock_lease: c.lock_lease,
        lock_wait: c.lock_wait,
        keep_stale: config.stale_if_down,
        memcached: match &c.store {
            SharedStore::Redis => Vec::new(),
            SharedStore::Memcached(servers) => servers.clone(),
        },
    };
    if let Some(s) = current.as_ref()
        && s.settings == wanted
    {
        return Some(s.clone());
    }
    let s = Arc::new(Shared::new(wanted));
    *current = Some(s.clone());
    Some(s)
}

impl SiteCache {
    /// The cache for a new site: the running tier when its sizes still hold,
    /// else a new, empty one.
    pub fn build(config: &CacheConfig) -> SiteCache {
        let mut current = TIER.lock().unwrap_or_else(|e| e.into_inner());
        let memory = match current.as_ref() {
            Some(t)
                if t.store.capacity() == config.max_size
                    && t.store.max_object() == config.max_object_size =>
            {
                t.store.memory.clone()
            }
            _ => Arc::new(Memory::new(config.max_size, config.max_object_size)),
        };
        let disk = disk_tier(config);
        let shared = shared_tier(config);
        let tier = match current.as_ref() {
            Some(t)
                if Arc::ptr_eq(&t.store.memory, &memory)
                    && same(&t.store.disk, &disk)
                    && same(&t.store.shared, &shared) =>
            {
                t.clone()
            }
            _ => {
                let t = Arc::new(Tier {
                    store: Tiers::new(memory, disk, shared),
                    flights: Flights::new(),
                });
                *current = Some(t.clone());
                t
            }
        };
        let rules = rules(config);
        let stripping = Rules {
            strip_set_cookie: true,
            ..rules.clone()
        };
        SiteCache {
            tier,
            config: config.clone(),
            purge_acl: Acl::new(&AccessList {
                allow: config.purge_allow.clone(),
                deny: Vec::new(),
            }),
            rules: [rules, stripping],
        }
    }

    /// The rules for `route`'s responses.
    pub fn rules(&self, route: &RouteCache) -> &Rules {
        &self.rules[usize::from(route.strip_set_cookie)]
    }

    /// Whether `ip` may send `PURGE` (nobody when `purge_allow` is empty).
    pub fn may_purge(&self, ip: std::net::IpAddr) -> bool {
        !self.config.purge_allow.is_empty() && self.purge_acl.permits(ip)
    }
}
