//! Zone transfers to the configured secondaries: AXFR (RFC 5936) and IXFR
//! (RFC 1995) from the journal of recent changes, over TCP, signed with
//! the zone's TSIG key when it has one.
//!
//! ```text
//! not the apex of a zone of ours: REFUSED
//! peer not among the zone's secondaries: REFUSED
//! zone has tsig_key, request not signed with it (or too old): NOTAUTH
//! AXFR over UDP: NOTIMP; IXFR over UDP: the SOA alone (the secondary comes back over TCP)
//! IXFR, secondary up to date: the SOA alone
//! IXFR, every change since its serial kept: SOA, (old SOA, removed, new SOA, added)*, SOA
//! otherwise: SOA, every record, SOA (an IXFR answered so is a full transfer, RFC 1995 §4)
//! ```

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::BinEncodable;

use crate::answer::{Client, Ctx, Reply, send};
use crate::metrics::{COUNTERS, Outcome};
use crate::tsig::Chain;
use crate::view::ZoneView;

/// Bytes of records per message of a transfer; well under TCP's 64 KiB
/// and what BIND sends.
const MESSAGE_BYTES: usize = 16 * 1024;

pub(crate) fn transfer(
    request: &Message,
    mut reply: Message,
    cx: &Ctx<'_>,
    t: usize,
    client: Client<'_>,
) -> Reply {
    let refused = |mut reply: Message, code: ResponseCode, outcome: Outcome| {
        COUNTERS
            .transfers_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        reply.set_response_code(code);
        send(reply, cx, client.clone(), t, outcome)
    };
    let Some(query) = request.queries().first() else {
        return refused(reply, ResponseCode::FormErr, Outcome::FormErr);
    };
    let name = query.name().to_lowercase();
    let zone = match cx.view.zone_of(&name) {
        Some(z) if z.zone.apex == name => z,
        _ => return refused(reply, ResponseCode::Refused, Outcome::Refused),
    };
    let peer = match cx.peer.ip() {
        std::net::IpAddr::V6(a) => a.to_ipv4_mapped().map_or(cx.peer.ip(), Into::into),
        v4 => v4,
    };
    if !zone
        .zone
        .config
        .secondaries
        .iter()
        .any(|s| s.address.ip() == peer)
    {
        tracing::warn!(peer = %cx.peer, zone = %zone.zone.config.name, "dns: transfer refused: not a secondary of the zone");
        return refused(reply, ResponseCode::Refused, Outcome::Refused);
    }
    // handle() checked any signature; the zone's key must be the one.
    let mut chain = match (&zone.zone.tsig, &client.tsig) {
        (Some(want), Some((key, mac))) if want.name == key.name => {
            Some(Chain::new(key, mac.clone(), cx.unix))
        }
        (Some(_), _) => {
            tracing::warn!(peer = %cx.peer, zone = %zone.zone.config.name, "dns: transfer refused: not signed with the zone's key");
            return refused(reply, ResponseCode::NotAuth, Outcome::NotAuth);
        }
        (None, Some((key, mac))) => Some(Chain::new(key, mac.clone(), cx.unix)),
        (None, None) => None,
    };
    let ixfr = query.query_type() == hickory_proto::rr::RecordType::IXFR;
    if !cx.tcp && !ixfr {
        return refused(reply, ResponseCode::NotImp, Outcome::NotImp);
    }
    reply.set_authoritative(true);
    let theirs = request.name_servers().iter().find_map(|r| match r.data() {
        RData::SOA(soa) => Some(soa.serial()),
        _ => None,
    });
    if ixfr && theirs.is_none() {
        return refused(reply, ResponseCode::FormErr, Outcome::FormErr);
    }
    let records = records(zone, ixfr, theirs, cx.tcp);
    COUNTERS
        .transfers_ok
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::metrics::query(t, Outcome::NoError);
    tracing::info!(peer = %cx.peer, zone = %zone.zone.config.name, serial = zone.serial, kind = if ixfr { "IXFR" } else { "AXFR" }, records = records.len(), "dns: transfer");
    encode(&reply, records, chain.as_mut())
}

/// What the transfer sends: the whole zone for AXFR (or an IXFR the
/// journal cannot answer), the changes since `theirs` for IXFR, or the
/// SOA alone when the secondary is current (or asked over UDP).
fn records(zone: &ZoneView, ixfr: bool, theirs: Option<u32>, tcp: bool) -> Vec<Record> {
    match theirs {
        _ if !ixfr => full(zone),
        Some(s) if !newer(zone.serial, s) || !tcp => vec![zone.soa.clone()],
        Some(s) => match zone.journal.since(s) {
            Some(changes) => {
                let mut out = vec![zone.soa.clone()];
                for c in changes {
                    out.push(zone.zone.soa(c.from));
                    out.extend(c.removed.iter().cloned());
                    out.push(zone.zone.soa(c.to));
                    out.extend(c.added.iter().cloned());
                }
                out.push(zone.soa.clone());
                out
            }
            None => full(zone),
        },
        None => full(zone),
    }
}

/// `records` in messages of about [`MESSAGE_BYTES`] each, after `reply`'s
/// head (the question in the first only), signed along `chain` if any.
fn encode(reply: &Message, records: Vec<Record>, mut chain: Option<&mut Chain>) -> Reply {
    let mut messages = Vec::new();
    let mut current = reply.clone();
    let mut size = 0;
    for r in records {
        let len = r.to_bytes().map_or(0, |b| b.len());
        if size + len > MESSAGE_BYTES && !current.answers().is_empty() {
            let mut next = reply.clone();
            next.take_queries();
            messages.push(std::mem::replace(&mut current, next));
            size = 0;
        }
        size += len;
        current.add_answer(r);
    }
    messages.push(current);
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let encoded = match chain.as_deref_mut() {
            Some(c) => c.sign(m),
            None => m.to_vec().ok(),
        };
        match encoded {
            Some(b) => out.push(b),
            None => return Reply::Nothing,
        }
    }
    if out.len() == 1 {
        return Reply::One(out.remove(0));
    }
    Reply::Many(out)
}

/// SOA, every record, SOA.
fn full(zone: &ZoneView) -> Vec<Record> {
    let mut out = vec![zone.soa.clone()];
    out.extend(zone.records());
    out.push(zone.soa.clone());
    out
}

/// Whether `ours` is later than `theirs` in serial arithmetic (RFC 1982).
fn newer(ours: u32, theirs: u32) -> bool {
    ours != theirs && ours.wrapping_sub(theirs) < (1 << 31)
}
