//! The retry budget: retries to an upstream may not exceed a percentage of
//! its requests over the last [`WINDOW_SECS`] seconds (plus a small floor,
//! so a quiet upstream can still fail over). A failing upstream therefore
//! sees at most `1 + percent/100` times its normal load, never a retry storm.
//!
//! Counts are kept in one-second buckets of atomics, a set per worker
//! (stats/cells.rs): counting a request touches only its worker's cache
//! line, and a retry's check sums the workers' buckets. A retry is counted
//! first and taken back if the window is then over budget, so concurrent
//! workers can undershoot the budget but never exceed it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use tokio::time::Instant;

use crate::stats::PerWorker;

/// The window the budget looks back over.
pub const WINDOW_SECS: u64 = 10;
/// Retries always allowed per window, whatever the request count.
pub const MIN_RETRIES: u64 = 10;

#[derive(Debug, Default)]
struct Bucket {
    /// The second (since `epoch`) this bucket counts, plus one; 0 unused.
    second: AtomicU64,
    requests: AtomicU32,
    retries: AtomicU32,
}

#[derive(Debug)]
pub struct RetryBudget {
    percent: u64,
    epoch: Instant,
    buckets: PerWorker<[Bucket; WINDOW_SECS as usize]>,
}

impl RetryBudget {
    pub fn new(percent: u32, now: Instant) -> RetryBudget {
        RetryBudget {
            percent: u64::from(percent),
            epoch: now,
            buckets: PerWorker::default(),
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() + 1
    }

    /// The calling worker's bucket for `second`, cleared if it still held
    /// an older second.
    fn bucket(&self, second: u64) -> &Bucket {
        let b = &self.buckets.local().cell[(second % WINDOW_SECS) as usize];
        let seen = b.second.load(Relaxed);
        if seen != second
            && b.second
                .compare_exchange(seen, second, Relaxed, Relaxed)
                .is_ok()
        {
            b.requests.store(0, Relaxed);
            b.retries.store(0, Relaxed);
        }
        b
    }

    /// Counts one request (not a retry).
    pub fn record_request(&self, now: Instant) {
        self.bucket(self.second(now)).requests.fetch_add(1, Relaxed);
    }

    /// (requests, retries) in the window ending at `second`, all workers'.
    fn window(&self, second: u64) -> (u64, u64) {
        let oldest = second.saturating_sub(WINDOW_SECS - 1);
        self.buckets
            .cells()
            .flatten()
            .filter(|b| (oldest..=second).contains(&b.second.load(Relaxed)))
            .fold((0, 0), |(q, r), b| {
                (
                    q + u64::from(b.requests.load(Relaxed)),
                    r + u64::from(b.retries.load(Relaxed)),
                )
            })
    }

    /// The most retries allowed in a window with `requests` requests.
    pub fn allowed(&self, requests: u64) -> u64 {
        MIN_RETRIES + requests * self.percent / 100
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_retry(&self, now: Instant) -> bool {
        let second = self.second(now);
        let b = self.bucket(second);
        b.retries.fetch_add(1, Relaxed);
        let (requests, retries) = self.window(second);
        if retries > self.allowed(requests) {
            b.retries.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_floor_allows_a_few_retries_without_traffic() {
        let now = Instant::now();
        let b = RetryBudget::new(20, now);
        let granted = (0..100).filter(|_| b.try_retry(now)).count();
        assert_eq!(granted as u64, MIN_RETRIES);
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let now = Instant::now();
        let b = RetryBudget::new(0, now);
        assert_eq!((0..20).filter(|_| b.try_retry(now)).count(), 10);
        let later = now + Duration::from_secs(WINDOW_SECS);
        assert_eq!((0..20).filter(|_| b.try_retry(later)).count(), 10);
    }

    proptest! {
        /// Whatever the mix of requests and retry attempts over time, no
        /// retry is granted that puts its window over the budget: at every
        /// grant, the retries in the window ending then are within
        /// `MIN_RETRIES + percent × requests`.
        #[test]
        fn never_exceeded(
            percent in 0u32..=100,
            steps in proptest::collection::vec((0u64..300, 0u32..50, 0u32..50), 1..80),
        ) {
            let start = Instant::now();
            let b = RetryBudget::new(percent, start);
            // (ms since start, requests, granted retries) per step, for checking windows.
            let mut log: Vec<(u64, u64, u64)> = Vec::new();
            let mut t = 0u64;
            for (advance_ms, requests, attempts) in steps {
                t += advance_ms;
                let now = start + Duration::from_millis(t);
                for _ in 0..requests {
                    b.record_request(now);
                }
                let granted = (0..attempts).filter(|_| b.try_retry(now)).count() as u64;
                log.push((t, u64::from(requests), granted));
                if granted == 0 {
                    continue;
                }
                // The window of whole seconds ending at this second.
                let sec = t / 1000;
                let oldest = sec.saturating_sub(WINDOW_SECS - 1);
                let (q, r) = log
                    .iter()
                    .filter(|(at, _, _)| (oldest..=sec).contains(&(at / 1000)))
                    .fold((0, 0), |(q, r), (_, rq, g)| (q + rq, r + g));
                prop_assert!(r <= b.allowed(q), "{r} retries for {q} requests at {percent}%");
            }
        }
    }
}
