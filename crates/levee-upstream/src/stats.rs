//! Counters behind `/metrics`: per server (requests, responses by class,
//! errors by kind, a latency histogram, idle connections) and per route
//! (responses by class, a latency histogram). A listener's are
//! levee-http's (`listener/stats.rs`). Names and rendering live in
//! `levee-admin`'s metrics module; this is only storage, all relaxed
//! atomics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why an exchange with a server failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection was refused or failed.
    Connect,
    /// Connecting took longer than `upstream_connect`.
    ConnectTimeout,
    /// The server reset or closed the connection before a whole response head.
    Reset,
    /// No response head within `upstream_read` (or a write stalled).
    Timeout,
    /// The response head was malformed.
    Protocol,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Connect,
        ErrorKind::ConnectTimeout,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
        }
    }
}

#[derive(Debug, Default)]
pub struct ServerStats {
    /// Attempts sent to the server (a retried request counts on each server).
    pub requests: AtomicU64,
    /// Responses by class: index 0 is 1xx … index 4 is 5xx.
    responses: [AtomicU64; 5],
    errors: [AtomicU64; 5],
    latency: Latency,
    /// Idle pooled connections over all workers.
    pub idle: AtomicI64,
}

impl ServerStats {
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    pub fn responses(&self, class: usize) -> u64 {
        self.responses.get(class).map_or(0, |c| c.load(Relaxed))
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].load(Relaxed)
    }

    /// One response head's latency.
    pub fn observe(&self, took: Duration) {
        self.latency.observe(took);
    }

    /// Cumulative bucket counts (last is `+Inf`, the total) and the sum in seconds.
    pub fn latency(&self) -> ([u64; 13], f64) {
        self.latency.read()
    }
}

/// A latency histogram over [`LATENCY_BUCKETS`]: one relaxed add per
/// observation into the first bucket that fits (plus one for the sum);
/// [`Latency::read`] accumulates on reading.
#[derive(Debug, Default)]
pub struct Latency {
    /// Counts per bucket of [`LATENCY_BUCKETS`], then `+Inf`.
    buckets: [AtomicU64; 13],
    sum_us: AtomicU64,
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Cumulative bucket counts (last is `+Inf`, the total) and the sum in seconds.
    pub fn read(&self) -> ([u64; 13], f64) {
        let mut out = [0u64; 13];
        let mut running = 0;
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            running += b.load(Relaxed);
            *o = running;
        }
        (out, self.sum_us.load(Relaxed) as f64 / 1e6)
    }
}

/// Per upstream counters, log gates and lock, shared by every build of one
/// upstream name (the [`crate::Registry`] keeps them across reloads).
#[derive(Debug)]
pub struct GroupStats {
    /// Servers chosen in panic mode (no server usable, so health was
    /// ignored): `levee_upstream_panic_total`.
    pub panic: AtomicU64,
    pub(crate) panic_log: LogGate,
    pub(crate) bound_log: LogGate,
    /// Held while deciding an ejection, so that workers ejecting at once
    /// (through the old and the new config during a reload too) cannot
    /// together pass `max_ejected_percent` (`passive.rs`).
    pub(crate) ejecting: Mutex<()>,
}

impl GroupStats {
    pub fn new(now: Instant) -> GroupStats {
        GroupStats {
            panic: AtomicU64::new(0),
            panic_log: LogGate::new(now),
            bound_log: LogGate::new(now),
            ejecting: Mutex::new(()),
        }
    }
}

/// How often a gated log line may repeat.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Lets a log line through at most once per [`LOG_EVERY`], whichever
/// worker asks: a condition that holds for every request (panic mode) is
/// told once, not per request.
#[derive(Debug)]
pub(crate) struct LogGate {
    epoch: Instant,
    /// Milliseconds since `epoch` before which the line stays quiet.
    quiet_until: AtomicU64,
}

impl LogGate {
    pub(crate) fn new(epoch: Instant) -> LogGate {
        LogGate {
            epoch,
            quiet_until: AtomicU64::new(0),
        }
    }

    /// Whether the line may be logged at `now`; if so, the next one waits.
    pub(crate) fn due(&self, now: Instant) -> bool {
        let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX / 2);
        let until = self.quiet_until.load(Relaxed);
        ms >= until
            && self
                .quiet_until
                .compare_exchange(until, ms + LOG_EVERY.as_millis() as u64, Relaxed, Relaxed)
                .is_ok()
    }
}

/// Per route counters: what the client was answered and how long the
/// whole request took, so the dashboard and `/metrics` show status classes
/// and latency percentiles per route.
#[derive(Debug, Default)]
pub struct RouteStats {
    /// Responses by class: index 0 is 1xx … index 4 is 5xx.
    responses: [AtomicU64; 5],
    pub latency: Latency,
}

impl RouteStats {
    /// One answered request: two relaxed adds and a bucket search, on the
    /// request's own log step (no clock reading of its own).
    pub fn observe(&self, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Relaxed);
        self.latency.observe(took);
    }

    pub fn responses(&self, class: usize) -> u64 {
        self.responses.get(class).map_or(0, |c| c.load(Relaxed))
    }
}

/// The label of requests that matched no route.
pub const NO_ROUTE: &str = "(no route)";

/// Route counters by label.
type Routes = Mutex<Vec<(String, Arc<RouteStats>)>>;

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(Default::default)
}

/// The counters of the route labelled `label` (hosts and path prefix, see
/// `levee_http::site`), kept for the life of the process so a reload keeps
/// counting. Looked up when a config is built, never per request.
pub fn route(label: &str) -> Arc<RouteStats> {
    let mut list = match routes().lock() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some((_, s)) = list.iter().find(|(l, _)| l == label) {
        return s.clone();
    }
    let s = Arc::new(RouteStats::default());
    list.push((label.to_owned(), s.clone()));
    s
}

/// Every route seen so far, by label.
pub fn all_routes() -> Vec<(String, Arc<RouteStats>)> {
    let list = match routes().lock() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = list.clone();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
