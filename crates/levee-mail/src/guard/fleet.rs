//! The guard's counts in the fleet's Redis ([`Shared`]), so they hold across
//! every member (docs/fleet.md, "Shared mail defences"). The rules are
//! [`Local`]'s, written as two Lua scripts that Redis runs one at a time:
//! `RESERVE` checks and reserves in one step, `SETTLE` ends a reservation,
//! so 40 parallel guesses spread over three members against a limit of 5
//! still let exactly 5 through.
//!
//! Per counter (the pair, the user, the address; hashed alike on every
//! member, [`levee_fleet::Fleet::hasher`]):
//!
//! - `{NAME}:mail:f:HASH`, failures, expiring `window` after the first;
//! - `{NAME}:mail:r:HASH`, attempts reserved and not settled, a sorted set
//!   of reservation ids scored by when each lapses: a member that stops
//!   mid-attempt leaks nothing beyond [`HOLD`];
//! - `{NAME}:mail:t:HASH`, the next turn of a user's slow lane.
//!
//! Times are Redis' (`TIME`), so members' clocks need not agree.
//!
//! When Redis does not answer within the fleet's `timeout`, or is down,
//! an attempt is decided by this member's [`Local`] ledger with its share
//! of the limits (`limit / live members`, at least 1), as fleet-scoped rate
//! limits do; the failures counted meanwhile are charged to Redis when it
//! is back, before shared decisions resume ([`levee_fleet::Owed`], as the
//! rate limits' debts).

use std::collections::HashMap;
use std::hash::{Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use levee_fleet::{Call, Fleet, Owed, Script};

use super::{Admission, Keys, Ledger, Local, MAX_DELAY, MAX_KEYS, Outcome, Rules, SLOW_INTERVAL};
use crate::metrics;

/// How long a reservation holds its place if its member never settles it
/// (it stopped mid-attempt, or its answer came after the timeout): longer
/// than an auth request and a backend login take.
pub(super) const HOLD: Duration = Duration::from_secs(60);

/// KEYS: pair failures, pair reservations, user failures, user
/// reservations, user turn, address failures. ARGV: pair limit, user
/// ceiling, reservation id, hold, slow interval, longest delay (ms).
/// Answers `{kind, address failures, wait ms}`: kind 0 blocked, 1 ask,
/// 2 busy.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pair_limit = tonumber(ARGV[1])
local ceiling = tonumber(ARGV[2])
local hold = tonumber(ARGV[4])
local slow = tonumber(ARGV[5])
local max_delay = tonumber(ARGV[6])
local function load(failures, reserved)
  redis.call('ZREMRANGEBYSCORE', reserved, '-inf', now)
  return (tonumber(redis.call('GET', failures)) or 0) + redis.call('ZCARD', reserved)
end
local address = tonumber(redis.call('GET', KEYS[6])) or 0
if pair_limit > 0 and load(KEYS[1], KEYS[2]) >= pair_limit then
  return {0, address, 0}
end
local wait = 0
if ceiling > 0 and load(KEYS[3], KEYS[4]) >= ceiling then
  local turn = tonumber(redis.call('GET', KEYS[5])) or now
  if turn < now then turn = now end
  if turn - now > max_delay then
    return {2, address, 0}
  end
  redis.call('SET', KEYS[5], string.format('%.0f', turn + slow), 'PX', turn + slow - now)
  wait = turn - now
end
for _, k in ipairs({KEYS[2], KEYS[4]}) do
  redis.call('ZADD', k, now + wait + hold, ARGV[3])
  if redis.call('PTTL', k) < wait + hold then
    redis.call('PEXPIRE', k, wait + hold)
  end
end
return {1, address, wait}
";

/// KEYS: those of `RESERVE`. ARGV: reservation id, outcome (0 undecided,
/// 1 failed, 2 succeeded), window (ms).
const SETTLE: &str = r"
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[2] == '1' then
  for _, k in ipairs({KEYS[1], KEYS[3], KEYS[6]}) do
    if redis.call('INCR', k) == 1 then
      redis.call('PEXPIRE', k, ARGV[3])
    end
  end
elseif ARGV[2] == '2' then
  redis.call('DEL', KEYS[1])
end
return {}
";

/// What was counted alone while Redis was away. KEYS: failure counters.
/// ARGV per key: forget first (1: a right password), failures to add, ms
/// left of their window.
const CHARGE: &str = r"
for i, k in ipairs(KEYS) do
  local b = (i - 1) * 3
  if ARGV[b + 1] == '1' then
    redis.call('DEL', k)
  end
  local n = tonumber(ARGV[b + 2])
  if n > 0 then
    redis.call('INCRBY', k, n)
    if redis.call('PTTL', k) < 0 then
      redis.call('PEXPIRE', k, tonumber(ARGV[b + 3]))
    end
  end
end
return {}
";

struct Scripts {
    reserve: Script,
    settle: Script,
    charge: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        reserve: Script::new(RESERVE),
        settle: Script::new(SETTLE),
        charge: Script::new(CHARGE),
    })
}

