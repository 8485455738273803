//! Request rate limits: the generic cell rate algorithm (GCRA), the
//! arithmetic form of a token bucket with one timestamp per key.
//!
//! A rule admits `requests` per `per`, so one request every `T = per /
//! requests`; `burst` requests may come at once after a rest. Each key keeps
//! its theoretical arrival time `tat`. A request at `t` is admitted when
//! `max(tat, t) - t <= (burst - 1) * T`, and then `tat = max(tat, t) + T`.
//! Refusing changes nothing, so a refused flood does not push the key's
//! allowance further away. With `nodelay = false` an admitted request is
//! held until its slot, `max(tat, t) - t`, which spaces requests at the
//! rate and queues at most `burst` of them.
//!
//! A key whose `tat` has passed behaves exactly like a key never seen, so
//! forgetting it is free: that is what happens first when a shard is full.
//! Only when every key in the shard is active is the one nearest to rest
//! forgotten (counted in `evicted`).
//!
//! A rule with `scope = "fleet"` keeps the same arithmetic in Redis, shared
//! by every member ([`fleet`]); this table is then its local fallback.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use levee_config::{RateLimit, Scope};

use crate::key::{KeySpec, Request};
use crate::metrics::{self, RuleCounters};
use crate::shard::{U64Map, lock};

mod fleet;

/// Shards per rule: enough that workers rarely meet on one lock, few enough
/// that a small `max_keys` still spreads.
const SHARDS: usize = 64;

/// What a rule says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admit,
    /// Admit after waiting this long (`nodelay = false`).
    Delay(Duration),
    /// Over the limit; the key conforms again after `retry_after`.
    Refuse {
        retry_after: Duration,
    },
}

