//! levee's authoritative DNS server (`[dns]`, docs/dns.md): zones from the
//! config, and fleet records whose A and AAAA answers are the fleet's
//! members that are alive, healthy and not drained.
//!
//! ```text
//! query threads (dns-N, current-thread tokio)    upkeep thread (levee-dns)
//! ───────────────────────────────────────────    ─────────────────────────
//! UDP and TCP sockets per thread (SO_REUSEPORT)   the fleet's member list and drained set
//! each query: one View load, answer.rs,           (levee-fleet), probes of each member's
//!   no lock, no I/O but the socket's              listeners (probe.rs) ─▶ live sets (live.rs)
//!                                ◀── View swap ── a changed set: serial + journal, NOTIFY
//! ```
//!
//! - [`zone`]: a zone's records parsed (hickory-proto's zone-file parser);
//! - [`live`]: the health rules and the choice of addresses per query;
//! - [`view`]: what queries read, swapped whole; serials and the journal;
//! - [`answer`]: one query to its answer (no I/O; the fuzz target's entry);
//! - [`xfer`], [`tsig`], [`notify`]: secondaries;
//! - [`cookie`], [`rrl`]: not amplifying, not reflecting;
//! - [`server`], [`upkeep`], [`probe`]: the threads; [`metrics`].
//!
//! Wire format is hickory-proto's. hickory-server is not used: levee needs
//! answers built per query from live state (rotation, weights, geo, the
//! panic rule), response-rate limiting and cookies before the answer is
//! sent, TSIG-signed multi-message transfers from its own journal, and
//! NOTIFY on its own changes; hickory-server's `Authority` would be a shim
//! around all of it, with its catalog and request handling in the way of
//! the hot path's cost (bench/dns.py).

pub mod answer;
pub mod cookie;
pub mod keys;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod replay;
pub mod rrl;
pub mod server;
pub mod tsig;
pub mod upkeep;
pub mod view;
pub mod xfer;
pub mod zone;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use levee_config::{Config, ConfigError, Locator};
use tokio::sync::Notify;

use crate::answer::Policy;
use crate::upkeep::ZoneState;
use crate::view::View;
use crate::zone::Zone;

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("starting a DNS thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the query threads and the upkeep share, kept across reloads.
#[derive(Debug)]
pub struct Shared {
    pub view: ArcSwap<View>,
    pub policy: ArcSwap<Policy>,
    /// The zones as configured (static parts); a reload replaces them.
    pub zones: ArcSwap<Vec<Arc<Zone>>>,
    /// The probe settings and the geo database with the config.
    pub config: ArcSwap<levee_config::Dns>,
    /// Serial, journal and last records of each zone, by name.
    pub(crate) states: Mutex<HashMap<String, ZoneState>>,
    pub(crate) health: Mutex<probe::Health>,
    /// Asks the upkeep to look again now.
    pub wake: Notify,
}

static CURRENT: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

/// The running DNS server's state, if `[dns]` is configured.
pub fn current() -> Option<Arc<Shared>> {
    lock(&CURRENT).clone()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `[dns]` loaded and its sockets bound, ready to start or to replace the
/// running server: nothing is changed until [`server::Dns::start`].
#[derive(Debug)]
pub struct Prepared {
    pub config: levee_config::Dns,
    pub zones: Vec<Arc<Zone>>,
    pub policy: Policy,
    pub sockets: server::Sockets,
}

/// `[dns]`'s zones and the policy queries are answered under.
pub type Loaded = (Vec<Arc<Zone>>, Policy);

/// Loads what `config`'s `[dns]` names (TSIG keys, GeoIP database, every
/// record) without binding: what `levee check` holds it to. Each problem
/// is at its key.
pub fn load(config: &Config) -> Result<Option<Loaded>, Vec<ConfigError>> {
    let Some(dns) = &config.dns else {
        return Ok(None);
    };
    let at = Locator::new(config);
    let mut errors = Vec::new();
    let keys = match &dns.tsig_keys {
        Some(f) => match std::fs::read_to_string(&f.path) {
            Ok(text) => keys::parse(&text).unwrap_or_else(|e| {
                errors.push(at.error(&f.key, format!("{}: {e}", f.path.display())));
                Vec::new()
            }),
            Err(e) => {
                errors.push(at.error(&f.key, format!("cannot read `{}`: {e}", f.path.display())));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let geo = match &dns.geoip {
        Some(f) => match levee_mirror::geo::Geo::open(Some(&f.path), None) {
            Ok(g) => Some(g),
            Err(e) => {
                errors.push(at.error(&f.key, e.to_string()));
                None
            }
        },
        None => None,
    };
    let mut zones = Vec::new();
    for (i, z) in dns.zones.iter().enumerate() {
        match Zone::build(z, &keys) {
            Ok(zone) => zones.push(zone),
            Err(problems) => {
                for (key, message) in problems {
                    errors.push(at.error(&format!("dns.zone[{i}].{key}"), message));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let policy = Policy {
        max_udp: dns.max_udp_size,
        cookies: dns.cookies.then(cookie::Cookies::new),
        rrl: rrl::Rrl::new(&dns.rrl),
        geo,
        keys,
    };
    Ok(Some((zones, policy)))
}

/// Loads `config`'s `[dns]` and binds its sockets; `None` without `[dns]`.
pub fn prepare(config: &Config) -> Result<Option<Prepared>, Vec<ConfigError>> {
    let Some((zones, policy)) = load(config)? else {
        return Ok(None);
    };
    let Some(dns) = config.dns.clone() else {
        return Ok(None);
    };
    let sockets = server::Sockets::bind(&dns).map_err(|(i, addr, e)| {
        let at = Locator::new(config);
        vec![at.error(&format!("dns.listen[{i}]"), cannot_listen(addr, &e))]
    })?;
    Ok(Some(Prepared {
        config: dns,
        zones,
        policy,
        sockets,
    }))
}

fn cannot_listen(addr: SocketAddr, e: &std::io::Error) -> String {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrNotAvailable => "; the machine has no such address",
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE"
        }
        _ => "",
    };
    format!("cannot serve DNS on {addr}: {e}{hint}")
}
