//! Server selection, per request, among the usable servers of a group.
//!
//! - smooth weighted round robin (as nginx does it): every pick adds each
//!   server's weight to its running score, takes the highest score, and
//!   subtracts the total weight from the winner. Over one cycle of
//!   `sum(weights)` picks each server is chosen exactly `weight` times, and
//!   heavy servers are interleaved rather than picked in a burst;
//! - least connections, weighted: fewest requests in flight per weight;
//! - latency: two servers at random, the one with the lower latency EWMA
//!   times requests in flight wins ("power of two choices"); the EWMA
//!   decays with time and the costlier choice is probed now and then, so a
//!   server slow for a moment is not shut out for good;
//! - consistent hashing ([`hash`]) on a request key;
//! - sticky: the server a cookie names, else round robin.
//!
//! When no server is usable (all down or ejected), panic mode balances over
//! every server the operator has not drained or disabled, as Envoy does
//! below its healthy panic threshold: a health verdict that is wrong, or
//! too strict, must not turn into a site-wide 503.
//!
//! Nothing here locks or allocates on the hot path: health and weights are
//! atomic reads, and the round-robin scores and the random generator are
//! per worker thread (each worker honours the weights exactly on its own),
//! so workers never contend on a shared line to choose a server.

pub mod hash;

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering::Relaxed;

use levee_config::Balance;
use tokio::time::Instant;

use crate::{Group, Member, Members};

/// What ties a request to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    None,
    /// The hash of a `hash` upstream's key ([`hash::key`]).
    Key(u64),
    /// The server id a sticky cookie carried, if any.
    Sticky(Option<u64>),
}

/// Per-worker scores of the smooth round robin, by [`Members`] id, most
/// recently used first. Bounded: an evicted entry just restarts its cycle.
const WRR_CACHE: usize = 32;

thread_local! {
    static WRR: RefCell<Vec<(u64, Vec<i64>)>> = const { RefCell::new(Vec::new()) };
    static RNG: Cell<u64> = Cell::new(seed());
    static ROTATE: Cell<usize> = const { Cell::new(0) };
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    hash::mix(t ^ (&local as *const u8 as u64)) | 1
}

fn random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

pub(crate) fn pick(
    group: &Group,
    members: &Members,
    affinity: Affinity,
    tried: &[usize],
    now: Instant,
) -> Option<usize> {
    if let Some(i) = pick_among(group, members, affinity, tried, now, |m| {
        m.state.usable(now)
    }) {
        return Some(i);
    }
    // Nothing usable left for this request. If some server is usable (the
    // request tried it already), the group is fine and the request has had
    // its chances. Only a group with no usable server at all is in panic.
    if group.any_usable(members, now) {
        return None;
    }
    let i = pick_among(group, members, affinity, tried, now, |m| m.state.routable())?;
    panic_pick(group, members, now);
    Some(i)
}

/// Panic mode: counted for `/metrics`, told in the log at most once per
/// [`crate::stats::LOG_EVERY`]. Off the normal path: it runs only when no
/// server is usable.
#[cold]
fn panic_pick(group: &Group, members: &Members, now: Instant) {
    let picks = group.stats.panic.fetch_add(1, Relaxed) + 1;
    if group.stats.panic_log.due(now) {
        let routable = members.list.iter().filter(|m| m.state.routable()).count();
        tracing::warn!(
            upstream = %group.name,
            servers = routable,
            panic_picks = picks,
            "panic mode: no server is usable (down or ejected); sending requests to all of them"
        );
    }
}

/// One balancing pass over the servers `usable` accepts (and the request
/// has not tried), primaries first, then backups.
fn pick_among(
    group: &Group,
    members: &Members,
    affinity: Affinity,
    tried: &[usize],
    now: Instant,
    usable: impl Fn(&Member) -> bool,
) -> Option<usize> {
    let slow_start = group.config.slow_start;
    for backup in [false, true] {
        if backup && !members.has_backups {
            break;
        }
        let ok = |i: usize, m: &Member| m.backup == backup && !tried.contains(&i) && usable(m);
        let weight = |m: &Member| m.state.effective_weight(m.weight, now, slow_start);
        let chosen = match (&group.config.balance, affinity) {
            (Balance::Hash(_), Affinity::Key(h)) => members
                .ring
                .find(h, |i| members.list.get(i).is_some_and(|m| ok(i, m))),
            (Balance::Sticky { .. }, Affinity::Sticky(Some(id))) => members
                .list
                .iter()
                .enumerate()
                .position(|(i, m)| m.cookie == id && ok(i, m))
                .or_else(|| smooth_wrr(members, ok, weight)),
            (Balance::LeastConn, _) => least_conn(members, ok, weight),
            (Balance::Latency, _) => two_choices(members, ok, weight, now),
            _ => smooth_wrr(members, ok, weight),
        };
        if chosen.is_some() {
            return chosen;
        }
    }
    None
}

