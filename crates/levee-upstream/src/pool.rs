//! The per-worker pool of idle upstream connections.
//!
//! Each worker thread runs its own event loop, and a socket registered with
//! one loop must stay on it, so the pool is thread-local: taking and
//! returning a connection costs no lock and no syscall. A pooled connection
//! has no task and no buffer; whether its server closed it is read from the
//! readiness the event loop already recorded (any readable event on an idle
//! HTTP/1 connection means EOF or garbage), so checking costs no syscall either.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

struct Idle {
    stream: TcpStream,
    expires: Instant,
}

thread_local! {
    static POOL: RefCell<HashMap<SocketAddr, VecDeque<Idle>>> = RefCell::new(HashMap::new());
}

/// Whether the event loop has seen the peer close or send on an idle connection.
fn peer_stirred(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(stream.poll_read_ready(&mut cx), Poll::Ready(_))
}

/// The most recently returned live connection to `addr`, if any.
pub fn take(addr: SocketAddr, now: Instant) -> Option<TcpStream> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(&addr)?;
        while let Some(conn) = idle.pop_back() {
            if conn.expires > now && !peer_stirred(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    })
}

/// Returns a connection for reuse; the oldest is closed when `max_idle` are kept.
pub fn put(addr: SocketAddr, stream: TcpStream, max_idle: usize, timeout: Duration, now: Instant) {
    if max_idle == 0 {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry(addr).or_default();
        while idle.len() >= max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle {
            stream,
            expires: now + timeout,
        });
    });
}

/// Closes expired connections and those their server closed. Run periodically by each worker.
pub fn sweep(now: Instant) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        for idle in pool.values_mut() {
            idle.retain(|c| c.expires > now && !peer_stirred(&c.stream));
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
