//! One query in, its answer out: no I/O, the clock passed in. The UDP and
//! TCP loops call [`handle`], and so does the fuzz target.
//!
//! ```text
//! parse (hickory-proto) ─ unreadable: FORMERR if the header is a query's, else nothing
//!   ─ a response: nothing ─ opcode not QUERY: NOTIMP ─ not one question: FORMERR
//!   ─ EDNS: version > 0: BADVERS; COOKIE read (malformed: FORMERR); ECS kept
//!   ─ class not IN: REFUSED ─ AXFR / IXFR: transfers (xfer.rs)
//!   ─ no zone of ours: REFUSED (levee never recurses)
//!   ─ lookup: CNAME chain within the zone, fleet records from the live set,
//!     ANY as RFC 8482's HINFO, NODATA / NXDOMAIN with the SOA
//!   ─ UDP: larger than the client's size → truncated; rate limit by prefix
//!     (a valid cookie exempts): dropped, or sent truncated (slip)
//! ```
//!
//! Answers are minimal: the answer section, the SOA for negative answers,
//! nothing more; with no glue and no extra records, a query is never
//! answered with much more than it asked (RFC 8482 for ANY).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::HINFO;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use levee_mirror::geo::Geo;

use crate::cookie::{Cookies, Sent};
use crate::metrics::{self, Outcome};
use crate::rrl::{Rrl, Verdict};
use crate::view::{View, ZoneView};

/// The settings a query is answered under (from `[dns]`).
#[derive(Debug)]
pub struct Policy {
    pub max_udp: u16,
    pub cookies: Option<Cookies>,
    pub rrl: Option<Rrl>,
    pub geo: Option<Geo>,
    /// TSIG keys (`tsig_keys`): a query signed with one is answered signed.
    pub keys: Vec<crate::keys::Key>,
}

/// One query's circumstances.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub view: &'a View,
    pub policy: &'a Policy,
    pub peer: SocketAddr,
    pub tcp: bool,
    /// Unix seconds, for cookies and TSIG.
    pub unix: u64,
    pub now: Instant,
    /// The rotation turn to answer a fleet record with, instead of taking
    /// the record's next one: a reply encoded for replay (replay.rs) is
    /// made for a given turn.
    pub turn: Option<u64>,
}

/// What goes back.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Nothing,
    One(Vec<u8>),
    /// A transfer's messages, in order (TCP only).
    Many(Vec<Vec<u8>>),
}

/// How many CNAMEs within a zone an answer follows.
const MAX_CHAIN: usize = 8;

