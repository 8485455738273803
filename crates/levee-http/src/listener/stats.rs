//! A listener's counters behind `/metrics` (connections accepted,
//! requests served), kept for the life of the process so that a reload
//! does not reset them. They belong to the listener, not to any upstream.
//! Names and rendering live in `levee-admin`'s metrics module; this is
//! only storage, a cell per worker (`levee_upstream::stats::cells`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use levee_upstream::stats::{Count, PerWorker};

/// Per listener counters.
#[derive(Debug, Default)]
pub struct ListenerStats(PerWorker<ListenerCell>);

#[derive(Debug, Default)]
struct ListenerCell {
    connections: Count,
    requests: Count,
}

impl ListenerStats {
    /// A connection accepted.
    pub fn connection(&self) {
        self.0.add(|c| &c.connections, 1);
    }

    pub fn connections(&self) -> u64 {
        self.0.sum(|c| &c.connections)
    }

    /// A request read.
    pub fn request(&self) {
        self.0.add(|c| &c.requests, 1);
    }

    pub fn requests(&self) -> u64 {
        self.0.sum(|c| &c.requests)
    }
}

fn listeners() -> &'static Mutex<HashMap<SocketAddr, Arc<ListenerStats>>> {
    static LISTENERS: OnceLock<Mutex<HashMap<SocketAddr, Arc<ListenerStats>>>> = OnceLock::new();
    LISTENERS.get_or_init(Default::default)
}

/// The counters of the listener bound to `addr` (as configured), kept for
/// the life of the process so a reload does not reset them.
pub fn listener(addr: SocketAddr) -> Arc<ListenerStats> {
    let mut map = match listeners().lock() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(addr).or_default().clone()
}

/// Every listener seen so far, for `/metrics`.
pub fn all_listeners() -> Vec<(SocketAddr, Arc<ListenerStats>)> {
    let map = match listeners().lock() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out: Vec<_> = map.iter().map(|(a, s)| (*a, s.clone())).collect();
    out.sort_by_key(|(a, _)| *a);
    out
}

thread_local! {
    static LISTENER_CACHE: std::cell::RefCell<Vec<(SocketAddr, Arc<ListenerStats>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Counts a request on the listener bound to `addr`. A per-thread cache
/// avoids the process-wide lock after the first request.
pub fn count_request(addr: SocketAddr) {
    LISTENER_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, s)) = cache.iter().find(|(a, _)| *a == addr) {
            s.request();
            return;
        }
        let s = listener(addr);
        s.request();
        cache.push((addr, s));
    });
}
