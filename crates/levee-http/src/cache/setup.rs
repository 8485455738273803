//! The cache's state and settings as the site holds them.
//!
//! The [`Tier`] (store and in-flight fetches) is process-wide and outlives
//! reloads: a reload that keeps `[cache] max_size` and `max_object_size`
//! keeps every stored object. Settings that may change on reload
//! ([`SiteCache`], [`RouteCache`]) are rebuilt with the site.

use std::sync::{Arc, Mutex};

use levee_cache::flight::Flights;
use levee_cache::key::KeySpec;
use levee_cache::store::Memory;
use levee_config::{AccessList, CacheConfig};
use levee_protect::Acl;

/// Stored responses and the fetches in flight, shared by every worker.
#[derive(Debug)]
pub struct Tier {
    pub store: Memory,
    pub flights: Flights,
}

/// The cache as one site (one config generation) sees it.
#[derive(Debug)]
pub struct SiteCache {
    pub tier: Arc<Tier>,
    pub config: CacheConfig,
    /// Who may send `PURGE`.
    pub purge_acl: Acl,
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
        }
    }
}

/// The tier of the running process, if any route has cached yet.
static TIER: Mutex<Option<Arc<Tier>>> = Mutex::new(None);

impl SiteCache {
    /// The cache for a new site: the running tier when its sizes still hold,
    /// else a new, empty one.
    pub fn build(config: &CacheConfig) -> SiteCache {
        let mut current = TIER.lock().unwrap_or_else(|e| e.into_inner());
        let tier = match current.as_ref() {
            Some(t)
                if t.store.capacity() == config.max_size
                    && t.store.max_object() == config.max_object_size =>
            {
                t.clone()
            }
            _ => {
                let t = Arc::new(Tier {
                    store: Memory::new(config.max_size, config.max_object_size),
                    flights: Flights::new(),
                });
                *current = Some(t.clone());
                t
            }
        };
        SiteCache {
            tier,
            config: config.clone(),
            purge_acl: Acl::new(&AccessList {
                allow: config.purge_allow.clone(),
                deny: Vec::new(),
            }),
        }
    }

    /// Whether `ip` may send `PURGE` (nobody when `purge_allow` is empty).
    pub fn may_purge(&self, ip: std::net::IpAddr) -> bool {
        !self.config.purge_allow.is_empty() && self.purge_acl.permits(ip)
    }
}