/// Where a reservation was made, so it is settled there.
#[derive(Debug)]
pub enum Hold {
    /// In this process: no fleet, or Redis did not answer.
    Local,
    Shared {
        fleet: Arc<Fleet>,
        id: i64,
    },
}

/// Failures one counter took alone while Redis was away.
#[derive(Debug, Clone, Copy)]
struct Debt {
    /// A right password reset the pair meanwhile: forget Redis' count.
    reset: bool,
    failures: u32,
    since: Instant,
    window: Duration,
}

/// Failures counted alone while Redis was away, by counter, until Redis
/// takes them.
#[derive(Debug, Default)]
struct Debts(Mutex<HashMap<u64, Debt>>);

impl Debts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Debt>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers what was counted alone, to charge it to Redis later.
    fn owe(&self, keys: Keys, outcome: Outcome, rules: Rules, now: Instant) {
        let mut d = self.lock();
        if d.len() >= MAX_KEYS {
            d.retain(|_, debt| now.duration_since(debt.since) < debt.window);
            if d.len() >= MAX_KEYS {
                return;
            }
        }
        let fresh = Debt {
            reset: false,
            failures: 0,
            since: now,
            window: rules.window,
        };
        match outcome {
            Outcome::Failed => {
                for key in [keys.pair, keys.user, keys.address] {
                    let debt = d.entry(key).or_insert(fresh);
                    if now.duration_since(debt.since) >= debt.window {
                        *debt = Debt {
                            reset: debt.reset,
                            ..fresh
                        };
                    }
                    debt.failures = debt.failures.saturating_add(1);
                }
            }
            Outcome::Succeeded => {
                d.insert(
                    keys.pair,
                    Debt {
                        reset: true,
                        ..fresh
                    },
                );
            }
            Outcome::Undecided => {}
        }
    }
}

impl Owed for Debts {
    fn take(&self, fleet: &Fleet) -> Option<Call> {
        let owed: Vec<(u64, Debt)> = {
            let mut d = self.lock();
            if d.is_empty() {
                return None;
            }
            d.drain().collect()
        };
        let now = Instant::now();
        let mut keys = Vec::with_capacity(owed.len());
        let mut args = Vec::with_capacity(owed.len() * 3);
        for (key, debt) in owed {
            let left = debt.window.saturating_sub(now.duration_since(debt.since));
            let failures = if left.is_zero() { 0 } else { debt.failures };
            keys.push(name(fleet, 'f', key));
            args.extend([i64::from(debt.reset), i64::from(failures), ms(left).max(1)]);
        }
        Some(Call {
            script: &scripts().charge,
            keys,
            args,
        })
    }

    /// Owed again, read back from the call: the counter from its key's
    /// hash, what is left of its window from its argument.
    fn unpaid(&self, call: Call) {
        let now = Instant::now();
        let mut d = self.lock();
        for (key, a) in call.keys.iter().zip(call.args.chunks_exact(3)) {
            let hash = key
                .rsplit(':')
                .next()
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            let Some(hash) = hash else { continue };
            d.entry(hash).or_insert(Debt {
                reset: a[0] == 1,
                failures: u32::try_from(a[1]).unwrap_or(0),
                since: now,
                window: Duration::from_millis(u64::try_from(a[2]).unwrap_or(0)),
            });
        }
    }
}

