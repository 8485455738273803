//! levee's HTTP front end.
//!
//! - [`message`]: request and response heads independent of the protocol;
//! - [`h1`]: the HTTP/1 wire format (no I/O);
//! - [`conn`]: the life of one HTTP/1 client connection;
//! - [`http2`]: HTTP/2 connections, each stream served through the HTTP/1 request path;
//! - [`proxy`]: forwarding one request to an upstream and relaying the answer;
//! - [`cache`]: the HTTP cache in front of a proxy route;
//! - [`normal`]: the one normalisation of a request's path;
//! - [`route`] and [`site`]: choosing what serves a request;
//! - [`origin`]: who a request is for, behind trusted proxies or not;
//! - [`access_log`]: one line per request;
//! - [`static_files`]: files under a `static` route's root;
//! - `mirror_route`: a `mirrors` route, decided by `levee-mirror`;
//! - [`pace`]: the least progress demanded of a client;
//! - [`gone`]: noticing a client that went away, so its upstream work stops;
//! - [`stream`]: the client's socket, plain TCP or TLS;
//! - [`timed`]: timeouts that read no clock when the I/O completes at once.

mod access_log;
mod body;
pub mod cache;
mod clock;
mod compress;
pub mod conn;
mod exchange;
mod gone;
pub mod h1;
mod http2;
pub mod idle;
pub mod listener;
pub mod message;
mod mirror_route;
pub mod normal;
mod origin;
mod pace;
mod proxy;
pub mod proxy_protocol;
mod respond;
mod reuse;
mod rewrite;
mod route;
mod screen;
mod serve;
mod shape;
pub mod site;
mod static_files;
mod static_opts;
mod static_route;
mod stream;
mod timed;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use levee_upstream::stats::{Count, PerWorker};

pub use site::Site;

/// Process-wide state every connection can see: the current site and whether
/// levee is stopping.
#[derive(Debug)]
pub struct Shared {
    pub site: ArcSwap<Site>,
    draining: AtomicBool,
    /// Wakes what waits for the stop (HTTP/2 connections, to send GOAWAY).
    drain: tokio::sync::Notify,
    /// Requests in flight, a gauge in a cell per worker: begun and ended
    /// on the request's worker, with no atomic shared with another core.
    in_flight: PerWorker<Count>,
}

impl Shared {
    pub fn new(site: Site) -> Arc<Shared> {
        Arc::new(Shared {
            site: ArcSwap::from_pointee(site),
            draining: AtomicBool::new(false),
            drain: tokio::sync::Notify::new(),
            in_flight: PerWorker::default(),
        })
    }

    /// From now on connections close after their current request.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.drain.notify_waiters();
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Resolves once levee is stopping.
    pub async fn drained(&self) {
        let woken = self.drain.notified();
        if self.draining() {
            return;
        }
        woken.await;
    }

    /// Requests between their first byte and their last log line (the
    /// stop waits, reading it again, until it is 0).
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.in_flight.sum(|c| c) as i64).unwrap_or(0)
    }

    fn begin(&self) -> InFlight<'_> {
        self.add_in_flight(1);
        InFlight(self)
    }

    fn add_in_flight(&self, n: i64) {
        self.in_flight.add(|c| c, n as u64);
    }
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.add_in_flight(-1);
    }
}