/// Answers `bytes` from `cx.view`, counting it.
pub fn handle(bytes: &[u8], cx: &Ctx<'_>) -> Reply {
    let request = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => {
            // A header that reads as a query's gets FORMERR; anything else
            // (a response, a runt) gets nothing.
            if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
                return Reply::Nothing;
            }
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            let op = OpCode::from_u8((bytes[2] >> 3) & 0x0f);
            let reply = Message::error_msg(id, op, ResponseCode::FormErr);
            return send(
                reply,
                cx,
                Client::unproven(),
                metrics::type_index(None),
                Outcome::FormErr,
            );
        }
    };
    if request.message_type() == MessageType::Response {
        return Reply::Nothing;
    }
    let signed = match request.signature().first() {
        None => None,
        Some(sig) => {
            let name = sig
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let verified = cx
                .policy
                .keys
                .iter()
                .find(|k| k.name == name)
                .ok_or(crate::tsig::TsigError::BadKey)
                .and_then(|k| crate::tsig::verify(&request, bytes, k, cx.unix).map(|mac| (k, mac)));
            match verified {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::debug!(peer = %cx.peer, error = %e, "dns: TSIG refused");
                    let t = metrics::type_index(request.queries().first().map(|q| q.query_type()));
                    let reply =
                        Message::error_msg(request.id(), request.op_code(), ResponseCode::NotAuth);
                    return send(reply, cx, Client::unproven(), t, Outcome::NotAuth);
                }
            }
        }
    };
    let qtype = request.queries().first().map(|q| q.query_type());
    let t = metrics::type_index(qtype);
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired());
    if request.op_code() != OpCode::Query {
        reply.set_response_code(ResponseCode::NotImp);
        return send(reply, cx, Client::unproven(), t, Outcome::NotImp);
    }
    let [query] = request.queries() else {
        reply.set_response_code(ResponseCode::FormErr);
        return send(reply, cx, Client::unproven(), t, Outcome::FormErr);
    };
    reply.add_query(query.clone());
    let mut client = Client::unproven();
    // A valid signature proves the sender as well as a cookie does.
    client.proven = signed.is_some();
    client.tsig = signed;
    let mut subnet = None;
    if let Some(e) = request.extensions() {
        client.size = usize::from(e.max_payload().max(512));
        let mut out = Edns::new();
        out.set_max_payload(cx.policy.max_udp).set_version(0);
        if e.version() > 0 {
            reply.set_edns(out).set_response_code(ResponseCode::BADVERS);
            return send(reply, cx, Client::unproven(), t, Outcome::BadVers);
        }
        if let (Some(EdnsOption::Unknown(10, data)), Some(cookies)) =
            (e.option(EdnsCode::Cookie), &cx.policy.cookies)
        {
            match cookies.read(data, cx.peer.ip(), cx.unix as u32) {
                Sent::Malformed => {
                    reply.set_edns(out).set_response_code(ResponseCode::FormErr);
                    return send(reply, cx, Client::unproven(), t, Outcome::FormErr);
                }
                Sent::Client(cookie, valid) => {
                    client.proven = valid;
                    let data = cookies.answer(&cookie, cx.peer.ip(), cx.unix as u32);
                    out.options_mut()
                        .insert(EdnsOption::Unknown(10, data.to_vec()));
                }
                Sent::None => {}
            }
        }
        if let Some(EdnsOption::Subnet(s)) = e.option(EdnsCode::Subnet) {
            subnet = Some(*s);
        }
        reply.set_edns(out);
    }
    if query.query_class() != DNSClass::IN {
        reply.set_response_code(ResponseCode::Refused);
        return send(reply, cx, client, t, Outcome::Refused);
    }
    match query.query_type() {
        RecordType::AXFR | RecordType::IXFR => {
            return crate::xfer::transfer(&request, reply, cx, t, client);
        }
        RecordType::OPT | RecordType::TSIG | RecordType::SIG => {
            reply.set_response_code(ResponseCode::FormErr);
            return send(reply, cx, client, t, Outcome::FormErr);
        }
        _ => {}
    }
    let name = query.name().to_lowercase();
    let Some(zone) = cx.view.zone_of(&name) else {
        reply.set_response_code(ResponseCode::Refused);
        return send(reply, cx, client, t, Outcome::Refused);
    };
    reply.set_authoritative(true);
    let outcome = lookup(
        zone,
        query.name(),
        &name,
        query.query_type(),
        cx,
        subnet,
        &mut reply,
    );
    send(reply, cx, client, t, outcome)
}