/// One `[rate_limit.NAME]` rule and its key table, shared by every worker.
#[derive(Debug)]
pub struct RateLimiter {
    pub rule: RateLimit,
    pub key: KeySpec,
    interval: u64,
    tolerance: u64,
    epoch: Instant,
    shards: Box<[Mutex<U64Map<u64>>]>,
    per_shard: usize,
    pub counters: Arc<RuleCounters>,
    /// Set for a fleet-scoped rule while the fleet runs.
    fleet: Option<fleet::FleetLimit>,
    /// The most-refused keys by name (`crate::top`).
    pub top: Arc<crate::top::TopKeys>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimiter {
    /// A limiter for `rule`, with time counted from `epoch`.
    pub fn new(rule: &RateLimit, epoch: Instant) -> RateLimiter {
        let interval = (nanos(rule.per) / u64::from(rule.requests.max(1))).max(1);
        let most = SHARDS.min(rule.max_keys.max(1) as usize);
        let shards = if most.is_power_of_two() {
            most
        } else {
            most.next_power_of_two() / 2
        };
        RateLimiter {
            rule: rule.clone(),
            key: KeySpec::new(&rule.key),
            interval,
            tolerance: interval.saturating_mul(u64::from(rule.burst.max(1) - 1)),
            epoch,
            shards: (0..shards).map(|_| Mutex::new(U64Map::default())).collect(),
            per_shard: (rule.max_keys.max(1) as usize).div_ceil(shards),
            counters: metrics::rule_counters(&rule.name),
            fleet: None,
            top: metrics::rule_top(&rule.name),
        }
    }

    /// The request's key, or `None` when the rule does not apply to it.
    /// A fleet-scoped rule hashes with the fleet's key, the same on every
    /// member.
    pub fn key_of(&self, req: &impl Request) -> Result<Option<u64>, crate::key::KeyError> {
        match &self.fleet {
            None => self.key.key(req),
            Some(f) => self.key.key_with(req, f.hasher()),
        }
    }

    /// Decides for the request with `key` arriving at `now`, and counts
    /// it. A fleet-scoped rule may wait for Redis, at most the fleet's
    /// `timeout`; a local rule never waits.
    pub async fn decide(&self, key: u64, now: Instant) -> Decision {
        match &self.fleet {
            None => self.check(key, now),
            Some(f) => match f.check_here(self, key, now) {
                Ok(d) => d,
                // Boxed: the wait is rare next to the request's life, and
                // its timer would otherwise widen every connection's task.
                Err(ask) => Box::pin(f.ask(self, key, ask)).await,
            },
        }
    }

    /// Decides for the request with `key` arriving at `now` on this
    /// process's table alone, and counts it.
    pub fn check(&self, key: u64, now: Instant) -> Decision {
        let decision = self.gcra(key, self.t(now), self.interval, self.tolerance, 0);
        self.count(decision);
        decision
    }

    /// Nanoseconds since the limiter's epoch.
    fn t(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    /// One GCRA step on the local table with `interval` and `tolerance`;
    /// a key is taken to be at least `seed` ahead (the fleet's state when
    /// falling back, 0 otherwise).
    fn gcra(&self, key: u64, t: u64, interval: u64, tolerance: u64, seed: u64) -> Decision {
        let shard = &self.shards[(key >> 32) as usize & (self.shards.len() - 1)];
        let mut map = lock(shard);
        let tat = map.get(&key).copied().unwrap_or(t).max(t).max(seed);
        let ahead = tat - t;
        if ahead > tolerance {
            Decision::Refuse {
                retry_after: Duration::from_nanos(ahead - tolerance),
            }
        } else {
            if map.len() >= self.per_shard && !map.contains_key(&key) {
                self.make_room(&mut map, t);
            }
            map.insert(key, tat.saturating_add(interval));
            if self.rule.nodelay || ahead == 0 {
                Decision::Admit
            } else {
                Decision::Delay(Duration::from_nanos(ahead))
            }
        }
    }

    fn count(&self, decision: Decision) {
        let c = &self.counters;
        let counter = match decision {
            Decision::Admit => &c.admitted,
            Decision::Delay(_) => &c.delayed,
            Decision::Refuse { .. } if self.rule.dry_run => &c.dry_run,
            Decision::Refuse { .. } => &c.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets keys at rest; if none is, the key closest to rest.
    fn make_room(&self, map: &mut U64Map<u64>, t: u64) {
        map.retain(|_, tat| *tat > t);
        if map.len() >= self.per_shard
            && let Some((&oldest, _)) = map.iter().min_by_key(|(_, tat)| **tat)
        {
            map.remove(&oldest);
            self.counters.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Keys remembered now, all shards together.
    pub fn keys(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// The limiters for `rules`, by name. A rule that is unchanged since the
/// last call (and, if fleet-scoped, still on the same running fleet) keeps
/// its limiter, keys and all, so a reload does not hand every client a
/// fresh allowance.
pub fn limiters(rules: &[RateLimit]) -> HashMap<String, Arc<RateLimiter>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Weak<RateLimiter>>>> = OnceLock::new();
    let mut live = lock(LIVE.get_or_init(Mutex::default));
    live.retain(|_, l| l.strong_count() > 0);
    let running = levee_fleet::current();
    let mut out = HashMap::new();
    for rule in rules {
        let fleet = running.as_ref().filter(|_| rule.scope == Scope::Fleet);
        let limiter = match live.get(&rule.name).and_then(Weak::upgrade) {
            Some(l) if l.rule == *rule && fleet::same(&l.fleet, fleet) => l,
            _ => {
                let mut l = RateLimiter::new(rule, Instant::now());
                l.fleet = fleet.map(|f| fleet::FleetLimit::new(f.clone(), rule));
                let l = Arc::new(l);
                if let Some(f) = fleet {
                    let debts: Weak<dyn levee_fleet::Debts> = Arc::downgrade(&l) as _;
                    f.limits.register(debts);
                }
                live.insert(rule.name.clone(), Arc::downgrade(&l));
                l
            }
        };
        out.insert(rule.name.clone(), limiter);
    }
    out
}

#[cfg(test)]
mod tests;
