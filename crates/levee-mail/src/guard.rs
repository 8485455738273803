//! Brute-force defence and per-user session caps for one mail listener,
//! shared by its workers and kept across reloads.
//!
//! Failed logins are counted in a window that starts at the first failure,
//! three ways:
//!
//! - **per user and client address**: past `max_auth_failures`, logins for
//!   that user from that address are refused without asking anyone until
//!   the window ends. Someone guessing alice's password locks out only
//!   himself, not alice at her own address;
//! - **per user, across addresses**: past `max_user_auth_failures`, a much
//!   higher ceiling, the user's logins are slowed rather than refused: at
//!   most one per [`SLOW_INTERVAL`] is asked about, each waiting its turn
//!   up to [`MAX_DELAY`]; one whose turn is further away is told to try
//!   again later. A guesser spread over many addresses gets one guess a
//!   second; alice still gets in, slowly;
//! - **per client address**: each failure lengthens that address's answer
//!   delay.
//!
//! The counts are exact under concurrency: an attempt reserves its place in
//! both counts before the auth service is asked ([`Guard::admit`]) and
//! settles it with the outcome ([`Ticket::settle`]), so 40 parallel wrong
//! passwords against a limit of 5 let exactly 5 through.
//!
//! The counts live behind [`Ledger`]. [`Local`] keeps them in this process;
//! [`Shared`] keeps them in the fleet's Redis when levee is a member of a
//! fleet (`fleet.rs`), so a guesser spreading his attempts over every member
//! gets no more than from one: a `reserve` that checks and increments in one
//! atomic step (a script), and a `settle` applied in the background. Time is
//! passed in, so the rules are tested without sleeping.
//!
//! A user is counted under one spelling ([`counted_as`]): `Alice`, ` alice`
//! and `ALICE` are one user to an auth service that ignores case (Dovecot's
//! default `%Lu`, most SQL collations), so they are one user here too, or
//! a guesser would get a fresh count per spelling.

mod fleet;

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest delay growth lets a refusal wait, and the longest wait for a
/// turn in a user's slow lane.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Past a user's ceiling, one attempt for that user per this long.
pub const SLOW_INTERVAL: Duration = Duration::from_secs(1);
/// Most counters kept; past it, idle ones are dropped, then all but those
/// with attempts in flight.
const MAX_KEYS: usize = 100_000;

/// The limits an attempt is held to (from the listener's settings).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Failures per (user, client address) before refusing; 0: no limit.
    pub pair_limit: u32,
    /// Failures per user, across addresses, before slowing; 0: no limit.
    pub user_ceiling: u32,
    pub window: Duration,
}

/// The counters one attempt touches, as keyed hashes (clients cannot aim
/// at collisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub pair: u64,
    pub user: u64,
    pub address: u64,
}

/// What a ledger says to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Reserved: ask the auth service after waiting `wait` (the user's slow
    /// lane, else zero). `address_failures` sets the refusal delay.
    Ask {
        wait: Duration,
        address_failures: u32,
    },
    /// The (user, address) pair is past its limit: refuse without asking.
    Blocked { address_failures: u32 },
    /// The user's slow lane is full for [`MAX_DELAY`]: try again later.
    Busy,
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Wrong credentials: counts against the pair, the user and the address.
    Failed,
    /// Right credentials: the pair's failures are forgotten.
    Succeeded,
    /// Neither (auth service or backend unavailable, or abandoned).
    Undecided,
}

pub use fleet::Shared;

/// Where failure counts live: this process ([`Local`]) or the fleet's
/// Redis ([`Shared`]).
pub trait Ledger: Send + Sync {
    /// What settling a reservation needs besides its keys: where it was made.
    type Hold: Send + Sync + std::fmt::Debug;

    /// The counters an attempt of `user` from `ip` touches. `hasher` is the
    /// guard's own (random per process); a shared ledger hashes alike on
    /// every member instead.
    fn keys(&self, hasher: &RandomState, ip: IpAddr, user: &[u8]) -> Keys {
        local_keys(hasher, ip, user)
    }

    /// Checks `keys` against `rules` and, unless refused, reserves the
    /// attempt's place in the pair's and the user's counts, in one atomic
    /// step: what is reserved counts as a failure until it settles.
    fn reserve(
        &self,
        keys: Keys,
        rules: Rules,
        now: Instant,
    ) -> impl Future<Output = (Admission, Self::Hold)> + Send;

