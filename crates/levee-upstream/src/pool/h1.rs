//! Idle HTTP/1 connections to servers, kept per worker for reuse.
//!
//! Taking and returning a connection costs no lock and no syscall. A pooled connection
//! has no task and no buffer; whether its server closed it is read from the
//! readiness the event loop already recorded (any readable event on an idle
//! HTTP/1 connection means EOF or garbage), so checking costs no syscall either.
//!
//! Each idle connection counts in its server's idle gauge while it lives,
//! and a server that is draining, disabled or gone from DNS keeps none.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use crate::AddrMap;
use crate::connect::{Dest, connect};
use crate::error::Fault;
use crate::state::ServerState;
use crate::stream::UpstreamStream;

struct Idle {
    /// `None` once taken out for reuse.
    stream: Option<UpstreamStream>,
    expires: Instant,
    server: Arc<ServerState>,
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.server.stats.idle_add(-1);
    }
}

impl Idle {
    fn live(&self, now: Instant) -> bool {
        self.expires > now
            && self.server.keeps_connections()
            && self.stream.as_ref().is_some_and(|s| !peer_stirred(s))
    }
}

thread_local! {
    static POOL: RefCell<AddrMap<SocketAddr, VecDeque<Idle>>> = RefCell::default();
}

/// Whether the event loop has seen the peer close or send on an idle connection.
fn peer_stirred(stream: &UpstreamStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    stream
        .tcp()
        .is_some_and(|tcp| tcp.poll_read_ready(&mut cx).is_ready())
}

/// A connection to `dest` for one request: a pooled one unless
/// `fresh_only` or a PROXY header is due (a connection that began with one
/// speaks for one client), else a new one. The `bool` says whether it
/// came from the pool, with the fault too: a failure on a reused
/// connection may be its staleness (retry.rs). `now` decides which pooled
/// ones have expired: the caller's reading (levee-http reads the clock
/// once per poll of a request).
pub async fn open(
    dest: &Dest<'_>,
    fresh_only: bool,
    connect_timeout: Duration,
    now: Instant,
) -> Result<(UpstreamStream, bool), (Fault, bool)> {
    let pooled = match (fresh_only, dest.proxy_header) {
        (false, None) => take(dest.addr, now),
        _ => None,
    };
    match pooled {
        Some(up) => Ok((up, true)),
        None => connect(dest.addr, dest.tls, connect_timeout)
            .await
            .map(|up| (up, false))
            .map_err(|fault| (fault, false)),
    }
}

/// The most recently returned live connection to `addr`, if any.
pub fn take(addr: SocketAddr, now: Instant) -> Option<UpstreamStream> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(&addr)?;
        while let Some(mut conn) = idle.pop_back() {
            if conn.live(now) {
                return conn.stream.take();
            }
        }
        None
    })
}

/// Returns a connection for reuse; the oldest is closed when `max_idle` are
/// kept. A server that is draining, disabled or gone keeps none.
pub fn put(
    server: &Arc<ServerState>,
    addr: SocketAddr,
    stream: UpstreamStream,
    max_idle: usize,
    timeout: Duration,
    now: Instant,
) {
    if max_idle == 0 || !server.keeps_connections() {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry(addr).or_default();
        while idle.len() >= max_idle {
            idle.pop_front();
        }
        server.stats.idle_add(1);
        idle.push_back(Idle {
            stream: Some(stream),
            expires: now + timeout,
            server: server.clone(),
        });
    });
}

/// Closes expired connections, those their server closed, and those to
/// servers that are draining, disabled or gone. Run once a second by each
/// worker, so a drain closes idle connections within a second.
pub fn sweep(now: Instant) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        for idle in pool.values_mut() {
            idle.retain(|c| c.live(now));
        }
        pool.retain(|_, idle| !idle.is_empty());
    });
}

/// Closes every idle connection to `addr` (a drained or removed server).
pub fn close_all(addr: SocketAddr) {
    POOL.with(|pool| {
        pool.borrow_mut().remove(&addr);
    });
}

/// Idle connections this worker holds to `addr`.
pub fn idle_count(addr: SocketAddr) -> usize {
    POOL.with(|pool| pool.borrow().get(&addr).map_or(0, VecDeque::len))
}
