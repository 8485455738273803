//! The auth negative cache: logins the auth service refused, remembered
//! for the service's `negative_ttl` so a client retrying a wrong password
//! is answered without asking again. Kept across reloads; in a fleet it is
//! also in Redis, `{NAME}:mail:n:HASH` expiring after the TTL, so a refusal
//! on one member is remembered by every member (docs/fleet.md).
//!
//! A login is remembered as a keyed hash of (protocol, user, password, TLS
//! facts): the auth service may answer on any of them. In Redis the hash is
//! keyed alike on every member ([`levee_fleet::Fleet::hasher`]); without a
//! Redis password that key follows from the fleet's name, so set one (the
//! values are hashes of refused passwords, gone after the TTL).
//!
//! Redis is asked only when this member does not know the login already,
//! within the fleet's `timeout`; without an answer the login is not known
//! to be refused, and the auth service decides, as without a fleet.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use levee_fleet::{Fleet, Script};

use crate::auth::Attempt;
use crate::metrics;

/// Most refusals remembered at once; past it expired ones are dropped, then all.
const MAX: usize = 10_000;

/// KEYS: the login's key. Answers its milliseconds left (0: not refused).
const LOOK: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left < 0 then left = 0 end
return {left}
";

/// KEYS: the login's key. ARGV: its TTL in milliseconds.
const REMEMBER: &str = r"
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return {}
";

fn scripts() -> &'static (Script, Script) {
    static SCRIPTS: OnceLock<(Script, Script)> = OnceLock::new();
    SCRIPTS.get_or_init(|| (Script::new(LOOK), Script::new(REMEMBER)))
}

#[derive(Debug, Default)]
pub(crate) struct NegativeCache {
    /// Hashes of refused logins, with when they expire.
    local: Mutex<HashMap<u64, Instant>>,
    hasher: RandomState,
}

/// The parts of an attempt the auth service may answer on, fed to `h`.
fn feed(h: &mut impl Hasher, attempt: &Attempt<'_>) {
    let c = attempt.credentials;
    let (verify, fingerprint) = attempt.ssl.map_or(("", ""), |s| {
        (s.verify.as_str(), s.fingerprint.as_deref().unwrap_or(""))
    });
    for part in [
        attempt.protocol.as_str().as_bytes(),
        &c.user,
        &c.pass,
        verify.as_bytes(),
        fingerprint.as_bytes(),
    ] {
        h.write_u64(part.len() as u64);
        h.write(part);
    }
    h.write_u8(u8::from(attempt.ssl.is_some()));
}

fn redis_key(fleet: &Fleet, attempt: &Attempt<'_>) -> String {
    let mut h = fleet.hasher("mail negative");
    feed(&mut h, attempt);
    format!("{{{}}}:mail:n:{:016x}", fleet.name(), h.finish())
}

impl NegativeCache {
    fn key(&self, attempt: &Attempt<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        feed(&mut h, attempt);
        h.finish()
    }

    /// Whether this login was refused within the TTL, here or (with a
    /// fleet, when `ttl` is set) on another member.
    pub(crate) async fn refused(&self, attempt: &Attempt<'_>, now: Instant, ttl: Duration) -> bool {
        let key = self.key(attempt);
        let known = self
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .is_some_and(|&until| until > now);
        if known || ttl.is_zero() {
            return known;
        }
        let Some(fleet) = levee_fleet::current() else {
            return false;
        };
        if !fleet.is_up() {
            metrics::fleet_fallback(metrics::Fallback::NegativeCache);
            return false;
        }
        let look = fleet
            .run_script(&scripts().0, &[redis_key(&fleet, attempt)], &[])
            .await;
        match look.as_deref() {
            Ok([left, ..]) if *left > 0 => {
                let left = Duration::from_millis(u64::try_from(*left).unwrap_or(0));
                self.remember_here(key, now + left.min(ttl));
                true
            }
            Ok(_) => false,
            Err(_) => {
                metrics::fleet_fallback(metrics::Fallback::NegativeCache);
                false
            }
        }
    }

    /// Remembers a refused login for `ttl`, here and, with a fleet, in
    /// Redis (in the background: the client's answer does not wait).
    pub(crate) fn remember(&self, attempt: &Attempt<'_>, now: Instant, ttl: Duration) {
        self.remember_here(self.key(attempt), now + ttl);
        let Some(fleet) = levee_fleet::current() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !fleet.is_up() {
            return;
        }
        let key = redis_key(&fleet, attempt);
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        runtime.spawn(async move {
            let _ = fleet.run_script(&scripts().1, &[key], &[ms]).await;
        });
    }

    fn remember_here(&self, key: u64, until: Instant) {
        let mut cache = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX {
            let now = Instant::now();
            cache.retain(|_, &mut t| t > now);
            if cache.len() >= MAX {
                cache.clear();
            }
        }
        cache.insert(key, until);
    }
}
