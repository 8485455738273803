//! The Redis side of fleet-scoped rate limits: one GCRA state per key in
//! Redis, changed only by a Lua script that runs on Redis' own clock, so
//! members whose clocks differ still agree.
//!
//! Requests that must ask Redis are queued ([`Limits::submit`]) from any
//! worker; one task on the fleet thread sends everything queued in one
//! script call, and while that call is out the next batch gathers (group
//! commit: one command per round trip, however many requests). The
//! per-key decisions that need no round trip (a refusal remembered until
//! the key conforms, tokens leased to a busy key, the local fallback) live
//! in `levee-protect` (`rate/fleet.rs`).
//!
//! Keys: `{NAME}:rl:RULE:HASH` holds the key's theoretical arrival time in
//! microseconds of Redis time, expiring once it has passed. `{NAME}` is a
//! Cluster hash tag: one fleet's keys share a slot, so one script may
//! touch many.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use redis::Script;
use tokio::sync::{Notify, oneshot};

use crate::FleetError;
use crate::link::Link;

/// Most items in one script call; a longer queue goes in several.
const MAX_BATCH: usize = 1000;

/// One question to Redis about one key.
#[derive(Debug, Clone)]
pub struct Take {
    /// The full Redis key (`{NAME}:rl:RULE:HASH`).
    pub key: String,
    /// The rule's emission interval and burst tolerance, in microseconds.
    pub interval_us: u64,
    pub tolerance_us: u64,
    /// Tokens wanted: 1, or a lease for a busy key.
    pub want: u32,
    /// The last arrival time this member saw for the key: Redis keeps the
    /// later of it and its own, so a Redis that lost its data (restarted
    /// empty, failed over without persistence) is set back on its feet by
    /// the first member that asks, and a counter never goes backwards.
    pub floor_us: u64,
    /// Charge `want` tokens whatever the state: what a member admitted on
    /// its own while Redis was away.
    pub charge: bool,
}

/// Redis' answer about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Tokens granted, up to `want`.
    pub granted: u32,
    /// How far the key's arrival time was ahead of Redis' now before the
    /// grant, in microseconds (the delay of a smoothed request).
    pub ahead_us: u64,
    /// The key's arrival time after the grant (microseconds, Redis time).
    pub tat_us: u64,
}

/// What a fleet-scoped rule admitted on its own while Redis was away,
/// collected when Redis is back and charged before fleet limits resume.
pub trait Debts: Send + Sync {
    /// Appends a charging [`Take`] per key still in debt, and forgets the
    /// debt.
    fn drain_debts(&self, out: &mut Vec<Take>);
}

struct Waiting {
    take: Take,
    reply: oneshot::Sender<Grant>,
}

/// The queue of questions for Redis, shared by every worker.
pub struct Limits {
    queue: Mutex<Vec<Waiting>>,
    wake: Notify,
    debts: Mutex<Vec<Weak<dyn Debts>>>,
    script: Script,
    /// Script calls made for rate limits (each one a Redis command).
    pub calls: AtomicU64,
    /// Items (questions about a key) those calls carried.
    pub items: AtomicU64,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("calls", &self.calls)
            .field("items", &self.items)
            .finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            queue: Mutex::new(Vec::new()),
            wake: Notify::new(),
            debts: Mutex::new(Vec::new()),
            script: Script::new(GCRA),
            calls: AtomicU64::new(0),
            items: AtomicU64::new(0),
        }
    }
}

