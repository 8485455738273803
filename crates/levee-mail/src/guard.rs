//! Brute-force defence and per-user session caps for one mail listener,
//! shared by its workers and kept across reloads.
//!
//! Failed logins are counted per client IP and per user name in a window
//! that starts at the first failure; past the limit, logins from that IP or
//! for that user are refused without asking anyone until the window ends.
//! Each failure from an IP also lengthens that IP's answer delay. Time is
//! passed in, so the rules are tested without sleeping.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest delay growth lets a refusal wait.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Most counters kept; past it, expired ones are dropped, then all.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct Guard {
    failures: Mutex<HashMap<u64, Failures>>,
    sessions: Arc<Mutex<HashMap<u64, u32>>>,
    hasher: RandomState,
}

/// A logged-in session's place in its user's count; given back on drop.
#[derive(Debug)]
pub struct SessionSlot {
    sessions: Arc<Mutex<HashMap<u64, u32>>>,
    key: u64,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(n) = s.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.key);
            }
        }
    }
}

impl Guard {
    fn ip_key(&self, ip: IpAddr) -> u64 {
        self.hasher.hash_one((0u8, ip.to_canonical()))
    }

    fn user_key(&self, user: &[u8]) -> u64 {
        self.hasher.hash_one((1u8, user))
    }

    fn count(&self, key: u64, window: Duration, now: Instant) -> u32 {
        let Ok(f) = self.failures.lock() else {
            return 0;
        };
        f.get(&key)
            .filter(|f| now.duration_since(f.since) < window)
            .map_or(0, |f| f.count)
    }

    /// Whether logins from `ip` or for `user` are refused outright.
    pub fn blocked(
        &self,
        ip: IpAddr,
        user: &[u8],
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> bool {
        limit > 0
            && (self.count(self.ip_key(ip), window, now) >= limit
                || self.count(self.user_key(user), window, now) >= limit)
    }

    /// Counts a failure; returns how long its answer should wait: `base`
    /// times the IP's failures in the window, at most [`MAX_DELAY`].
    pub fn fail(
        &self,
        ip: IpAddr,
        user: &[u8],
        base: Duration,
        window: Duration,
        now: Instant,
    ) -> Duration {
        let Ok(mut f) = self.failures.lock() else {
            return base;
        };
        if f.len() >= MAX_KEYS {
            f.retain(|_, v| now.duration_since(v.since) < window);
            if f.len() >= MAX_KEYS {
                f.clear();
            }
        }
        let mut ip_count = 1;
        for (key, is_ip) in [(self.ip_key(ip), true), (self.user_key(user), false)] {
            let entry = f.entry(key).or_insert(Failures {
                count: 0,
                since: now,
            });
            if now.duration_since(entry.since) >= window {
                *entry = Failures {
                    count: 0,
                    since: now,
                };
            }
            entry.count += 1;
            if is_ip {
                ip_count = entry.count;
            }
        }
        base.saturating_mul(ip_count).min(MAX_DELAY.max(base))
    }

    /// A slot for one more session of `user`, unless it has `limit` already (0: no limit).
    pub fn open_session(&self, user: &[u8], limit: u32) -> Option<SessionSlot> {
        let key = self.user_key(user);
        let mut s = self.sessions.lock().ok()?;
        let n = s.entry(key).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(SessionSlot {
            sessions: self.sessions.clone(),
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const WINDOW: Duration = Duration::from_secs(300);

    #[test]
    fn failures_grow_the_delay_then_block_ip_and_user_until_the_window_ends() {
        let g = Guard::default();
        let t0 = Instant::now();
        let base = Duration::from_secs(1);
        assert_eq!(g.fail(IP, b"alice", base, WINDOW, t0), base);
        assert_eq!(g.fail(IP, b"bob", base, WINDOW, t0), base * 2);
        assert!(!g.blocked(IP, b"carol", 3, WINDOW, t0));
        g.fail(IP, b"alice", base, WINDOW, t0);
        // Three failures from IP: blocked for every user from it.
        assert!(g.blocked(IP, b"carol", 3, WINDOW, t0));
        // alice failed twice; a third from elsewhere blocks her everywhere.
        assert!(!g.blocked(OTHER, b"alice", 3, WINDOW, t0));
        g.fail(OTHER, b"alice", base, WINDOW, t0);
        assert!(g.blocked(OTHER, b"alice", 3, WINDOW, t0));
        assert!(!g.blocked(OTHER, b"bob", 3, WINDOW, t0));
        // The window ends; so does the block. 0 turns blocking off.
        assert!(!g.blocked(IP, b"carol", 3, WINDOW, t0 + WINDOW));
        assert!(!g.blocked(IP, b"alice", 0, WINDOW, t0));
        for _ in 0..100 {
            g.fail(IP, b"x", base, WINDOW, t0);
        }
        assert_eq!(g.fail(IP, b"x", base, WINDOW, t0), MAX_DELAY);
    }

    #[test]
    fn sessions_per_user_are_capped_and_given_back() {
        let g = Guard::default();
        let a = g.open_session(b"alice", 2).expect("first");
        let _b = g.open_session(b"alice", 2).expect("second");
        assert!(g.open_session(b"alice", 2).is_none());
        assert!(g.open_session(b"bob", 2).is_some());
        drop(a);
        assert!(g.open_session(b"alice", 2).is_some());
        assert!(g.open_session(b"alice", 0).is_some(), "0 is no limit");
    }
}
