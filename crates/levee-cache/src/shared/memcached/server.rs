//! One memcached server's state beside its address: skipped for a while
//! after a failed connect, logged once per spell.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server that failed a connect is skipped.
const DOWN_FOR: Duration = Duration::from_secs(1);
static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

pub(super) fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

#[derive(Debug)]
pub(super) struct Server {
    pub(super) addr: String,
    /// Milliseconds since [`EPOCH`] until which the server is skipped.
    pub(super) down_until: AtomicU64,
    /// Whether the last connect failed (logged once per spell).
    pub(super) down: AtomicBool,
}

impl Server {
    /// A connect failed: skip the server for a while; logged when it starts.
    pub(super) fn failed(&self, why: &dyn std::fmt::Display) {
        self.down_until
            .store(now_ms() + DOWN_FOR.as_millis() as u64, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(server = %self.addr, error = %why, "shared cache: memcached unreachable; its objects are misses until it answers");
        }
    }

    /// A connect succeeded.
    pub(super) fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!(server = %self.addr, "shared cache: memcached answers again");
        }
    }
}
