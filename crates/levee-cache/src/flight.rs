//! Request coalescing: concurrent misses for one key make one upstream request.
//!
//! The first miss for a key becomes the [`Lead`]: it fetches the response
//! and, when done, [`Lead::land`]s it. Misses that arrive meanwhile get a
//! [`Waiter`], wait a bounded time for the landing, then look the key up
//! again (served from the stored response) or go to the upstream themselves
//! (the response was not stored, or the wait ran out).
//!
//! A response that turns out uncacheable releases the waiters at once and is
//! remembered for a while (hit-for-miss), so later misses for the key skip
//! the queue and go straight to the upstream, as Varnish does.
//!
//! `tokio::sync::watch` works across runtimes, so the leader and its waiters
//! may run on different worker threads. Time for hit-for-miss is a
//! parameter (seconds since the epoch).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// How a lead's fetch ended, as its waiters learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Pending,
    /// Stored: look the key up again.
    Stored,
    /// Not storable: go to the upstream (and remember, see [`Flights::join`]).
    Uncacheable,
    /// The lead failed or gave up (error, client gone, body over the cap).
    Failed,
}

/// What a miss does.
#[derive(Debug)]
pub enum Join<'a> {
    /// Fetch it, and land it when done.
    Lead(Lead<'a>),
    /// Another request is fetching it: wait for it.
    Wait(Waiter),
    /// Recently uncacheable: go to the upstream without waiting.
    Pass,
}

/// The requests in flight, by key; one per process, shared by all workers.
#[derive(Debug, Default)]
pub struct Flights {
    flying: Mutex<HashMap<Vec<u8>, watch::Receiver<Landing>>>,
    /// Keys found uncacheable, until when (seconds).
    pass_until: Mutex<HashMap<Vec<u8>, u64>>,
}

/// Hit-for-miss entries kept before expired ones are swept.
const SWEEP_AT: usize = 4096;

impl Flights {
    pub fn new() -> Flights {
        Flights::default()
    }

    /// Joins the flight for `key`, or starts it.
    pub fn join(&self, key: &[u8], now: u64) -> Join<'_> {
        if let Ok(pass) = self.pass_until.lock()
            && pass.get(key).is_some_and(|&until| until > now)
        {
            return Join::Pass;
        }
        let Ok(mut flying) = self.flying.lock() else {
            return Join::Pass;
        };
        if let Some(rx) = flying.get(key) {
            return Join::Wait(Waiter(rx.clone()));
        }
        let (tx, rx) = watch::channel(Landing::Pending);
        flying.insert(key.to_vec(), rx);
        Join::Lead(Lead {
            flights: self,
            key: key.to_vec(),
            tx,
        })
    }

    /// A waiter for the flight of `key`, if one is in the air; never leads.
    /// For requests that cannot fetch for others (HEAD, ranges, conditionals)
    /// but can be answered from what the lead stores.
    pub fn wait_for(&self, key: &[u8]) -> Option<Waiter> {
        let flying = self.flying.lock().ok()?;
        flying.get(key).map(|rx| Waiter(rx.clone()))
    }

    /// Requests now in flight (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.flying.lock().map_or(0, |f| f.len())
    }

    fn pass_for(&self, key: &[u8], until: u64, now: u64) {
        if let Ok(mut pass) = self.pass_until.lock() {
            if pass.len() >= SWEEP_AT {
                pass.retain(|_, &mut u| u > now);
            }
            pass.insert(key.to_vec(), until);
        }
    }

    fn clear_pass(&self, key: &[u8]) {
        if let Ok(mut pass) = self.pass_until.lock() {
            pass.remove(key);
        }
    }
}

/// The request that fetches for everyone. Dropping it without landing
/// (an error, a cancelled request) releases the waiters as [`Landing::Failed`].
#[derive(Debug)]
pub struct Lead<'a> {
    flights: &'a Flights,
    key: Vec<u8>,
    tx: watch::Sender<Landing>,
}

impl Lead<'_> {
    /// Ends the flight. An uncacheable response makes misses for the key
    /// skip coalescing for `pass_for` seconds.
    pub fn land(self, landing: Landing, now: u64, pass_for: u64) {
        match landing {
            Landing::Uncacheable => {
                self.flights
                    .pass_for(&self.key, now.saturating_add(pass_for), now)
            }
            Landing::Stored => self.flights.clear_pass(&self.key),
            Landing::Pending | Landing::Failed => {}
        }
        let _ = self.tx.send(landing);
        // Drop removes the key from the map.
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if let Ok(mut flying) = self.flights.flying.lock() {
            flying.remove(&self.key);
        }
        self.tx.send_if_modified(|l| {
            let pending = *l == Landing::Pending;
            if pending {
                *l = Landing::Failed;
            }
            pending
        });
    }
}

/// A miss waiting for a lead.
#[derive(Debug)]
pub struct Waiter(watch::Receiver<Landing>);

impl Waiter {
    /// Waits at most `limit` for the lead; `Pending` when the wait ran out.
    pub async fn wait(mut self, limit: Duration) -> Landing {
        match tokio::time::timeout(limit, self.0.wait_for(|l| *l != Landing::Pending)).await {
            Ok(Ok(landing)) => *landing,
            // The sender is gone without a landing: treat as failed.
            Ok(Err(_)) => Landing::Failed,
            Err(_) => Landing::Pending,
        }
    }
}

#[cfg(test)]
mod tests;
