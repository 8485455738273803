//! Open-connection limits, checked right after accept and before any byte
//! is read: per listener (all workers together), per client address and per
//! client network. Nothing here knows HTTP, so mail listeners use it as it is.
//!
//! A [`ConnTable`] belongs to one listener address and lives as long as the
//! listener, across reloads; the limits themselves come from the current
//! config at each accept. An admitted connection holds a [`ConnPermit`]
//! until it closes, parked or not; dropping it gives the places back.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use levee_config::ListenerProtect;

use crate::access::{Acl, bits, mask};
use crate::metrics;
use crate::shard::{U64Map, lock};

const SHARDS: usize = 16;

/// Open connections of every listener together (for overload shedding).
static OPEN_ALL: AtomicUsize = AtomicUsize::new(0);

/// Client connections open now on all listeners.
pub fn open_all() -> usize {
    OPEN_ALL.load(Ordering::Relaxed)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener's allow/deny list.
    Denied,
    /// `max_connections` reached.
    ListenerFull,
    /// `max_connections_per_ip` reached.
    PerIp,
    /// `max_connections_per_prefix` reached.
    PerPrefix,
    /// The runtime ban list (`crate::ban`).
    Banned,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::Denied,
        Refusal::ListenerFull,
        Refusal::PerIp,
        Refusal::PerPrefix,
        Refusal::Banned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Denied => "denied",
            Refusal::ListenerFull => "listener_full",
            Refusal::PerIp => "per_ip",
            Refusal::PerPrefix => "per_prefix",
            Refusal::Banned => "banned",
        }
    }
}

/// The listener's limits as the current config states them.
#[derive(Debug, Clone, Default)]
pub struct ConnLimits {
    pub acl: Acl,
    pub protect: ListenerProtect,
}

impl ConnLimits {
    pub fn new(protect: &ListenerProtect) -> ConnLimits {
        ConnLimits {
            acl: Acl::new(&protect.access),
            protect: protect.clone(),
        }
    }
}

/// Open connections of one listener.
#[derive(Debug)]
pub struct ConnTable {
    /// For metrics: the listener's address.
    pub listener: String,
    open: AtomicUsize,
    /// Open connections parked idle (keep-alive, quiet for a while), for
    /// the dashboard's active/idle split; kept by `levee_http::idle`.
    idle: AtomicUsize,
    /// Per client address and per client network, keyed by a hash.
    clients: Box<[Mutex<U64Map<u32>>]>,
    hasher: RandomState,
    refused: [AtomicU64; 5],
}

/// A connection's place in its listener's counts.
#[derive(Debug)]
pub struct ConnPermit {
    table: Arc<ConnTable>,
    /// Hashes of the address and network counted; 0 when not counted.
    ip: u64,
    net: u64,
}

impl ConnTable {
    pub fn new(listener: impl Into<String>) -> Arc<ConnTable> {
        let table = Arc::new(ConnTable {
            listener: listener.into(),
            open: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            clients: (0..SHARDS).map(|_| Mutex::new(U64Map::default())).collect(),
            hasher: RandomState::new(),
            refused: Default::default(),
        });
        metrics::register_table(&table);
        table
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Open connections parked idle now.
    pub fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }

    /// A connection parked (`true`) or left the parked set (`false`): once
    /// per idle period of a keep-alive connection, never per request.
    pub fn set_idle(&self, parked: bool) {
        if parked {
            self.idle.fetch_add(1, Ordering::Relaxed);
        } else {
            // Never below zero, whatever the order of updates.
            let _ = self
                .idle
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Refusals so far, by reason.
    pub fn refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Refusal::ALL
            .iter()
            .zip(&self.refused)
            .map(|(r, n)| (r.as_str(), n.load(Ordering::Relaxed)))
    }

    fn refuse(&self, why: Refusal) -> Refusal {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        why
    }

    /// Admits a connection from `peer` under `limits`, or says why not.
    pub fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        limits: &ConnLimits,
    ) -> Result<ConnPermit, Refusal> {
        let peer = peer.to_canonical();
        if !limits.acl.is_empty() && !limits.acl.permits(peer) {
            return Err(self.refuse(Refusal::Denied));
        }
        if crate::ban::banned(peer) {
            return Err(self.refuse(Refusal::Banned));
        }
        let p = &limits.protect;
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        OPEN_ALL.fetch_add(1, Ordering::Relaxed);
        let mut permit = ConnPermit {
            table: self.clone(),
            ip: 0,
            net: 0,
        };
        if p.max_connections > 0 && open >= p.max_connections as usize {
            return Err(self.refuse(Refusal::ListenerFull));
        }
        if p.max_connections_per_ip > 0 {
            let key = self.key(peer, 128, 0);
            if !self.take(key, p.max_connections_per_ip) {
                return Err(self.refuse(Refusal::PerIp));
            }
            permit.ip = key;
        }
        if p.max_connections_per_prefix > 0 {
            let prefix = if peer.is_ipv4() {
                p.client_prefix_v4
            } else {
                p.client_prefix_v6
            };
            let key = self.key(peer, prefix, 1);
            if !self.take(key, p.max_connections_per_prefix) {
                return Err(self.refuse(Refusal::PerPrefix));
            }
            permit.net = key;
        }
        Ok(permit)
    }

    fn key(&self, ip: IpAddr, prefix: u8, tag: u8) -> u64 {
        let masked = bits(ip) & mask(ip, prefix);
        // Never 0, which means "not counted".
        self.hasher.hash_one((tag, masked)).max(1)
    }

    fn take(&self, key: u64, limit: u32) -> bool {
        let mut map = lock(&self.clients[key as usize % SHARDS]);
        let n = map.entry(key).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                map.remove(&key);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn give_back(&self, key: u64) {
        let mut map = lock(&self.clients[key as usize % SHARDS]);
        if let Some(n) = map.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&key);
            }
        }
    }

    /// Client addresses and networks counted now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.clients.iter().map(|s| lock(s).len()).sum()
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        for key in [self.ip, self.net] {
            if key != 0 {
                self.table.give_back(key);
            }
        }
        self.table.open.fetch_sub(1, Ordering::Relaxed);
        OPEN_ALL.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
