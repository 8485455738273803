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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use levee_config::RateLimit;

use crate::key::KeySpec;
use crate::metrics::{self, RuleCounters};
use crate::shard::{U64Map, lock};

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
            top: metrics::rule_top(&rule.name),
        }
    }

    /// Decides for the request with `key` arriving at `now`, and counts it.
    pub fn check(&self, key: u64, now: Instant) -> Decision {
        let t = nanos(now.saturating_duration_since(self.epoch));
        let shard = &self.shards[(key >> 32) as usize & (self.shards.len() - 1)];
        let decision = {
            let mut map = lock(shard);
            let tat = map.get(&key).copied().unwrap_or(t).max(t);
            let ahead = tat - t;
            if ahead > self.tolerance {
                Decision::Refuse {
                    retry_after: Duration::from_nanos(ahead - self.tolerance),
                }
            } else {
                if map.len() >= self.per_shard && !map.contains_key(&key) {
                    self.make_room(&mut map, t);
                }
                map.insert(key, tat.saturating_add(self.interval));
                if self.rule.nodelay || ahead == 0 {
                    Decision::Admit
                } else {
                    Decision::Delay(Duration::from_nanos(ahead))
                }
            }
        };
        let c = &self.counters;
        let counter = match decision {
            Decision::Admit => &c.admitted,
            Decision::Delay(_) => &c.delayed,
            Decision::Refuse { .. } if self.rule.dry_run => &c.dry_run,
            Decision::Refuse { .. } => &c.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        decision
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
/// last call keeps its limiter, keys and all, so a reload does not hand
/// every client a fresh allowance.
pub fn limiters(rules: &[RateLimit]) -> HashMap<String, Arc<RateLimiter>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Weak<RateLimiter>>>> = OnceLock::new();
    let mut live = lock(LIVE.get_or_init(Mutex::default));
    live.retain(|_, l| l.strong_count() > 0);
    let mut out = HashMap::new();
    for rule in rules {
        let limiter = match live.get(&rule.name).and_then(Weak::upgrade) {
            Some(l) if l.rule == *rule => l,
            _ => {
                let l = Arc::new(RateLimiter::new(rule, Instant::now()));
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
