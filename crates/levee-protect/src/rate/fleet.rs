//! Fleet-scoped rate limits (`scope = "fleet"`, docs/fleet.md): the rule's
//! GCRA state lives in Redis (`levee_fleet::limits`), shared by every
//! member, and this member keeps only what spares it a round trip:
//!
//! - **a refusal**, remembered until the key conforms again. Exact: other
//!   members can only push the key's arrival time later, never earlier;
//! - **a lease** for a busy key: one round trip takes a slice of tokens,
//!   spent locally over at most `LEASE_FOR`. A slice is at most 1 % of
//!   the limit shared among the live members, and only for a rule whose
//!   limit is at least 200 per member, so all the members' unspent slices
//!   together stay within 1 % of the limit;
//! - **the last arrival time Redis reported**, sent back with the next
//!   question so that a Redis that lost its data is set right again;
//! - **the local fallback**: while Redis is unreachable, the rule's own
//!   table limits this member to its share, `1 / live members` of the
//!   limit, less its share of what the fleet had used when this member
//!   last asked Redis about the key. What it admits is charged to Redis
//!   before fleet limits resume ([`Debts`]).
//!
//! A question to Redis costs a `Take` (its key as a string) and a channel;
//! the wait is bounded by the fleet's `timeout`, after which the request is
//! decided by the fallback.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use levee_config::RateLimit;
use levee_fleet::{Debts, Fleet, Grant, Take};
use siphasher::sip::SipHasher13;

use super::{Decision, RateLimiter, SHARDS, nanos};
use crate::shard::{U64Map, lock};

/// A key asked about twice within this is busy, and may lease a slice.
const HOT: Duration = Duration::from_millis(10);
/// Longest a lease may be spent over (and at most the rule's `per`).
const LEASE_FOR: Duration = Duration::from_secs(1);
/// A slice is this share of the limit, split among the live members.
const SLICE_PER: u32 = 100;

/// What this member knows about one key of a fleet-scoped rule.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    /// Refused until then (ns since the limiter's epoch).
    refused_until: u64,
    /// Leased tokens left, and until when they may be spent.
    lease: u32,
    lease_until: u64,
    /// A lease is being asked for: other requests ask for one token.
    leasing: bool,
    /// When the key last went to Redis.
    asked: u64,
    /// The arrival time Redis last reported (µs, Redis time).
    floor_us: u64,
    /// That arrival time on this member's clock (ns since the epoch).
    fleet_tat: u64,
    /// Admitted locally while Redis was away; charged when it is back.
    debt: u32,
}

/// A question for Redis about one key, from [`FleetLimit::check_here`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Ask {
    /// When it was asked (ns since the limiter's epoch).
    t: u64,
    want: u32,
    floor_us: u64,
}

impl Entry {
    fn idle(&self, t: u64) -> bool {
        self.refused_until <= t && self.lease_until <= t && self.fleet_tat <= t && self.debt == 0
    }
}

pub(super) struct FleetLimit {
    fleet: Arc<Fleet>,
    /// Keyed alike on every member of the fleet ([`Fleet::hasher`]).
    hasher: SipHasher13,
    /// `{NAME}:rl:RULE:`
    prefix: String,
    interval_us: u64,
    tolerance_us: u64,
    /// The limit whose 1 % a slice is (before sharing among members).
    limit: u32,
    table: Box<[std::sync::Mutex<U64Map<Entry>>]>,
    per_shard: usize,
}

impl std::fmt::Debug for FleetLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetLimit")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Whether a limiter's fleet part runs on `fleet` (both absent counts).
pub(super) fn same(part: &Option<FleetLimit>, fleet: Option<&Arc<Fleet>>) -> bool {
    match (part, fleet) {
        (None, None) => true,
        (Some(p), Some(f)) => Arc::ptr_eq(&p.fleet, f),
        _ => false,
    }
}

