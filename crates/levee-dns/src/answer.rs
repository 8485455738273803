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

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::HINFO;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use levee_mirror::geo::Geo;

use crate::cookie::{Cookies, Sent};
use crate::live::LiveSet;
use crate::metrics::{self, Outcome};
use crate::rrl::{Rrl, Verdict};
use crate::view::{View, ZoneView};
use crate::zone::{FleetName, Node};

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
    let Ok(request) = Message::from_vec(bytes) else {
        return unreadable(bytes, cx);
    };
    if request.message_type() == MessageType::Response {
        return Reply::Nothing;
    }
    let signed = match signature(&request, bytes, cx) {
        Ok(signed) => signed,
        Err(refused) => return refused,
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
    let subnet = match edns(&request, &mut reply, &mut client, cx) {
        Ok(subnet) => subnet,
        Err(outcome) => return send(reply, cx, Client::unproven(), t, outcome),
    };
    let asked = Asked {
        cx,
        qtype: query.query_type(),
        subnet,
        t,
    };
    answer(&request, query, reply, client, &asked)
}

/// Bytes hickory cannot read: a header that reads as a query's gets
/// FORMERR; anything else (a response, a runt) gets nothing.
fn unreadable(bytes: &[u8], cx: &Ctx<'_>) -> Reply {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return Reply::Nothing;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let op = OpCode::from_u8((bytes[2] >> 3) & 0x0f);
    let reply = Message::error_msg(id, op, ResponseCode::FormErr);
    send(
        reply,
        cx,
        Client::unproven(),
        metrics::type_index(None),
        Outcome::FormErr,
    )
}

/// A signed query's key and MAC, when the signature is good; `Err` is the
/// NOTAUTH reply to a bad one.
fn signature<'p>(
    request: &Message,
    bytes: &[u8],
    cx: &Ctx<'p>,
) -> Result<Option<(&'p crate::keys::Key, Vec<u8>)>, Reply> {
    let Some(sig) = request.signature().first() else {
        return Ok(None);
    };
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
        .and_then(|k| crate::tsig::verify(request, bytes, k, cx.unix).map(|mac| (k, mac)));
    verified.map(Some).map_err(|e| {
        tracing::debug!(peer = %cx.peer, error = %e, "dns: TSIG refused");
        let t = metrics::type_index(request.queries().first().map(|q| q.query_type()));
        let reply = Message::error_msg(request.id(), request.op_code(), ResponseCode::NotAuth);
        send(reply, cx, Client::unproven(), t, Outcome::NotAuth)
    })
}

/// The query's OPT record: the client's UDP size and cookie into
/// `client`, the reply's OPT (levee's size, the cookie answered) into
/// `reply`, and the client subnet, if any, returned. `Err`: the error
/// `reply` is set to (BADVERS, or FORMERR for a malformed cookie).
fn edns(
    request: &Message,
    reply: &mut Message,
    client: &mut Client<'_>,
    cx: &Ctx<'_>,
) -> Result<Option<ClientSubnet>, Outcome> {
    let Some(e) = request.extensions() else {
        return Ok(None);
    };
    client.size = usize::from(e.max_payload().max(512));
    let mut out = Edns::new();
    // RFC 3225: DO is copied from the query (levee signs nothing, but a
    // validating resolver reads the bit back).
    out.set_max_payload(cx.policy.max_udp)
        .set_version(0)
        .set_dnssec_ok(e.flags().dnssec_ok);
    if e.version() > 0 {
        reply.set_edns(out).set_response_code(ResponseCode::BADVERS);
        return Err(Outcome::BadVers);
    }
    if let (Some(EdnsOption::Unknown(10, data)), Some(cookies)) =
        (e.option(EdnsCode::Cookie), &cx.policy.cookies)
    {
        match cookies.read(data, cx.peer.ip(), cx.unix as u32) {
            Sent::Malformed => {
                reply.set_edns(out).set_response_code(ResponseCode::FormErr);
                return Err(Outcome::FormErr);
            }
            Sent::Client(cookie, valid) => {
                client.proven = valid;
                // The same inputs as the replay's (replay.rs): the same bytes.
                let data = cookies.answer(&cookie, cx.peer.ip(), cx.unix as u32);
                out.options_mut()
                    .insert(EdnsOption::Unknown(10, data.to_vec()));
            }
            Sent::None => {}
        }
    }
    reply.set_edns(out);
    match e.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => Ok(Some(*s)),
        _ => Ok(None),
    }
}

