//! The run-time state of one server, shared by every worker and kept across
//! reloads (see [`crate::Registry`]): what the operator set (drain, disable,
//! weight), what the health checks and passive ejection decided, and the
//! counters behind `/metrics`.
//!
//! Everything is an atomic read on the hot path. Time is passed in as `now`
//! (a `tokio::time::Instant`, so tests run on paused time) and stored as
//! milliseconds since the state was created.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use levee_config::PassiveHealth;
use tokio::time::Instant;

use crate::stats::ServerStats;

/// What the operator set through the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Takes requests when healthy.
    Enabled,
    /// Takes no new requests; in-flight ones finish; idle connections close.
    Draining,
    /// Takes no requests at all.
    Disabled,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Enabled => "enabled",
            AdminState::Draining => "draining",
            AdminState::Disabled => "disabled",
        }
    }
}

/// How a server stands for new requests, most important reason first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Up,
    /// Back from being down, weight still ramping up.
    SlowStart,
    Draining,
    Disabled,
    /// Failed its active health checks.
    Down,
    /// Ejected by passive health until the backoff passes.
    Ejected,
    /// No longer among the DNS records of its name.
    Removed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::SlowStart => "slow_start",
            Status::Draining => "draining",
            Status::Disabled => "disabled",
            Status::Down => "down",
            Status::Ejected => "ejected",
            Status::Removed => "removed",
        }
    }
}

/// What one failure did to a server's passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Passive ejection is off, or the server is already ejected.
    Ignored,
    /// Counted towards `max_fails`.
    Counted,
    /// The `max_fails`-th in a row, but the group's bound kept the server
    /// in; the count starts again.
    Kept,
    /// Ejected for this long.
    Ejected(Duration),
}

/// Weights are scaled by this internally so slow start can ramp a weight-1
/// server smoothly.
pub const WEIGHT_SCALE: u64 = 100;

/// The part of a slow-start window a server starts at.
const SLOW_START_FLOOR_PERCENT: u64 = 10;

#[derive(Debug)]
pub struct ServerState {
    epoch: Instant,
    admin: AtomicU8,
    /// 0: the configured weight applies.
    weight_override: AtomicU32,
    check_up: AtomicBool,
    retired: AtomicBool,
    fails: AtomicU32,
    ejections: AtomicU32,
    /// Milliseconds since `epoch` when the ejection ends; 0 when not ejected.
    ejected_until: AtomicU64,
    /// Milliseconds since `epoch` + 1 when slow start began; 0 for none.
    ramp_from: AtomicU64,
    /// Requests in flight.
    active: AtomicU32,
    /// Latency EWMA in microseconds; 0 until the first response.
    ewma_us: AtomicU64,
    /// Milliseconds since `epoch` of the last latency sample.
    ewma_at: AtomicU64,
    pub stats: ServerStats,
}

