//! Replies encoded once and replayed: the UDP loop's shortcut past
//! hickory's full decode and encode for the queries that come again and
//! again (the same name and type, no EDNS, no signature).
//!
//! ```text
//! header: a plain query, one question, nothing else ─ no: answer::handle
//!   ─ key: the query less its id (flags, counts, question as sent)
//!   ─ known, for this View and Policy:
//!       fleet record: the record's next turn picks its rotation's reply
//!       rate limit: drop, or slip (truncated, through hickory), or send
//!       send: the stored bytes with the query's id
//!   ─ not yet: answer::handle (hickory), with the turn given; kept if it
//!     answered NOERROR with records, untruncated
//! ```
//!
//! A reply depends on the query's bytes, the View (zones, live sets) and
//! the Policy, and for a rotated fleet record on its turn modulo the
//! members' weights: so each thread keeps, per View and Policy (held, so
//! never confused with a later one at the same address), one reply per
//! question and rotation. A new View (any change of the live set) or
//! Policy (a reload) starts afresh. Weighted and geo answers, EDNS
//! (cookies, client subnet), TSIG, TCP and every error go the full way.
//! What it saves: the message decode, the answer's record building and
//! its encode with name compression: 12,028 instructions a query the full
//! way, 1,018 replayed (bench/dns_callgrind.py; bench/README.md, "DNS
//! instructions per query"). What it costs: a hash of the query's bytes,
//! a copy of the stored reply into the UDP loop's buffer (no allocation)
//! and, per thread, the replies of the questions it has seen.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::answer::{Ctx, Policy, Reply, handle};
use crate::metrics::{self, Outcome};
use crate::rrl::Verdict;
use crate::view::View;
use levee_config::AnswerOrder;

/// Questions remembered per thread; past this, new ones go the full way
/// (a flood of random names must not grow memory).
const MAX_QUESTIONS: usize = 4096;
/// The most rotations of one fleet record kept (the sum of its members'
/// weights); a record with more goes the full way.
const MAX_TURNS: u64 = 64;

/// One question's replies.
enum Known {
    /// Not replayable (weighted or geo answers, an error, a referral).
    Full,
    Replies {
        /// The fleet record whose turn picks the reply: (zone, record).
        fleet: Option<(usize, usize)>,
        /// One per turn modulo the weights (one for a static answer).
        by_turn: Box<[Option<Box<[u8]>>]>,
        /// The metrics row of the question's type.
        t: usize,
    },
}

#[derive(Default)]
struct Replies {
    made_for: Option<(Arc<View>, Arc<Policy>)>,
    known: HashMap<Box<[u8]>, Known>,
}

thread_local! {
    static REPLIES: RefCell<Replies> = RefCell::new(Replies::default());
}

/// Answers a UDP query into `out`, from a stored reply when it can; false
/// when nothing is to be sent. A replayed reply is copied into `out`'s
/// buffer, which the UDP loop keeps: no allocation per query.
pub fn udp_into(
    bytes: &[u8],
    view: &Arc<View>,
    policy: &Arc<Policy>,
    cx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> bool {
    replay(bytes, view, policy, cx, out).unwrap_or_else(|| one(handle(bytes, cx), out))
}

/// [`udp_into`] as a [`Reply`] (tests, the fuzz target).
pub fn udp(bytes: &[u8], view: &Arc<View>, policy: &Arc<Policy>, cx: &Ctx<'_>) -> Reply {
    let mut out = Vec::new();
    if udp_into(bytes, view, policy, cx, &mut out) {
        Reply::One(out)
    } else {
        Reply::Nothing
    }
}

/// `reply` into `out`; false when there is nothing to send (over UDP a
/// reply is one message).
fn one(reply: Reply, out: &mut Vec<u8>) -> bool {
    match reply {
        Reply::One(b) => {
            *out = b;
            true
        }
        Reply::Nothing | Reply::Many(_) => false,
    }
}

/// The query's bytes but its id, when it is a plain query with one
/// question and no other record (no EDNS, no signature).
fn key(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..12)?;
    // QR clear, opcode QUERY; QDCOUNT 1, AN/NS/AR 0.
    (header[2] & 0xf8 == 0 && header[4..12] == [0, 1, 0, 0, 0, 0, 0, 0]).then(|| &bytes[2..])
}

