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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;

pub use site::Site;

/// Process-wide state every connection can see: the current site and whether
/// levee is stopping.
#[derive(Debug)]
pub struct Shared {
    pub site: ArcSwap<Site>,
    draining: AtomicBool,
    /// Wakes what waits for the stop (HTTP/2 connections, to send GOAWAY).
    drain: tokio::sync::Notify,
    in_flight: AtomicUsize,
}

impl Shared {
    pub fn new(site: Site) -> Arc<Shared> {
        Arc::new(Shared {
            site: ArcSwap::from_pointee(site),
            draining: AtomicBool::new(false),
            drain: tokio::sync::Notify::new(),
            in_flight: AtomicUsize::new(0),
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

    /// Requests between their first byte and their last log line.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }
}

/// Counts a request as in flight while it lives.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
