//! Replies encoded once and replayed: the UDP loop's shortcut past
//! hickory's full decode and encode for the queries that come again and
//! again (the same name and type, with or without EDNS, no signature).
//!
//! ```text
//! read (wire.rs): one question, at most an OPT (version 0, no option but
//!   a COOKIE) ─ no: answer::handle
//!   ─ COOKIE: malformed, or a server cookie not levee's or stale ─ the full way
//!   ─ key: the query less its id (flags, counts, question as sent), and
//!     the OPT's TTL field (extended RCODE, version, DO)
//!   ─ known, for this View and Policy:
//!       fleet record: the record's next turn picks its rotation's reply
//!       larger than the client offers (with the cookie): the full way
//!         (truncated there)
//!       rate limit (unless a valid server cookie): drop, or slip
//!         (truncated, through hickory), or send
//!       send: the stored bytes with the query's id, and the COOKIE option
//!         (the client cookie, a server cookie made for this client now)
//!   ─ not yet: answer::handle (hickory), with the turn given; kept, less
//!     its COOKIE option, if it answered NOERROR with records, untruncated
//! ```
//!
//! A reply depends on the query's bytes, the View (zones, live sets) and
//! the Policy, and for a rotated fleet record on its turn modulo the
//! members' weights: so each thread keeps, per View and Policy (held, so
//! never confused with a later one at the same address), one reply per
//! question and rotation. A new View (any change of the live set) or
//! Policy (a reload) starts afresh. Of an EDNS query's OPT record the
//! reply depends on the version and flags (keyed; DO is among them); the
//! size offered decides only whether the reply fits, so it is compared,
//! not keyed; the COOKIE option's answer depends on the client's address
//! and the time, so it is written per query with the full path's inputs
//! (`cookie::Cookies::answer` of the client cookie, the address and
//! `Ctx::unix`): the same bytes. Weighted and geo answers, client subnet
//! and other options, TSIG, TCP and every error go the full way.
//! What it saves: the message decode, the answer's record building and
//! its encode with name compression (bench/README.md, "DNS instructions
//! per query"). What it costs: a hash of the query's key, a copy of the
//! stored reply into the UDP loop's buffer (no allocation) and, per
//! thread, the replies of the questions it has seen.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::answer::{Ctx, Policy, Reply, handle};
use crate::cookie::Sent;
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
    /// An EDNS query's key, built here (no allocation per query).
    key: Vec<u8>,
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

/// What the replay needs of a query's sender, read from its OPT record
/// as the full path reads it (answer.rs).
struct Asker {
    /// The most a reply to it may be over UDP: the size it offers (512
    /// without EDNS, never less), at most `max_udp_size`.
    room: usize,
    /// Its client cookie, to be answered with a server cookie (cookies on).
    cookie: Option<[u8; 8]>,
    /// It returned a valid server cookie: never rate limited.
    proven: bool,
}

/// The sender of `q`; `None` when its COOKIE option goes the full way: one
/// of a length RFC 7873 does not allow (FORMERR), or a server cookie that
/// is not levee's or no longer valid.
fn asker(q: &wire::Query<'_>, policy: &Policy, cx: &Ctx<'_>) -> Option<Asker> {
    let max = usize::from(policy.max_udp);
    let Some(opt) = &q.edns else {
        return Some(Asker {
            room: max.min(512),
            cookie: None,
            proven: false,
        });
    };
    let room = max.min(usize::from(opt.size.max(512)));
    let (Some(data), Some(cookies)) = (opt.cookie, &policy.cookies) else {
        return Some(Asker {
            room,
            cookie: None,
            proven: false,
        });
    };
    match cookies.read(data, cx.peer.ip(), cx.unix as u32) {
        Sent::Client(cookie, valid) if valid || data.len() == 8 => Some(Asker {
            room,
            cookie: Some(cookie),
            proven: valid,
        }),
        Sent::Client(..) | Sent::Malformed | Sent::None => None,
    }
}