impl FleetLimit {
    pub(super) fn new(fleet: Arc<Fleet>, rule: &RateLimit) -> FleetLimit {
        let interval_us = (per_us(rule) / u64::from(rule.requests.max(1))).max(1);
        let shards = SHARDS
            .min(rule.max_keys.max(1) as usize)
            .next_power_of_two();
        FleetLimit {
            hasher: fleet.hasher(&rule.name),
            prefix: format!("{{{}}}:rl:{}:", fleet.name(), rule.name),
            interval_us,
            tolerance_us: interval_us.saturating_mul(u64::from(rule.burst.max(1) - 1)),
            limit: rule.burst.min(rule.requests),
            table: (0..shards).map(|_| Default::default()).collect(),
            per_shard: (rule.max_keys.max(1) as usize).div_ceil(shards),
            fleet,
        }
    }

    pub(super) fn hasher(&self) -> SipHasher13 {
        self.hasher
    }

    fn shard(&self, key: u64) -> &std::sync::Mutex<U64Map<Entry>> {
        &self.table[(key >> 32) as usize & (self.table.len() - 1)]
    }

    /// Tokens a busy key leases per round trip now: `None` below two.
    fn slice(&self, rule: &RateLimit) -> Option<u32> {
        let n = self.limit / SLICE_PER / self.fleet.live();
        (rule.nodelay && n >= 2).then_some(n)
    }

