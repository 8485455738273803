//! Active health checks: each server is probed every `interval` (plus
//! jitter, so a fleet of proxies does not probe in step); `fall` failures in
//! a row take it down and `rise` passes in a row bring it back, through slow
//! start.
//!
//! The checks run on the control thread, never on a worker. The loop takes
//! its probe as a function, so tests drive it with a scripted probe on
//! paused tokio time.

mod probe;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use levee_config::HealthCheck;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use crate::Group;
use crate::state::ServerState;

pub use probe::probe;

/// Rise/fall counting: the state machine of one server's checks.
#[derive(Debug, Clone)]
pub struct Counter {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl Counter {
    pub fn new(rise: u32, fall: u32, up: bool) -> Counter {
        Counter {
            rise: rise.max(1),
            fall: fall.max(1),
            up,
            streak: 0,
        }
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Records one probe result; returns the new state when it changes.
    pub fn record(&mut self, passed: bool) -> Option<bool> {
        if passed == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = passed;
        self.streak = 0;
        Some(passed)
    }
}

/// The wait before the next probe: `interval` plus up to `jitter_percent`
/// of it, from `random` (any u64).
pub fn next_wait(check: &HealthCheck, random: u64) -> Duration {
    let max_extra = check.interval.as_millis() as u64 * u64::from(check.jitter_percent) / 100;
    let extra = if max_extra == 0 {
        0
    } else {
        random % (max_extra + 1)
    };
    check.interval + Duration::from_millis(extra)
}

/// Checks one server for ever: waits, probes (bounded by `check.timeout`),
/// and applies the rise/fall verdict to `state`.
pub async fn run<P, F>(
    addr: SocketAddr,
    state: Arc<ServerState>,
    check: HealthCheck,
    seed: u64,
    mut probe: P,
) where
    P: FnMut() -> F,
    F: Future<Output = bool>,
{
    let mut counter = Counter::new(check.rise, check.fall, state.check_up());
    let mut random = seed | 1;
    loop {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        sleep(next_wait(&check, random)).await;
        let passed = timeout(check.timeout, probe()).await.unwrap_or(false);
        if let Some(up) = counter.record(passed) {
            state.set_check_up(up, Instant::now());
            if up {
                tracing::info!(server = %addr, "health check passed: server is up");
            } else {
                tracing::warn!(server = %addr, "health check failed: server is down");
            }
        }
    }
}

/// Checks every server of `group`, following DNS changes to its members.
/// Runs until dropped (the caller aborts it on reload).
pub async fn check_group(group: Arc<Group>) {
    let Some(check) = group.config.health_check.clone() else {
        return;
    };
    let started = std::time::Instant::now();
    let mut tasks = JoinSet::new();
    let mut running: HashMap<SocketAddr, tokio::task::AbortHandle> = HashMap::new();
    loop {
        let members = group.members();
        running.retain(|addr, task| {
            let keep = members.list.iter().any(|m| m.addr == *addr);
            if !keep {
                task.abort();
            }
            keep
        });
        for m in &members.list {
            if running.contains_key(&m.addr) {
                continue;
            }
            let (addr, host, kind) = (m.addr, m.configured.clone(), check.kind.clone());
            let seed = crate::balance::hash::cookie_id(addr) ^ started.elapsed().as_nanos() as u64;
            let state = m.state.clone();
            let task = tasks.spawn(run(addr, state, check.clone(), seed, move || {
                probe(addr, host.clone(), kind.clone())
            }));
            running.insert(addr, task);
        }
        drop(members);
        // Reap finished tasks (none finish normally) and look at DNS again.
        while tasks.try_join_next().is_some() {}
        sleep(check.interval.min(Duration::from_secs(1))).await;
    }
}

#[cfg(test)]
mod tests;