impl Replies {
    /// The question's entry, classified the first time it is asked; `None`
    /// past [`MAX_QUESTIONS`].
    #[inline]
    fn entry(&mut self, q: &wire::Query<'_>, bytes: &[u8], view: &View) -> Option<&mut Known> {
        let key = q.key(&mut self.key);
        if !self.known.contains_key(key) {
            if self.known.len() >= MAX_QUESTIONS {
                return None;
            }
            self.known.insert(key.into(), classify(bytes, view));
        }
        self.known.get_mut(key)
    }

    /// Forgets what was stored for another View or Policy.
    #[inline]
    fn made_for(&mut self, view: &Arc<View>, policy: &Arc<Policy>) {
        let same = self
            .made_for
            .as_ref()
            .is_some_and(|(v, p)| Arc::ptr_eq(v, view) && Arc::ptr_eq(p, policy));
        if !same {
            self.known.clear();
            self.made_for = Some((view.clone(), policy.clone()));
        }
    }
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
    let q = wire::read(bytes)?;
    let asker = asker(&q, policy, cx)?;
    REPLIES.with(|cell| {
        let mut r = cell.borrow_mut();
        r.made_for(view, policy);
        let Known::Replies { fleet, by_turn, t } = r.entry(&q, bytes, view)? else {
            return None;
        };
        let turn = match *fleet {
            Some((z, f)) => {
                let rec = view.zones.get(z)?.zone.fleet.get(f)?;
                rec.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }
            None => 0,
        };
        let t = *t;
        let slot = by_turn.get_mut((turn % by_turn.len() as u64) as usize)?;
        let cookie_len = asker.cookie.map_or(0, |_| wire::ANSWERED_COOKIE);
        let Some(stored) = slot
            .as_deref()
            .filter(|s| s.len() + cookie_len <= asker.room)
        else {
            // Not made yet, or more than this client takes (the full way
            // truncates): the full way, for this turn; kept if it is a
            // plain answer.
            let reply = handle(
                bytes,
                &Ctx {
                    turn: Some(turn),
                    ..*cx
                },
            );
            if slot.is_none()
                && let Reply::One(b) = &reply
            {
                *slot = keep(b, &q, asker.cookie.is_some());
            }
            return Some(one(reply, out));
        };
        let id = [bytes[0], bytes[1]];
        // As the full path makes it: the same client cookie, address, time.
        let cookie = || match (asker.cookie, &policy.cookies) {
            (Some(c), Some(cookies)) => Some(cookies.answer(&c, cx.peer.ip(), cx.unix as u32)),
            _ => None,
        };
        if !asker.proven
            && let Some(rrl) = &policy.rrl
        {
            match rrl.check(cx.peer.ip(), cx.now) {
                Verdict::Send => {}
                Verdict::Drop => {
                    metrics::query(t, Outcome::Dropped);
                    return Some(false);
                }
                Verdict::Slip => {
                    metrics::query(t, Outcome::Slipped);
                    wire::write(stored, id, cookie().as_ref(), out);
                    let m = Message::from_vec(out).ok()?;
                    *out = crate::answer::truncated(m).to_vec().ok()?;
                    return Some(true);
                }
            }
        }
        metrics::query(t, Outcome::NoError);
        wire::write(stored, id, cookie().as_ref(), out);
        #[cfg(test)]
        tests::REPLAYED.with(|n| n.set(n.get() + 1));
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

/// What is stored of a reply made the full way (wire::stored: without
/// its cookie), when it may be replayed: NOERROR with records, not
/// truncated (what a rate limit's slip or a size cut makes), and for EDNS
/// an OPT with no option left.
fn keep(reply: &[u8], q: &wire::Query<'_>, cookie: bool) -> Option<Box<[u8]>> {
    let stored = wire::stored(reply, q.edns.is_some(), cookie)?;
    let m = Message::from_vec(&stored).ok()?;
    let plain = m.response_code() == ResponseCode::NoError
        && !m.answers().is_empty()
        && !m.truncated()
        && m.extensions()
            .as_ref()
            .is_none_or(|e| e.options().as_ref().is_empty());
    plain.then_some(stored)
}

mod wire;

#[cfg(test)]
mod tests;