impl ServerState {
    pub fn new(now: Instant) -> ServerState {
        ServerState {
            epoch: now,
            admin: AtomicU8::new(0),
            weight_override: AtomicU32::new(0),
            check_up: AtomicBool::new(true),
            retired: AtomicBool::new(false),
            fails: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ramp_from: AtomicU64::new(0),
            active: AtomicU32::new(0),
            ewma_us: AtomicU64::new(0),
            ewma_at: AtomicU64::new(0),
            stats: ServerStats::default(),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    pub fn admin(&self) -> AdminState {
        match self.admin.load(Relaxed) {
            0 => AdminState::Enabled,
            1 => AdminState::Draining,
            _ => AdminState::Disabled,
        }
    }

    pub fn set_admin(&self, state: AdminState) {
        let v = match state {
            AdminState::Enabled => 0,
            AdminState::Draining => 1,
            AdminState::Disabled => 2,
        };
        self.admin.store(v, Relaxed);
    }

    pub fn weight_override(&self) -> Option<u32> {
        match self.weight_override.load(Relaxed) {
            0 => None,
            w => Some(w),
        }
    }

    pub fn set_weight_override(&self, weight: Option<u32>) {
        self.weight_override.store(weight.unwrap_or(0), Relaxed);
    }

    pub fn check_up(&self) -> bool {
        self.check_up.load(Relaxed)
    }

    /// The active health checks' verdict; coming up starts slow start.
    pub fn set_check_up(&self, up: bool, now: Instant) {
        let was = self.check_up.swap(up, Relaxed);
        if up && !was {
            self.ramp_from.store(self.ms(now) + 1, Relaxed);
        }
    }

    pub(crate) fn set_retired(&self, retired: bool) {
        self.retired.store(retired, Relaxed);
    }

    pub fn retired(&self) -> bool {
        self.retired.load(Relaxed)
    }

    /// Whether idle connections to this server may be kept and reused.
    pub fn keeps_connections(&self) -> bool {
        self.admin() == AdminState::Enabled && !self.retired()
    }

    pub fn ejected(&self, now: Instant) -> bool {
        let until = self.ejected_until.load(Relaxed);
        until != 0 && self.ms(now) < until
    }

    /// Time left in the current ejection.
    pub fn ejected_for(&self, now: Instant) -> Option<Duration> {
        let until = self.ejected_until.load(Relaxed);
        let now = self.ms(now);
        (until != 0 && now < until).then(|| Duration::from_millis(until - now))
    }

    /// May take a new request.
    #[inline]
    pub fn usable(&self, now: Instant) -> bool {
        self.admin.load(Relaxed) == 0
            && self.check_up.load(Relaxed)
            && !self.retired.load(Relaxed)
            && !self.ejected(now)
    }

    /// May take a request in panic mode: the operator's drain and disable
    /// and DNS removal still hold; health verdicts do not.
    #[inline]
    pub fn routable(&self) -> bool {
        self.admin.load(Relaxed) == 0 && !self.retired.load(Relaxed)
    }

    /// Out of rotation for health: down by active checks, or ejected.
    pub fn out_for_health(&self, now: Instant) -> bool {
        !self.check_up() || self.ejected(now)
    }

    pub fn status(&self, now: Instant, slow_start: Duration) -> Status {
        if self.retired() {
            return Status::Removed;
        }
        match self.admin() {
            AdminState::Disabled => return Status::Disabled,
            AdminState::Draining => return Status::Draining,
            AdminState::Enabled => {}
        }
        if !self.check_up() {
            Status::Down
        } else if self.ejected(now) {
            Status::Ejected
        } else if self.ramp_percent(now, slow_start) < 100 {
            Status::SlowStart
        } else {
            Status::Up
        }
    }

    /// Percentage of its weight the server gets now: ramps from 10 to 100
    /// over `slow_start` after it came back.
    fn ramp_percent(&self, now: Instant, slow_start: Duration) -> u64 {
        let from = self.ramp_from.load(Relaxed);
        if from == 0 || slow_start.is_zero() {
            return 100;
        }
        let now = self.ms(now);
        let from = from - 1;
        if now < from {
            // An ejection whose ramp starts when it ends.
            return SLOW_START_FLOOR_PERCENT;
        }
        let window = u64::try_from(slow_start.as_millis()).unwrap_or(u64::MAX);
        let elapsed = now - from;
        if elapsed >= window {
            return 100;
        }
        (elapsed.saturating_mul(100) / window).max(SLOW_START_FLOOR_PERCENT)
    }

    /// The scaled weight for balancing: the configured (or overridden)
    /// weight times [`WEIGHT_SCALE`], reduced during slow start. At least 1.
    #[inline]
    pub fn effective_weight(&self, configured: u32, now: Instant, slow_start: Duration) -> u64 {
        let base = u64::from(self.weight_override().unwrap_or(configured).max(1)) * WEIGHT_SCALE;
        let pct = self.ramp_percent(now, slow_start);
        (base * pct / 100).max(1)
    }

    /// A failed exchange. When it is the `max_fails`-th in a row, the
    /// server is ejected if `may_eject` allows (the group's bound, see
    /// `passive.rs`); otherwise the count starts again.
    pub fn record_failure(
        &self,
        now: Instant,
        policy: &PassiveHealth,
        may_eject: impl FnOnce() -> bool,
    ) -> Failure {
        if policy.max_fails == 0 || self.ejected(now) {
            return Failure::Ignored;
        }
        let n = self.fails.fetch_add(1, Relaxed) + 1;
        if n < policy.max_fails {
            return Failure::Counted;
        }
        self.fails.store(0, Relaxed);
        if !may_eject() {
            return Failure::Kept;
        }
        let k = self.ejections.fetch_add(1, Relaxed).min(30);
        let period = policy
            .fail_timeout
            .saturating_mul(1u32 << k)
            .min(policy.max_ejection);
        let until = self.ms(now) + u64::try_from(period.as_millis()).unwrap_or(u64::MAX / 2);
        self.ejected_until.store(until.max(1), Relaxed);
        self.ramp_from.store(until + 1, Relaxed);
        Failure::Ejected(period)
    }

    /// A good exchange: forgets failures and past ejections. Writes only
    /// when something changes, so a healthy server's line stays shared.
    #[inline]
    pub fn record_success(&self) {
        if self.fails.load(Relaxed) != 0 {
            self.fails.store(0, Relaxed);
        }
        if self.ejections.load(Relaxed) != 0 {
            self.ejections.store(0, Relaxed);
        }
    }

    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    /// Counts a request in flight until the lease drops.
    pub fn lease(self: &std::sync::Arc<Self>) -> Lease {
        self.active.fetch_add(1, Relaxed);
        Lease(self.clone())
    }

    /// The latency estimate in microseconds at `now` (0 before the first
    /// response). It halves every [`LATENCY_HALF_LIFE`] without a sample,
    /// so a server the balancer stopped choosing because it was slow once
    /// looks cheap again after a while and is tried again: without that it
    /// would never get the sample that shows it recovered.
    #[inline]
    pub fn ewma_us(&self, now: Instant) -> u64 {
        let ewma = self.ewma_us.load(Relaxed);
        if ewma == 0 {
            return 0;
        }
        let age = self.ms(now).saturating_sub(self.ewma_at.load(Relaxed));
        decay(ewma, age)
    }

    /// Folds a response time taken at `now` into the estimate. A recent
    /// estimate keeps 7/8 of its weight; an old one keeps less (it halves
    /// with each [`LATENCY_HALF_LIFE`] of age), so the first sample after a
    /// long gap counts for nearly all of the new estimate.
    pub fn observe_latency(&self, took: Duration, now: Instant) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let at = self.ms(now);
        let old = self.ewma_us.load(Relaxed);
        let new = if old == 0 {
            sample
        } else {
            let age = at.saturating_sub(self.ewma_at.load(Relaxed));
            // old × w + sample × (1 − w), w = 7/8 × 2^(−age/half-life).
            let kept = decay(old - old / 8, age);
            let w = kept as f64 / old as f64;
            kept + (sample as f64 * (1.0 - w)) as u64
        };
        self.ewma_us.store(new.max(1), Relaxed);
        self.ewma_at.store(at, Relaxed);
    }
}

/// How long a latency estimate takes to halve without samples.
pub const LATENCY_HALF_LIFE: Duration = Duration::from_secs(1);

/// `value` × 2^(−age_ms / half-life).
#[inline]
fn decay(value: u64, age_ms: u64) -> u64 {
    if age_ms == 0 {
        return value;
    }
    let halves = age_ms as f64 / LATENCY_HALF_LIFE.as_millis() as f64;
    (value as f64 * (-halves).exp2()) as u64
}

/// A request in flight on a server.
#[derive(Debug)]
pub struct Lease(std::sync::Arc<ServerState>);

impl Lease {
    pub fn state(&self) -> &std::sync::Arc<ServerState> {
        &self.0
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests;
