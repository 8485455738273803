//! Whether Redis answers, and since when. Requests read it with one atomic
//! load; a change is logged once, when it happens, and counted.
//!
//! ```text
//! Down ──connected, PING answered──▶ Restoring ──local debts charged──▶ Up
//!  ▲                                                                    │
//!  └──── a connection error, or two timeouts in a row ──────────────────┘
//! ```
//!
//! `Restoring` is still the local fallback for requests: what members
//! admitted on their own while Redis was away is charged to it first, so
//! returning to fleet limits grants no second burst in the window.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Down = 0,
    Restoring = 1,
    Up = 2,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Down => "down",
            State::Restoring => "restoring",
            State::Up => "up",
        }
    }

    fn from_u8(n: u8) -> State {
        match n {
            2 => State::Up,
            1 => State::Restoring,
            _ => State::Down,
        }
    }
}

#[derive(Debug)]
pub struct Health {
    /// Where Redis is, for log lines (`redis://host:port`, the sentinels).
    peer: String,
    state: AtomicU8,
    since: Mutex<SystemTime>,
    /// Transitions into `Down` (fallbacks) and into `Up` (resumptions).
    pub went_down: AtomicU64,
    pub came_up: AtomicU64,
}

impl Health {
    pub fn new(peer: String) -> Health {
        Health {
            peer,
            state: AtomicU8::new(State::Down as u8),
            since: Mutex::new(SystemTime::now()),
            went_down: AtomicU64::new(0),
            came_up: AtomicU64::new(0),
        }
    }

    /// Where Redis is, as configured.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Fleet limits apply; otherwise each member limits on its own.
    pub fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == State::Up as u8
    }

    /// When the state last changed.
    pub fn since(&self) -> SystemTime {
        *self.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves to `to`; logs and counts only a real change. `why` says what
    /// was seen (an error text, "2 timeouts").
    pub(crate) fn set(&self, to: State, why: &str) {
        let from = State::from_u8(self.state.swap(to as u8, Ordering::AcqRel));
        if from == to {
            return;
        }
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = SystemTime::now();
        match to {
            State::Down => {
                self.went_down.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    redis = %self.peer,
                    why,
                    "fleet: Redis unreachable; rate limits fall back to each member's share"
                );
            }
            State::Up => {
                self.came_up.fetch_add(1, Ordering::Relaxed);
                tracing::info!(redis = %self.peer, "fleet: Redis reachable; fleet rate limits resume");
            }
            State::Restoring => {
                tracing::info!(redis = %self.peer, "fleet: Redis answers; charging what was admitted locally");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_count_once() {
        let h = Health::new("redis://127.0.0.1:6379".into());
        assert_eq!(h.state(), State::Down);
        h.set(State::Down, "x");
        assert_eq!(h.went_down.load(Ordering::Relaxed), 0);
        h.set(State::Restoring, "");
        assert!(!h.is_up());
        h.set(State::Up, "");
        h.set(State::Up, "");
        assert!(h.is_up());
        assert_eq!(h.came_up.load(Ordering::Relaxed), 1);
        h.set(State::Down, "reset");
        h.set(State::Down, "reset");
        assert_eq!(h.went_down.load(Ordering::Relaxed), 1);
    }
}