/// Smooth weighted round robin over the servers `ok` accepts.
pub(crate) fn smooth_wrr(
    members: &Members,
    ok: impl Fn(usize, &Member) -> bool,
    weight: impl Fn(&Member) -> u64,
) -> Option<usize> {
    let n = members.list.len();
    if n == 1 {
        return members.list.first().filter(|m| ok(0, m)).map(|_| 0);
    }
    WRR.with(|cell| {
        let mut cache = cell.borrow_mut();
        match cache.iter().position(|(id, _)| *id == members.id) {
            Some(0) => {}
            Some(p) => {
                let entry = cache.remove(p);
                cache.insert(0, entry);
            }
            None => {
                cache.truncate(WRR_CACHE - 1);
                cache.insert(0, (members.id, vec![0; n]));
            }
        }
        let current = &mut cache.first_mut()?.1;
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, m) in members.list.iter().enumerate() {
            if !ok(i, m) {
                continue;
            }
            let w = i64::try_from(weight(m)).unwrap_or(i64::MAX / 64);
            let c = current.get_mut(i)?;
            *c += w;
            total += w;
            if best.is_none_or(|b| current.get(b) < current.get(i)) {
                best = Some(i);
            }
        }
        if let Some(c) = best.and_then(|b| current.get_mut(b)) {
            *c -= total;
        }
        best
    })
}

/// Fewest requests in flight relative to weight; ties rotate.
fn least_conn(
    members: &Members,
    ok: impl Fn(usize, &Member) -> bool,
    weight: impl Fn(&Member) -> u64,
) -> Option<usize> {
    let n = members.list.len();
    let start = ROTATE.with(|r| {
        let v = r.get().wrapping_add(1);
        r.set(v);
        v
    });
    let mut best: Option<(usize, u64, u64)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let Some(m) = members.list.get(i) else {
            continue;
        };
        if !ok(i, m) {
            continue;
        }
        let (load, w) = (u64::from(m.state.active()) + 1, weight(m));
        let better = match best {
            None => true,
            // load / w < best_load / best_w
            Some((_, bl, bw)) => u128::from(load) * u128::from(bw) < u128::from(bl) * u128::from(w),
        };
        if better {
            best = Some((i, load, w));
        }
    }
    best.map(|(i, _, _)| i)
}

/// One pick in this many goes to the costlier of the two choices when it
/// has nothing in flight (see [`two_choices`]).
pub const PROBE_ONE_IN: u64 = 32;

/// Power of two choices on latency EWMA × requests in flight ÷ weight.
///
/// The cheaper choice wins, except that one pick in [`PROBE_ONE_IN`] goes
/// to the costlier one if it has no request in flight: a server that was
/// slow for a moment gets the samples that show it is fast again, and a
/// server that really is slow gets at most one probe at a time. Together
/// with the estimate's decay ([`crate::ServerState::ewma_us`]) this lets a
/// recovered server back in within seconds.
fn two_choices(
    members: &Members,
    ok: impl Fn(usize, &Member) -> bool,
    weight: impl Fn(&Member) -> u64,
    now: Instant,
) -> Option<usize> {
    let candidates = members
        .list
        .iter()
        .enumerate()
        .filter(|(i, m)| ok(*i, m))
        .count();
    if candidates == 0 {
        return None;
    }
    let r = random();
    let first = (r % candidates as u64) as usize;
    let mut second = first;
    if candidates > 1 {
        second = ((r >> 32) % (candidates as u64 - 1)) as usize;
        if second >= first {
            second += 1;
        }
    }
    let mut a = None;
    let mut b = None;
    for (k, (i, _)) in members
        .list
        .iter()
        .enumerate()
        .filter(|(i, m)| ok(*i, m))
        .enumerate()
    {
        if k == first {
            a = Some(i);
        }
        if k == second {
            b = Some(i);
        }
    }
    let (a, b) = (a?, b?);
    let cost = |i: usize| -> (u128, u128) {
        members.list.get(i).map_or((u128::MAX, 1), |m| {
            let load = u128::from(m.state.ewma_us(now) + 1) * u128::from(m.state.active() + 1);
            (load, u128::from(weight(m)))
        })
    };
    let ((ca, wa), (cb, wb)) = (cost(a), cost(b));
    let (cheaper, costlier) = if ca.saturating_mul(wb) <= cb.saturating_mul(wa) {
        (a, b)
    } else {
        (b, a)
    };
    let probe = costlier != cheaper
        && random().is_multiple_of(PROBE_ONE_IN)
        && members
            .list
            .get(costlier)
            .is_some_and(|m| m.state.active() == 0);
    Some(if probe { costlier } else { cheaper })
}

#[cfg(test)]
mod tests;