    /// Decides without a round trip when this member can (Redis down, a
    /// remembered refusal, a leased token); otherwise says what to ask.
    pub(super) fn check_here(
        &self,
        l: &RateLimiter,
        key: u64,
        now: Instant,
    ) -> Result<Decision, Ask> {
        let t = l.t(now);
        if !self.fleet.link.health.is_up() {
            return Ok(self.fallback(l, key, t));
        }
        let mut map = lock(self.shard(key));
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            self.make_room(l, &mut map, t);
        }
        let e = map.entry(key).or_default();
        if e.refused_until > t {
            let d = Decision::Refuse {
                retry_after: Duration::from_nanos(e.refused_until - t),
            };
            l.count(d);
            return Ok(d);
        }
        if e.lease > 0 && e.lease_until > t {
            e.lease -= 1;
            l.count(Decision::Admit);
            return Ok(Decision::Admit);
        }
        let hot = !e.leasing && e.asked > 0 && t.saturating_sub(e.asked) < nanos(HOT);
        let want = match self.slice(&l.rule) {
            Some(n) if hot => {
                e.leasing = true;
                n
            }
            _ => 1,
        };
        e.asked = t;
        Err(Ask {
            t,
            want,
            floor_us: e.floor_us,
        })
    }

    /// Asks Redis, waiting at most the fleet's `timeout`; without an
    /// answer by then, decides on this member's share.
    pub(super) async fn ask(&self, l: &RateLimiter, key: u64, ask: Ask) -> Decision {
        let take = Take {
            key: format!("{}{key:016x}", self.prefix),
            interval_us: self.interval_us,
            tolerance_us: self.tolerance_us,
            want: ask.want,
            floor_us: ask.floor_us,
            charge: false,
        };
        let rx = self.fleet.limits.submit(take);
        match tokio::time::timeout(self.fleet.link.timeout(), rx).await {
            Ok(Ok(g)) => {
                let d = self.apply(l, key, ask.t, ask.want, &g);
                l.count(d);
                d
            }
            _ => {
                if ask.want > 1 {
                    lock(self.shard(key)).entry(key).or_default().leasing = false;
                }
                self.fallback(l, key, l.t(Instant::now()))
            }
        }
    }

    /// Records Redis' answer for `key`, asked at `sent`, and decides.
    fn apply(&self, l: &RateLimiter, key: u64, sent: u64, want: u32, g: &Grant) -> Decision {
        let mut map = lock(self.shard(key));
        let e = map.entry(key).or_default();
        e.floor_us = e.floor_us.max(g.tat_us);
        let ahead = g.ahead_us + u64::from(g.granted) * self.interval_us;
        let retry_us = ahead.saturating_sub(self.tolerance_us);
        // Measured from when the question left, so never later than Redis
        // meant: a refusal remembered here ends no later than Redis' own.
        e.fleet_tat = sent.saturating_add(ahead.saturating_mul(1000));
        if want > 1 {
            e.leasing = false;
        }
        if g.granted == 0 {
            e.refused_until = sent.saturating_add(retry_us.saturating_mul(1000));
            return Decision::Refuse {
                retry_after: Duration::from_micros(retry_us),
            };
        }
        if want > 1 {
            let lease_for = l.rule.per.min(LEASE_FOR);
            e.lease = g.granted - 1;
            e.lease_until = sent.saturating_add(nanos(lease_for));
        }
        if l.rule.nodelay || g.ahead_us == 0 {
            Decision::Admit
        } else {
            Decision::Delay(Duration::from_micros(g.ahead_us))
        }
    }

    /// This member's share of the limit, on the rule's own table, starting
    /// from what Redis last said about the key.
    fn fallback(&self, l: &RateLimiter, key: u64, t: u64) -> Decision {
        let live = u64::from(self.fleet.live());
        let interval = l.interval.saturating_mul(live);
        let burst = (u64::from(l.rule.burst) / live).max(1);
        let tolerance = interval.saturating_mul(burst - 1);
        let seed = {
            let mut map = lock(self.shard(key));
            if map.len() >= self.per_shard && !map.contains_key(&key) {
                self.make_room(l, &mut map, t);
            }
            let e = map.entry(key).or_default();
            // Leased tokens were charged to Redis; the share starts afresh.
            e.lease = 0;
            // The fleet's arrival time as last seen: what it had used then
            // is taken off every member's share alike.
            e.fleet_tat
        };
        let d = l.gcra(key, t, interval, tolerance, seed);
        if !matches!(d, Decision::Refuse { .. }) {
            let mut map = lock(self.shard(key));
            let e = map.entry(key).or_default();
            e.debt = e.debt.saturating_add(1);
        }
        l.count(d);
        l.counters.fallback.fetch_add(1, Ordering::Relaxed);
        d
    }

    /// Forgets entries that hold nothing; if none, any one (counted).
    fn make_room(&self, l: &RateLimiter, map: &mut U64Map<Entry>, t: u64) {
        map.retain(|_, e| !e.idle(t));
        if map.len() >= self.per_shard
            && let Some(&k) = map.keys().next()
        {
            map.remove(&k);
            l.counters.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What was admitted locally and is still outstanding, as charges: the
    /// requests admitted alone, but no more than the local table still
    /// holds against the key (after a long outage most of them have
    /// expired, as they would have in Redis).
    fn drain(&self, l: &RateLimiter, out: &mut Vec<Take>) {
        let t = l.t(Instant::now());
        let live = u64::from(self.fleet.live());
        let interval = l.interval.saturating_mul(live).max(1);
        for shard in self.table.iter() {
            let mut map = lock(shard);
            for (&key, e) in map.iter_mut().filter(|(_, e)| e.debt > 0) {
                let admitted = std::mem::take(&mut e.debt);
                let local = {
                    let s = &l.shards[(key >> 32) as usize & (l.shards.len() - 1)];
                    lock(s).remove(&key).unwrap_or(0)
                };
                let tokens = local
                    .saturating_sub(t)
                    .div_ceil(interval)
                    .min(u64::from(admitted));
                if tokens == 0 {
                    continue;
                }
                out.push(Take {
                    key: format!("{}{key:016x}", self.prefix),
                    interval_us: self.interval_us,
                    tolerance_us: self.tolerance_us,
                    want: u32::try_from(tokens).unwrap_or(u32::MAX),
                    floor_us: e.floor_us,
                    charge: true,
                });
            }
        }
    }
}

impl Debts for RateLimiter {
    fn drain_debts(&self, out: &mut Vec<Take>) {
        if let Some(f) = &self.fleet {
            f.drain(self, out);
        }
    }
}

fn per_us(rule: &RateLimit) -> u64 {
    u64::try_from(rule.per.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