    /// Ends a reserved attempt. Never waits: a shared store may apply it
    /// in the background.
    fn settle(&self, keys: Keys, hold: &Self::Hold, outcome: Outcome, rules: Rules, now: Instant);
}

/// The spelling a user name is counted under: without surrounding
/// whitespace, ASCII letters in lower case.
pub fn counted_as(user: &[u8]) -> Vec<u8> {
    user.trim_ascii().to_ascii_lowercase()
}

/// The counters' keys hashed with this process's own (random) key.
fn local_keys(hasher: &RandomState, ip: IpAddr, user: &[u8]) -> Keys {
    let ip = ip.to_canonical();
    Keys {
        pair: hasher.hash_one((2u8, user, ip)),
        user: user_key(hasher, user),
        address: hasher.hash_one((0u8, ip)),
    }
}

fn user_key(hasher: &RandomState, user: &[u8]) -> u64 {
    hasher.hash_one((1u8, user))
}

/// One counter: failures in the window, attempts reserved and not yet
/// settled, and (for a user) the next turn of its slow lane.
#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since: Instant,
    in_flight: u32,
    next_turn: Option<Instant>,
}

impl Count {
    fn new(now: Instant) -> Count {
        Count {
            failures: 0,
            since: now,
            in_flight: 0,
            next_turn: None,
        }
    }

    fn failures(&self, window: Duration, now: Instant) -> u32 {
        if now.duration_since(self.since) < window {
            self.failures
        } else {
            0
        }
    }

    /// Failures and reservations: what a limit is checked against.
    fn load(&self, window: Duration, now: Instant) -> u32 {
        self.failures(window, now).saturating_add(self.in_flight)
    }

    fn fail(&mut self, window: Duration, now: Instant) -> u32 {
        if self.failures(window, now) == 0 {
            self.failures = 0;
            self.since = now;
        }
        self.failures = self.failures.saturating_add(1);
        self.failures
    }

    /// Nothing left to remember.
    fn idle(&self, window: Duration, now: Instant) -> bool {
        self.in_flight == 0
            && self.failures(window, now) == 0
            && self.next_turn.is_none_or(|t| t <= now)
    }
}

/// Failure counts kept in this process, shared by its workers.
#[derive(Debug, Default)]
pub struct Local {
    counts: Mutex<HashMap<u64, Count>>,
}

impl Local {
    fn reserve_now(&self, keys: Keys, rules: Rules, now: Instant) -> Admission {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.len() >= MAX_KEYS {
            counts.retain(|_, c| !c.idle(rules.window, now));
            if counts.len() >= MAX_KEYS {
                counts.retain(|_, c| c.in_flight > 0);
            }
        }
        let address_failures = counts
            .get(&keys.address)
            .map_or(0, |c| c.failures(rules.window, now));
        let pair = counts
            .get(&keys.pair)
            .map_or(0, |c| c.load(rules.window, now));
        if rules.pair_limit > 0 && pair >= rules.pair_limit {
            return Admission::Blocked { address_failures };
        }
        let user = counts.entry(keys.user).or_insert_with(|| Count::new(now));
        let mut wait = Duration::ZERO;
        if rules.user_ceiling > 0 && user.load(rules.window, now) >= rules.user_ceiling {
            let turn = user.next_turn.map_or(now, |t| t.max(now));
            if turn.duration_since(now) > MAX_DELAY {
                return Admission::Busy;
            }
            user.next_turn = Some(turn + SLOW_INTERVAL);
            wait = turn.duration_since(now);
        }
        user.in_flight += 1;
        counts
            .entry(keys.pair)
            .or_insert_with(|| Count::new(now))
            .in_flight += 1;
        Admission::Ask {
            wait,
            address_failures,
        }
    }
}

impl Ledger for Local {
    type Hold = ();

    fn reserve(
        &self,
        keys: Keys,
        rules: Rules,
        now: Instant,
    ) -> impl Future<Output = (Admission, ())> + Send {
        std::future::ready((self.reserve_now(keys, rules, now), ()))
    }