/// The guard's ledger in a fleet: Redis while it answers, else this
/// member's [`Local`] ledger with its share of the limits. Without
/// `[fleet]` it is the local ledger and nothing else.
#[derive(Debug)]
pub struct Shared {
    local: Arc<Local>,
    debts: Arc<Debts>,
    next_id: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        // Ids only need to differ between the members' live reservations:
        // a random start per process.
        let mut seed = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        let debts = Arc::new(Debts::default());
        let owed: Arc<dyn Owed> = debts.clone();
        levee_fleet::register_owed(Arc::downgrade(&owed));
        Shared {
            local: Arc::default(),
            debts,
            next_id: AtomicU64::new(u64::from_le_bytes(seed) >> 2),
        }
    }
}

/// A counter's Redis key: `{NAME}:mail:KIND:HASH`.
fn name(fleet: &Fleet, kind: char, key: u64) -> String {
    format!("{{{}}}:mail:{kind}:{key:016x}", fleet.name())
}

/// An attempt's keys, as `RESERVE` and `SETTLE` take them.
fn names(fleet: &Fleet, keys: Keys) -> [String; 6] {
    [
        name(fleet, 'f', keys.pair),
        name(fleet, 'r', keys.pair),
        name(fleet, 'f', keys.user),
        name(fleet, 'r', keys.user),
        name(fleet, 't', keys.user),
        name(fleet, 'f', keys.address),
    ]
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `rules` for one member of `live`: each limit divided, at least 1.
fn share(rules: Rules, live: u32) -> Rules {
    let part = |n: u32| if n == 0 { 0 } else { (n / live.max(1)).max(1) };
    Rules {
        pair_limit: part(rules.pair_limit),
        user_ceiling: part(rules.user_ceiling),
        window: rules.window,
    }
}

impl Shared {
    /// Decides alone, on this member's share.
    fn fallback(&self, fleet: &Fleet, keys: Keys, rules: Rules, now: Instant) -> (Admission, Hold) {
        metrics::fleet_fallback(metrics::Fallback::Guard);
        let rules = share(rules, fleet.live());
        (self.local.reserve_now(keys, rules, now), Hold::Local)
    }

    /// Sends what was counted alone to Redis before deciding with it (in
    /// case this member decides before the fleet thread charged it).
    async fn charge(&self, fleet: &Fleet) -> bool {
        let Some(call) = self.debts.take(fleet) else {
            return true;
        };
        if fleet
            .run_script(call.script, &call.keys, &call.args)
            .await
            .is_ok()
        {
            return true;
        }
        self.debts.unpaid(call);
        false
    }
}

impl Ledger for Shared {
    type Hold = Hold;

    fn keys(&self, hasher: &RandomState, ip: IpAddr, user: &[u8]) -> Keys {
        let Some(fleet) = levee_fleet::current() else {
            return super::local_keys(hasher, ip, user);
        };
        let base = fleet.hasher("mail guard");
        let ip = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let hash = |tag: u8, parts: &[&[u8]]| {
            let mut h = base;
            h.write_u8(tag);
            for p in parts {
                h.write_u64(p.len() as u64);
                h.write(p);
            }
            h.finish()
        };
        Keys {
            pair: hash(2, &[user, &ip]),
            user: hash(1, &[user]),
            address: hash(0, &[&ip]),
        }
    }

    async fn reserve(&self, keys: Keys, rules: Rules, now: Instant) -> (Admission, Hold) {
        let Some(fleet) = levee_fleet::current() else {
            return (self.local.reserve_now(keys, rules, now), Hold::Local);
        };
        if !fleet.is_up() || !self.charge(&fleet).await {
            return self.fallback(&fleet, keys, rules, now);
        }
        // Below 2^62 from a random start: never negative, never reused.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as i64;
        let names = names(&fleet, keys);
        let args = [
            i64::from(rules.pair_limit),
            i64::from(rules.user_ceiling),
            id,
            ms(HOLD),
            ms(SLOW_INTERVAL),
            ms(MAX_DELAY),
        ];
        let answer = match fleet.run_script(&scripts().reserve, &names, &args).await {
            Ok(v) => <[i64; 3]>::try_from(v.as_slice()).ok(),
            Err(_) => None,
        };
        let Some([kind, address, wait]) = answer else {
            return self.fallback(&fleet, keys, rules, now);
        };
        let address_failures = u32::try_from(address).unwrap_or(u32::MAX);
        let admission = match kind {
            0 => Admission::Blocked { address_failures },
            2 => Admission::Busy,
            _ => Admission::Ask {
                wait: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
                address_failures,
            },
        };
        (admission, Hold::Shared { fleet, id })
    }

    fn settle(&self, keys: Keys, hold: &Hold, outcome: Outcome, rules: Rules, now: Instant) {
        let (fleet, id) = match hold {
            Hold::Local => {
                self.local.settle_now(keys, outcome, rules, now);
                if levee_fleet::current().is_some() {
                    self.debts.owe(keys, outcome, rules, now);
                }
                return;
            }
            Hold::Shared { fleet, id } => (fleet.clone(), *id),
        };
        // Never waits (a ticket settles as it drops): the script runs in
        // the background. Outside a runtime (levee exiting) the
        // reservation lapses after HOLD.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let names = names(&fleet, keys);
        let code = match outcome {
            Outcome::Undecided => 0,
            Outcome::Failed => 1,
            Outcome::Succeeded => 2,
        };
        let (local, debts) = (self.local.clone(), self.debts.clone());
        runtime.spawn(async move {
            let args = [id, code, ms(rules.window)];
            if fleet
                .run_script(&scripts().settle, &names, &args)
                .await
                .is_err()
            {
                // Not counted in Redis: counted here, and charged there
                // when it answers (the reservation lapses on its own).
                let now = Instant::now();
                local.settle_now(keys, outcome, rules, now);
                debts.owe(keys, outcome, rules, now);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_share_of_the_limits() {
        let rules = Rules {
            pair_limit: 5,
            user_ceiling: 100,
            window: Duration::from_secs(60),
        };
        let s = share(rules, 3);
        assert_eq!((s.pair_limit, s.user_ceiling), (1, 33));
        let s = share(rules, 1);
        assert_eq!((s.pair_limit, s.user_ceiling), (5, 100));
        let off = Rules {
            pair_limit: 0,
            user_ceiling: 0,
            ..rules
        };
        assert_eq!(share(off, 3).pair_limit, 0, "no limit stays no limit");
        assert_eq!(share(rules, 10).pair_limit, 1, "at least one");
    }

    #[test]
    fn debts_add_failures_and_a_right_password_resets_the_pair() {
        let debts = Debts::default();
        let keys = Keys {
            pair: 1,
            user: 2,
            address: 3,
        };
        let rules = Rules {
            pair_limit: 5,
            user_ceiling: 0,
            window: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        debts.owe(keys, Outcome::Failed, rules, t0);
        debts.owe(keys, Outcome::Failed, rules, t0);
        debts.owe(keys, Outcome::Undecided, rules, t0);
        let d = debts.lock().clone();
        assert_eq!([1, 2, 3].map(|k| d[&k].failures), [2, 2, 2], "each counter");
        debts.owe(keys, Outcome::Succeeded, rules, t0);
        let d = debts.lock().clone();
        assert!(d[&1].reset && d[&1].failures == 0);
        assert_eq!(d[&2].failures, 2, "the user's count stays");
        // A failure after the window starts a new count.
        debts.owe(keys, Outcome::Failed, rules, t0 + Duration::from_secs(61));
        let d = debts.lock().clone();
        assert_eq!(d[&2].failures, 1);
    }

    #[test]
    fn a_charge_redis_did_not_run_is_owed_again() {
        let debts = Debts::default();
        debts.unpaid(Call {
            script: &scripts().charge,
            keys: vec!["{t}:mail:f:000000000000002a".into(), "garbage".into()],
            args: vec![1, 3, 60_000, 0, 1, 10],
        });
        let d = debts.lock().clone();
        assert_eq!(d.len(), 1, "{d:?}");
        let debt = d[&42];
        assert!(debt.reset);
        assert_eq!(debt.failures, 3);
        assert_eq!(debt.window, Duration::from_secs(60));
    }
}