fn replay(
    bytes: &[u8],
    view: &Arc<View>,
    policy: &Arc<Policy>,
    cx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> Option<bool> {
    if cx.tcp {
        return None;
    }
    let key = key(bytes)?;
    REPLIES.with(|cell| {
        let mut r = cell.borrow_mut();
        let same = r
            .made_for
            .as_ref()
            .is_some_and(|(v, p)| Arc::ptr_eq(v, view) && Arc::ptr_eq(p, policy));
        if !same {
            r.known.clear();
            r.made_for = Some((view.clone(), policy.clone()));
        }
        if !r.known.contains_key(key) {
            if r.known.len() >= MAX_QUESTIONS {
                return None;
            }
            let known = classify(bytes, view);
            r.known.insert(key.into(), known);
        }
        let Some(Known::Replies { fleet, by_turn, t }) = r.known.get_mut(key) else {
            return None;
        };
        let turns = by_turn.len() as u64;
        let turn = match *fleet {
            Some((z, f)) => {
                let rec = view.zones.get(z)?.zone.fleet.get(f)?;
                rec.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }
            None => 0,
        };
        let slot = by_turn.get_mut((turn % turns) as usize)?;
        let Some(stored) = slot else {
            // Made the full way, for this turn; kept if it is a plain answer.
            let cx = Ctx {
                turn: Some(turn),
                ..*cx
            };
            let reply = handle(bytes, &cx);
            if let Reply::One(b) = &reply
                && replayable(b)
            {
                *slot = Some(b.as_slice().into());
            }
            return Some(one(reply, out));
        };
        let t = *t;
        if let Some(rrl) = &policy.rrl {
            match rrl.check(cx.peer.ip(), cx.now) {
                Verdict::Send => {}
                Verdict::Drop => {
                    metrics::query(t, Outcome::Dropped);
                    return Some(false);
                }
                Verdict::Slip => {
                    metrics::query(t, Outcome::Slipped);
                    let mut m = Message::from_vec(stored).ok()?;
                    m.set_id(u16::from_be_bytes([bytes[0], bytes[1]]));
                    *out = crate::answer::truncated(m).to_vec().ok()?;
                    return Some(true);
                }
            }
        }
        metrics::query(t, Outcome::NoError);
        out.clear();
        out.extend_from_slice(stored);
        out[..2].copy_from_slice(&bytes[..2]);
        Some(true)
    })
}

/// What kind of question `bytes` asks: how many rotations its answer has,
/// or that it always goes the full way.
fn classify(bytes: &[u8], view: &View) -> Known {
    let Ok(m) = Message::from_vec(bytes) else {
        return Known::Full;
    };
    let Some(q) = m.queries().first() else {
        return Known::Full;
    };
    let qtype = q.query_type();
    if matches!(
        qtype,
        RecordType::AXFR | RecordType::IXFR | RecordType::ANY | RecordType::OPT
    ) {
        return Known::Full;
    }
    let t = metrics::type_index(Some(qtype));
    let name = q.name().to_lowercase();
    let Some((zi, zone)) = view
        .zones
        .iter()
        .enumerate()
        .find(|(_, z)| z.zone.apex.zone_of_case(&name))
    else {
        return Known::Full;
    };
    let fleet = zone
        .zone
        .nodes
        .get(&name)
        .and_then(|n| n.fleet)
        .filter(|_| matches!(qtype, RecordType::A | RecordType::AAAA));
    let Some(fi) = fleet else {
        return Known::Replies {
            fleet: None,
            by_turn: vec![None].into(),
            t,
        };
    };
    let (Some(f), Some(live)) = (zone.zone.fleet.get(fi), zone.live.get(fi)) else {
        return Known::Full;
    };
    if f.config.geo || f.config.order != AnswerOrder::Rotate {
        return Known::Full;
    }
    let pool = if qtype == RecordType::AAAA {
        &live.v6
    } else {
        &live.v4
    };
    let turns: u64 = pool.iter().map(|e| u64::from(e.weight)).sum::<u64>().max(1);
    if turns > MAX_TURNS {
        return Known::Full;
    }
    Known::Replies {
        fleet: Some((zi, fi)),
        by_turn: (0..turns).map(|_| None).collect(),
        t,
    }
}

/// Whether a reply made the full way may be replayed: NOERROR with
/// records, not truncated (what a rate limit's slip or a size cut makes).
fn replayable(b: &[u8]) -> bool {
    Message::from_vec(b).is_ok_and(|m| {
        m.response_code() == ResponseCode::NoError && !m.answers().is_empty() && !m.truncated()
    })
}

#[cfg(test)]
mod tests;