    fn settle(&self, keys: Keys, _: &(), outcome: Outcome, rules: Rules, now: Instant) {
        self.settle_now(keys, outcome, rules, now);
    }
}

impl Local {
    fn settle_now(&self, keys: Keys, outcome: Outcome, rules: Rules, now: Instant) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for key in [keys.pair, keys.user] {
            if let Some(c) = counts.get_mut(&key) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
        }
        match outcome {
            Outcome::Failed => {
                for key in [keys.pair, keys.user, keys.address] {
                    counts
                        .entry(key)
                        .or_insert_with(|| Count::new(now))
                        .fail(rules.window, now);
                }
            }
            Outcome::Succeeded => {
                if let Some(c) = counts.get_mut(&keys.pair) {
                    c.failures = 0;
                }
            }
            Outcome::Undecided => {}
        }
        for key in [keys.pair, keys.user] {
            if counts.get(&key).is_some_and(|c| c.idle(rules.window, now)) {
                counts.remove(&key);
            }
        }
    }
}

/// Why an attempt is not asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Past the limit for this user from this address: refuse (after the
    /// address's delay), as a wrong password would be.
    Blocked { address_failures: u32 },
    /// The user's slow lane is full: "try again later".
    Busy,
}

/// A reserved attempt; settle it with its outcome. Dropped unsettled, it
/// settles as [`Outcome::Undecided`], so a reservation is never leaked.
#[derive(Debug)]
pub struct Ticket<'g, L: Ledger> {
    ledger: &'g L,
    keys: Keys,
    hold: L::Hold,
    rules: Rules,
    /// The address's failures when reserved: its refusal delay.
    pub address_failures: u32,
    /// How long it waited in the user's slow lane.
    pub waited: Duration,
    settled: bool,
}

impl<L: Ledger> Ticket<'_, L> {
    pub fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.ledger
            .settle(self.keys, &self.hold, outcome, self.rules, Instant::now());
    }
}

impl<L: Ledger> Drop for Ticket<'_, L> {
    fn drop(&mut self) {
        if !self.settled {
            self.ledger.settle(
                self.keys,
                &self.hold,
                Outcome::Undecided,
                self.rules,
                Instant::now(),
            );
        }
    }
}

/// How long a refusal waits: `base` times the address's failures, at most
/// [`MAX_DELAY`] (or `base`, if that is longer).
pub fn delay(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(failures.max(1))
        .min(MAX_DELAY.max(base))
}

#[derive(Debug, Default)]
pub struct Guard<L = Local> {
    ledger: L,
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
        let mut s = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = s.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.key);
            }
        }
    }
}

impl<L: Ledger> Guard<L> {
    pub fn with_ledger(ledger: L) -> Guard<L> {
        Guard {
            ledger,
            sessions: Arc::default(),
            hasher: RandomState::new(),
        }
    }

    fn user_key(&self, user: &[u8]) -> u64 {
        user_key(&self.hasher, &counted_as(user))
    }

    pub fn keys(&self, ip: IpAddr, user: &[u8]) -> Keys {
        self.ledger.keys(&self.hasher, ip, &counted_as(user))
    }

    /// Reserves a login attempt for `user` from `ip`, after waiting its turn
    /// if the user is past its ceiling.
    pub async fn admit(
        &self,
        ip: IpAddr,
        user: &[u8],
        rules: Rules,
    ) -> Result<Ticket<'_, L>, Refusal> {
        let keys = self.keys(ip, user);
        match self.ledger.reserve(keys, rules, Instant::now()).await {
            (Admission::Blocked { address_failures }, _) => {
                Err(Refusal::Blocked { address_failures })
            }
            (Admission::Busy, _) => Err(Refusal::Busy),
            (
                Admission::Ask {
                    wait,
                    address_failures,
                },
                hold,
            ) => {
                // Reserved before the wait: a turn taken is a turn held.
                let ticket = Ticket {
                    ledger: &self.ledger,
                    keys,
                    hold,
                    rules,
                    address_failures,
                    waited: wait,
                    settled: false,
                };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(ticket)
            }
        }
    }

    /// A slot for one more session of `user`, unless it has `limit` already (0: no limit).
    pub fn open_session(&self, user: &[u8], limit: u32) -> Option<SessionSlot> {
        let key = self.user_key(user);
        let mut s = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
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
mod tests;