/// What the lookup needs of the query, beside the names.
struct Asked<'a, 'c> {
    cx: &'a Ctx<'c>,
    qtype: RecordType,
    subnet: Option<ClientSubnet>,
    /// The metrics row of the question's type.
    t: usize,
}

/// The one question answered: class, transfers, the zone it is in, then
/// its records.
fn answer(
    request: &Message,
    query: &Query,
    mut reply: Message,
    client: Client<'_>,
    asked: &Asked<'_, '_>,
) -> Reply {
    let (cx, t) = (asked.cx, asked.t);
    if query.query_class() != DNSClass::IN {
        reply.set_response_code(ResponseCode::Refused);
        return send(reply, cx, client, t, Outcome::Refused);
    }
    match asked.qtype {
        RecordType::AXFR | RecordType::IXFR => {
            return crate::xfer::transfer(request, reply, cx, t, client);
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
    let outcome = lookup(zone, query.name(), &name, asked, &mut reply);
    send(reply, cx, client, t, outcome)
}

/// Where one name of the chain leads.
enum Step {
    Done(Outcome),
    /// A CNAME to this name in the zone: the chain goes on there.
    Follow(Name),
}

/// Fills `reply` with what `zone` has for `qname`/`qtype`. `lower` is the
/// name in lower case (the map's key); answers carry `qname` as asked.
fn lookup(
    zone: &ZoneView,
    qname: &Name,
    lower: &Name,
    asked: &Asked<'_, '_>,
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
        match at_node(zone, node, &owner, &key, asked, reply) {
            Step::Done(outcome) => return outcome,
            Step::Follow(target) => {
                owner = target.clone();
                key = target;
            }
        }
    }
    Outcome::NoError
}

/// One name of the chain: the records asked for, an ANY's HINFO, a fleet
/// record's addresses, the SOA at the apex, or its CNAME to follow.
fn at_node(
    zone: &ZoneView,
    node: &Node,
    owner: &Name,
    key: &Name,
    asked: &Asked<'_, '_>,
    reply: &mut Message,
) -> Step {
    let qtype = asked.qtype;
    if qtype == RecordType::ANY {
        let hinfo = HINFO::new("RFC8482".to_owned(), String::new());
        let ttl = zone.zone.config.ttl.as_secs() as u32;
        reply.add_answer(Record::from_rdata(owner.clone(), ttl, RData::HINFO(hinfo)));
        return Step::Done(Outcome::NoError);
    }
    if let (Some(i), RecordType::A | RecordType::AAAA) = (node.fleet, qtype)
        && let (Some(live), Some(f)) = (zone.live.get(i), zone.zone.fleet.get(i))
    {
        return Step::Done(fleet(zone, live, f, owner, asked, reply));
    }
    if qtype == RecordType::SOA && *key == zone.zone.apex {
        let mut soa = zone.soa.clone();
        soa.set_name(owner.clone());
        reply.add_answer(soa);
        return Step::Done(Outcome::NoError);
    }
    if let Some(records) = node.get(qtype) {
        for r in records {
            let mut r = r.clone();
            r.set_name(owner.clone());
            reply.add_answer(r);
        }
        return Step::Done(Outcome::NoError);
    }
    match node.get(RecordType::CNAME).and_then(<[Record]>::first) {
        Some(c) if qtype != RecordType::CNAME => {
            let mut r = c.clone();
            r.set_name(owner.clone());
            reply.add_answer(r);
            let RData::CNAME(target) = c.data() else {
                return Step::Done(Outcome::NoError);
            };
            let target = target.0.to_lowercase();
            if !zone.zone.apex.zone_of_case(&target) {
                return Step::Done(Outcome::NoError);
            }
            Step::Follow(target)
        }
        _ => {
            negative(zone, reply, ResponseCode::NoError);
            Step::Done(if reply.answers().is_empty() {
                Outcome::NoData
            } else {
                Outcome::NoError
            })
        }
    }
}

/// A fleet record's A or AAAA answer: the live members chosen for this
/// query (its turn, the client's place for geo), or NODATA.
fn fleet(
    zone: &ZoneView,
    live: &LiveSet,
    f: &FleetName,
    owner: &Name,
    asked: &Asked<'_, '_>,
    reply: &mut Message,
) -> Outcome {
    let (cx, subnet) = (asked.cx, asked.subnet);
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
        asked.qtype == RecordType::AAAA,
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