/// Fills `reply` with what `zone` has for `qname`/`qtype`. `lower` is the
/// name in lower case (the map's key); answers carry `qname` as asked.
fn lookup(
    zone: &ZoneView,
    qname: &Name,
    lower: &Name,
    qtype: RecordType,
    cx: &Ctx<'_>,
    subnet: Option<ClientSubnet>,
    reply: &mut Message,
) -> Outcome {
    let mut owner = qname.clone();
    let mut key = lower.clone();
    for _ in 0..MAX_CHAIN {
        let Some(node) = zone.zone.nodes.get(&key) else {
            if reply.answers().is_empty() {
                negative(zone, reply, ResponseCode::NXDomain);
                return Outcome::NxDomain;
            }
            // A CNAME to a name the zone does not have: the chain ends here.
            return Outcome::NoError;
        };
        if qtype == RecordType::ANY {
            let hinfo = HINFO::new("RFC8482".to_owned(), String::new());
            let ttl = zone.zone.config.ttl.as_secs() as u32;
            reply.add_answer(Record::from_rdata(owner, ttl, RData::HINFO(hinfo)));
            return Outcome::NoError;
        }
        if let (Some(i), RecordType::A | RecordType::AAAA) = (node.fleet, qtype)
            && let (Some(live), Some(f)) = (zone.live.get(i), zone.zone.fleet.get(i))
        {
            let client = if f.config.geo {
                cx.policy.geo.as_ref().map(|g| {
                    let ip = subnet
                        .filter(|s| s.source_prefix() > 0)
                        .map_or(cx.peer.ip(), |s| s.addr());
                    let w = g.lookup(ip);
                    (w.country, w.continent)
                })
            } else {
                None
            };
            let turn = cx
                .turn
                .unwrap_or_else(|| f.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let mut ips = Vec::with_capacity(f.config.max_answers as usize);
            let narrowed = live.choose(
                qtype == RecordType::AAAA,
                f.config.order,
                f.config.max_answers as usize,
                turn,
                client,
                &mut ips,
            );
            if let Some(s) = subnet {
                echo_subnet(reply, s, narrowed);
            }
            let ttl = f.config.ttl.as_secs() as u32;
            for ip in &ips {
                let data = match ip {
                    IpAddr::V4(a) => RData::A((*a).into()),
                    IpAddr::V6(a) => RData::AAAA((*a).into()),
                };
                reply.add_answer(Record::from_rdata(owner.clone(), ttl, data));
            }
            if ips.is_empty() {
                negative(zone, reply, ResponseCode::NoError);
                return Outcome::NoData;
            }
            return Outcome::NoError;
        }
        if qtype == RecordType::SOA && key == zone.zone.apex {
            let mut soa = zone.soa.clone();
            soa.set_name(owner);
            reply.add_answer(soa);
            return Outcome::NoError;
        }
        if let Some(records) = node.get(qtype) {
            for r in records {
                let mut r = r.clone();
                r.set_name(owner.clone());
                reply.add_answer(r);
            }
            return Outcome::NoError;
        }
        match node.get(RecordType::CNAME).and_then(<[Record]>::first) {
            Some(c) if qtype != RecordType::CNAME => {
                let mut r = c.clone();
                r.set_name(owner.clone());
                reply.add_answer(r);
                let RData::CNAME(target) = c.data() else {
                    return Outcome::NoError;
                };
                let target = target.0.to_lowercase();
                if !zone.zone.apex.zone_of_case(&target) {
                    return Outcome::NoError;
                }
                owner = target.clone();
                key = target;
            }
            _ => {
                negative(zone, reply, ResponseCode::NoError);
                return if reply.answers().is_empty() {
                    Outcome::NoData
                } else {
                    Outcome::NoError
                };
            }
        }
    }
    Outcome::NoError
}

/// NXDOMAIN or NODATA: the SOA in the authority section, with the
/// negative TTL (RFC 2308).
fn negative(zone: &ZoneView, reply: &mut Message, code: ResponseCode) {
    let mut soa = zone.soa.clone();
    soa.set_ttl(zone.zone.negative_ttl());
    reply.add_name_server(soa);
    reply.set_response_code(code);
}

/// RFC 7871: the option comes back with the scope the answer depends on.
fn echo_subnet(reply: &mut Message, mut s: ClientSubnet, narrowed: bool) {
    s.set_scope_prefix(if narrowed { s.source_prefix() } else { 0 });
    if let Some(e) = reply.extensions_mut() {
        e.options_mut().insert(EdnsOption::Subnet(s));
    }
}

/// What a query said about its sender.
#[derive(Debug, Clone)]
pub(crate) struct Client<'a> {
    /// It returned a valid server cookie, or signed the query: its address
    /// is its own.
    pub proven: bool,
    /// The UDP size it offers (512 without EDNS).
    pub size: usize,
    /// The key it signed with and its MAC: the answer is signed too.
    pub tsig: Option<(&'a crate::keys::Key, Vec<u8>)>,
}

impl Client<'_> {
    pub(crate) fn unproven() -> Client<'static> {
        Client {
            proven: false,
            size: 512,
            tsig: None,
        }
    }
}

/// Encodes `reply`; over UDP, truncates what does not fit and applies the
/// rate limit (unless the client proved its address with a cookie).
pub(crate) fn send(
    mut reply: Message,
    cx: &Ctx<'_>,
    client: Client,
    t: usize,
    outcome: Outcome,
) -> Reply {
    if !cx.tcp
        && !client.proven
        && let Some(rrl) = &cx.policy.rrl
    {
        match rrl.check(cx.peer.ip(), cx.now) {
            Verdict::Send => {}
            Verdict::Drop => {
                metrics::query(t, Outcome::Dropped);
                return Reply::Nothing;
            }
            Verdict::Slip => {
                metrics::query(t, Outcome::Slipped);
                return encode(&truncated(reply), &client, cx).map_or(Reply::Nothing, Reply::One);
            }
        }
    }
    metrics::query(t, outcome);
    let Some(bytes) = encode(&reply, &client, cx) else {
        return Reply::Nothing;
    };
    if cx.tcp {
        return Reply::One(bytes);
    }
    if bytes.len() <= client.size.min(usize::from(cx.policy.max_udp)) {
        return Reply::One(bytes);
    }
    metrics::COUNTERS
        .truncated
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    reply = truncated(reply);
    encode(&reply, &client, cx).map_or(Reply::Nothing, Reply::One)
}

/// The header, question and OPT only, with TC set.
pub(crate) fn truncated(mut reply: Message) -> Message {
    reply.take_answers();
    reply.take_name_servers();
    reply.take_additionals();
    reply.set_truncated(true);
    reply
}

/// The wire form, signed when the query was.
fn encode(reply: &Message, client: &Client<'_>, cx: &Ctx<'_>) -> Option<Vec<u8>> {
    match &client.tsig {
        // Signing adds a record: a copy, for the rare signed query.
        Some((key, mac)) => crate::tsig::Chain::new(key, mac.clone(), cx.unix).sign(reply.clone()),
        None => reply.to_vec().ok(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
