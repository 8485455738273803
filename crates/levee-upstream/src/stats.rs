//! Counters behind `/metrics`: per server (requests, responses by class,
//! errors by kind, a latency histogram, idle connections) and per route
//! (responses by class, a latency histogram). A listener's are
//! levee-http's (`listener/stats.rs`). Names and rendering live in
//! `levee-admin`'s metrics module; this is only storage, in a cell per
//! worker (cells.rs) that readers sum.

pub mod cells;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

pub use cells::{Count, Local, PerWorker, enter_worker};

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

/// A server's counters, a cell per worker.
#[derive(Debug, Default)]
pub struct ServerStats(PerWorker<ServerCell>);

#[derive(Debug, Default)]
struct ServerCell {
    /// Attempts sent to the server (a retried request counts on each server).
    requests: Count,
    /// Responses by class: index 0 is 1xx … index 4 is 5xx.
    responses: [Count; 5],
    errors: [Count; 5],
    latency: Latency,
    /// Idle pooled connections (this worker's change to the gauge).
    idle: Count,
}

/// The index of `status`'s class: 0 for 1xx … 4 for 5xx.
fn class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

impl ServerStats {
    /// An attempt sent to the server.
    pub fn request(&self) {
        self.0.add(|c| &c.requests, 1);
    }

    pub fn requests(&self) -> u64 {
        self.0.sum(|c| &c.requests)
    }

    pub fn responses(&self, class: usize) -> u64 {
        let class = class.min(4);
        self.0.sum(|c| &c.responses[class])
    }

    pub fn error(&self, kind: ErrorKind) {
        self.0.add(|c| &c.errors[kind as usize], 1);
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.0.sum(|c| &c.errors[kind as usize])
    }

    /// One response head's status and latency.
    pub fn answered(&self, status: u16, took: Duration) {
        let l = self.0.local();
        l.cell.responses[class(status)].add(1, l.own);
        l.cell.latency.observe(took, l.own);
    }

    /// Cumulative bucket counts (last is `+Inf`, the total) and the sum in seconds.
    pub fn latency(&self) -> ([u64; 13], f64) {
        Latency::read(&self.0, |c| &c.latency)
    }

    /// A pooled connection more (`1`) or fewer (`-1`).
    pub fn idle_add(&self, delta: i64) {
        self.0.add(|c| &c.idle, delta as u64);
    }

    /// Idle pooled connections over all workers.
    pub fn idle(&self) -> i64 {
        self.0.sum(|c| &c.idle) as i64
    }
}

/// A worker's part of a latency histogram over [`LATENCY_BUCKETS`]: one
/// add per observation into the first bucket that fits (plus one for the
/// sum); [`Latency::read`] sums the workers' and accumulates.
#[derive(Debug, Default)]
pub struct Latency {
    /// Counts per bucket of [`LATENCY_BUCKETS`], then `+Inf`.
    buckets: [Count; 13],
    sum_us: Count,
}

impl Latency {
    fn observe(&self, took: Duration, own: bool) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].add(1, own);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.add(us, own);
    }

    /// The histogram `of` picks from each cell of `cells`: cumulative
    /// bucket counts (last is `+Inf`, the total) and the sum in seconds.
    fn read<T>(cells: &PerWorker<T>, of: impl Fn(&T) -> &Latency) -> ([u64; 13], f64) {
        let mut out = [0u64; 13];
        let mut running = 0;
        for (i, o) in out.iter_mut().enumerate() {
            running += cells.sum(|c| &of(c).buckets[i]);
            *o = running;
        }
        (out, cells.sum(|c| &of(c).sum_us) as f64 / 1e6)
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
/// and latency percentiles per route. A cell per worker.
#[derive(Debug, Default)]
pub struct RouteStats(PerWorker<RouteCell>);

#[derive(Debug, Default)]
struct RouteCell {
    /// Responses by class: index 0 is 1xx … index 4 is 5xx.
    responses: [Count; 5],
    latency: Latency,
}

impl RouteStats {
    /// One answered request: three adds to the worker's cell and a bucket
    /// search, on the request's own log step (no clock reading of its own).
    pub fn observe(&self, status: u16, took: Duration) {
        let l = self.0.local();
        l.cell.responses[class(status)].add(1, l.own);
        l.cell.latency.observe(took, l.own);
    }

    pub fn responses(&self, class: usize) -> u64 {
        let class = class.min(4);
        self.0.sum(|c| &c.responses[class])
    }

    /// Cumulative bucket counts (last is `+Inf`, the total) and the sum in seconds.
    pub fn latency(&self) -> ([u64; 13], f64) {
        Latency::read(&self.0, |c| &c.latency)
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
