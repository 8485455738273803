//! One reading of every counter the dashboard shows, taken once a second.
//!
//! The counters are the ones `/metrics` renders (levee-upstream's server,
//! listener and route stats, levee-protect's rule and connection counters,
//! levee-cache's stats, levee-mail's metrics, levee-tls's handshakes and
//! certificates), plus the process's CPU and memory from `/proc`: the
//! dashboard keeps no second bookkeeping. [`Source`] is the one seam: a
//! later metrics registry replaces [`Counters`] and nothing else changes.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use levee_http::Shared;
use levee_upstream::stats::ErrorKind;
use tokio::time::Instant;

use super::procfs;

/// Buckets of a latency histogram (`levee_upstream::stats::LATENCY_BUCKETS`
/// and `+Inf`), cumulative.
pub type Buckets = [u64; 13];

/// Where samples come from.
pub trait Source: Send + Sync {
    fn sample(&self) -> Sample;
}

/// Every counter at one moment. Counters are totals since start; the
/// dashboard turns two samples into rates.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub routes: Vec<RouteSample>,
    pub listeners: Vec<ListenerSample>,
    pub upstreams: Vec<UpstreamSample>,
    pub cache: Option<CacheSample>,
    pub mail: levee_mail::metrics::Snapshot,
    pub rules: Vec<RuleSample>,
    pub tls: TlsSample,
    pub process: procfs::Process,
    pub bans: usize,
    pub banned_total: u64,
}

#[derive(Debug, Clone, Default)]
pub struct RouteSample {
    pub name: String,
    /// Responses by class, 1xx to 5xx.
    pub responses: [u64; 5],
    pub latency: Buckets,
}

#[derive(Debug, Clone, Default)]
pub struct ListenerSample {
    pub address: String,
    pub connections: u64,
    pub requests: u64,
    /// Open connections now (none for a listener without a table yet).
    pub open: Option<u64>,
    /// Of those, keep-alive connections parked idle.
    pub idle: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct UpstreamSample {
    pub name: String,
    pub servers: Vec<ServerSample>,
}

#[derive(Debug, Clone, Default)]
pub struct ServerSample {
    pub address: String,
    pub configured: String,
    pub backup: bool,
    pub state: &'static str,
    pub admin: &'static str,
    pub healthy: bool,
    pub ejected_ms: Option<u64>,
    pub weight: u32,
    pub weight_override: Option<u32>,
    pub effective_weight: f64,
    pub active: u32,
    pub requests: u64,
    pub responses: [u64; 5],
    pub errors: u64,
    pub latency: Buckets,
}

#[derive(Debug, Clone, Default)]
pub struct CacheSample {
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub entries: u64,
    pub evictions: u64,
}

#[derive(Debug, Clone, Default)]
pub struct RuleSample {
    pub name: String,
    pub admitted: u64,
    pub delayed: u64,
    pub refused: u64,
    pub dry_run: u64,
    /// The most-refused keys and their refusals since start.
    pub top: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct TlsSample {
    pub handshakes: u64,
    pub failures: u64,
    pub certs: Vec<levee_tls::expiry::CertInfo>,
}

/// The live counters of a running levee.
pub struct Counters {
    pub shared: Arc<Shared>,
}

impl Source for Counters {
    fn sample(&self) -> Sample {
        let site = self.shared.site.load_full();
        let now = Instant::now();
        let routes = levee_upstream::stats::all_routes()
            .into_iter()
            .map(|(name, s)| RouteSample {
                name,
                responses: std::array::from_fn(|i| s.responses(i)),
                latency: s.latency().0,
            })
            .collect();
        let tables = levee_protect::metrics::tables();
        let listeners = levee_http::listener::stats::all_listeners()
            .into_iter()
            .map(|(addr, s)| {
                let address = addr.to_string();
                let table = tables.iter().find(|t| t.listener == address);
                ListenerSample {
                    connections: s.connections(),
                    requests: s.requests(),
                    open: table.map(|t| t.open() as u64),
                    idle: table.map(|t| t.idle() as u64),
                    address,
                }
            })
            .collect();
        let mut groups: Vec<_> = site.upstreams.values().cloned().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let upstreams = groups
            .iter()
            .map(|g| UpstreamSample {
                name: g.name.clone(),
                servers: g.members().list.iter().map(|m| server(g, m, now)).collect(),
            })
            .collect();
        let cache = site.cache.as_ref().map(|c| {
            use levee_cache::stats::{Counters, STATS};
            use levee_cache::store::Storage;
            let store = &c.tier.store;
            CacheSample {
                hits: Counters::get(&STATS.hits),
                misses: Counters::get(&STATS.misses),
                stale: Counters::get(&STATS.stale),
                bytes: store.bytes(),
                max_bytes: store.capacity(),
                entries: store.len() as u64,
                evictions: store.evictions(),
            }
        });
        let rules = levee_protect::metrics::rules()
            .into_iter()
            .map(|(name, c, top)| RuleSample {
                name,
                admitted: c.admitted.load(Relaxed),
                delayed: c.delayed.load(Relaxed),
                refused: c.refused.load(Relaxed),
                dry_run: c.dry_run.load(Relaxed),
                top: top.map(|t| t.read()).unwrap_or_default(),
            })
            .collect();
        let bans = levee_protect::ban::store();
        use levee_protect::ban::BanStore;
        Sample {
            at_ms: unix_ms(),
            routes,
            listeners,
            upstreams,
            cache,
            mail: levee_mail::metrics::snapshot(),
            rules,
            tls: TlsSample {
                handshakes: levee_tls::expiry::HANDSHAKES.load(Relaxed),
                failures: levee_tls::expiry::HANDSHAKE_FAILURES.load(Relaxed),
                certs: levee_tls::expiry::certificates(),
            },
            process: procfs::Process::read(),
            bans: bans.list(levee_protect::ban::unix_now()).len(),
            banned_total: levee_protect::ban::REFUSED.load(Relaxed),
        }
    }
}

fn server(g: &levee_upstream::Group, m: &levee_upstream::Member, now: Instant) -> ServerSample {
    let s = &m.state;
    let slow_start = g.config.slow_start;
    ServerSample {
        address: m.addr.to_string(),
        configured: m.configured.to_string(),
        backup: m.backup,
        state: s.status(now, slow_start).as_str(),
        admin: s.admin().as_str(),
        healthy: s.check_up(),
        ejected_ms: s.ejected_for(now).map(|d| d.as_millis() as u64),
        weight: m.weight,
        weight_override: s.weight_override(),
        effective_weight: s.effective_weight(m.weight, now, slow_start) as f64
            / levee_upstream::state::WEIGHT_SCALE as f64,
        active: s.active(),
        requests: s.stats.requests(),
        responses: std::array::from_fn(|i| s.stats.responses(i)),
        errors: ErrorKind::ALL.iter().map(|&k| s.stats.errors(k)).sum(),
        latency: s.stats.latency().0,
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