/// GCRA over many keys in one call, on Redis' clock (`TIME`). Per key the
/// arguments are interval, tolerance, want, floor, charge; the answer is
/// granted, ahead, tat.
///
/// A key's value is `TAT`, or `TAT CHARGED SINCE` while members are
/// charging what they admitted alone: a charge starts from the later of
/// the stored time and the charging member's floor plus everything charged
/// in the last 10 s. So however the members' restores interleave, the key
/// ends at the latest floor plus all charges (docs/fleet.md, "Resuming").
///
/// Numbers are written with `%.0f` because Lua's default formatting keeps
/// 14 digits and a time in microseconds has 16.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local b = (i - 1) * 5
  local interval = tonumber(ARGV[b + 1])
  local tolerance = tonumber(ARGV[b + 2])
  local want = tonumber(ARGV[b + 3])
  local floor = tonumber(ARGV[b + 4])
  local charge = ARGV[b + 5] == '1'
  local stored, charged, since = 0, 0, 0
  local v = redis.call('GET', key)
  if v then
    local a, c, s = string.match(v, '^(%d+) ?(%d*) ?(%d*)$')
    stored = tonumber(a) or 0
    charged = tonumber(c) or 0
    since = tonumber(s) or 0
  end
  if now - since > 10000000 then
    charged = 0
    since = now
  end
  local base = floor
  if charge then base = floor + charged end
  local tat = stored
  if base > tat then tat = base end
  if tat < now then tat = now end
  local ahead = tat - now
  local n = 0
  if charge then
    n = want
    charged = charged + want * interval
  elseif ahead <= tolerance then
    n = math.floor((tolerance - ahead) / interval) + 1
    if n > want then n = want end
  end
  tat = tat + n * interval
  if n > 0 or tat > stored then
    local text = string.format('%.0f', tat)
    if charged > 0 then
      text = string.format('%.0f %.0f %.0f', tat, charged, since)
    end
    redis.call('SET', key, text, 'PX', math.floor((tat - now) / 1000) + 11000)
  end
  out[#out + 1] = n
  out[#out + 1] = ahead
  out[#out + 1] = tat
end
return out
";

impl Limits {
    /// Queues `take`; the answer comes on the returned channel, or the
    /// channel closes when Redis could not be asked. The caller bounds its
    /// wait with the fleet's timeout.
    pub fn submit(&self, take: Take) -> oneshot::Receiver<Grant> {
        let (reply, rx) = oneshot::channel();
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.push(Waiting { take, reply });
            q.len() == 1
        };
        // Only the first of a batch wakes the fleet thread: the others are
        // taken with it.
        if was_empty {
            self.wake.notify_one();
        }
        rx
    }

    /// Registers a rule whose local admissions are charged after an outage.
    pub fn register(&self, debts: Weak<dyn Debts>) {
        let mut d = self.debts.lock().unwrap_or_else(|p| p.into_inner());
        d.retain(|w| w.strong_count() > 0);
        d.push(debts);
    }

    /// Sends queued questions until the fleet stops (the fleet thread).
    pub(crate) async fn serve(self: Arc<Self>, link: Arc<Link>) {
        loop {
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            if !link.health.is_up() {
                // Dropping the senders answers every waiter: decide locally.
                continue;
            }
            // A question whose request gave up waiting was decided locally:
            // asking now would charge Redis for it a second time.
            let batch: Vec<Waiting> = batch.into_iter().filter(|w| !w.reply.is_closed()).collect();
            for chunk in chunks(batch) {
                let takes: Vec<&Take> = chunk.iter().map(|w| &w.take).collect();
                if let Ok(grants) = self.ask(&link, &takes, false).await {
                    for (w, g) in chunk.into_iter().zip(grants) {
                        let _ = w.reply.send(g);
                    }
                }
            }
        }
    }

    /// Charges every registered rule's local debts (after a reconnect,
    /// before fleet limits resume).
    pub(crate) async fn restore(&self, link: &Link) -> Result<usize, FleetError> {
        let mut takes = Vec::new();
        let sources: Vec<_> = self
            .debts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for s in sources {
            s.drain_debts(&mut takes);
        }
        let n = takes.len();
        for chunk in takes.chunks(MAX_BATCH) {
            let refs: Vec<&Take> = chunk.iter().collect();
            self.ask(link, &refs, true).await?;
        }
        Ok(n)
    }

    async fn ask(
        &self,
        link: &Link,
        takes: &[&Take],
        patient: bool,
    ) -> Result<Vec<Grant>, FleetError> {
        let mut call = self.script.prepare_invoke();
        for t in takes {
            call.key(&t.key)
                .arg(t.interval_us)
                .arg(t.tolerance_us)
                .arg(t.want)
                .arg(t.floor_us)
                .arg(u8::from(t.charge));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(takes.len() as u64, Ordering::Relaxed);
        let limit = if patient {
            link.timeout().max(std::time::Duration::from_secs(1))
        } else {
            link.timeout()
        };
        let flat: Vec<u64> = link
            .run_within(limit, |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        if flat.len() != takes.len() * 3 {
            return Err(FleetError::Protocol("the rate-limit script answered short"));
        }
        Ok(flat
            .chunks_exact(3)
            .map(|c| Grant {
                granted: u32::try_from(c[0]).unwrap_or(u32::MAX),
                ahead_us: c[1],
                tat_us: c[2],
            })
            .collect())
    }
}

fn chunks(mut batch: Vec<Waiting>) -> Vec<Vec<Waiting>> {
    let mut out = Vec::with_capacity(batch.len() / MAX_BATCH + 1);
    while batch.len() > MAX_BATCH {
        let rest = batch.split_off(MAX_BATCH);
        out.push(batch);
        batch = rest;
    }
    out.push(batch);
    out
}
