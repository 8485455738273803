use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};

use super::*;
use crate::answer::tests::{policy, query, view};

thread_local! {
    /// Queries this thread answered from a stored reply (replay.rs counts).
    pub(super) static REPLAYED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn cx<'a>(v: &'a View, p: &'a Policy) -> Ctx<'a> {
    Ctx {
        view: v,
        policy: p,
        peer: "198.51.100.7:4000".parse::<SocketAddr>().expect("peer"),
        tcp: false,
        unix: 1_700_000_000,
        now: Instant::now(),
        turn: None,
    }
}

fn one(r: Reply) -> Message {
    match r {
        Reply::One(b) => Message::from_vec(&b).expect("a valid answer"),
        other => panic!("{other:?}"),
    }
}

fn addrs(m: &Message) -> Vec<String> {
    m.answers().iter().map(|r| r.data().to_string()).collect()
}

/// Replayed answers are the full path's, byte for byte but the id, and a
/// fleet record still rotates per query.
#[test]
fn replayed_answers_equal_the_full_ones_and_still_rotate() {
    let (v, p) = (Arc::new(view()), Arc::new(policy(0)));
    let c = cx(&v, &p);
    let mut q = query("WWW.example.org", RecordType::A);
    let mut seen = Vec::new();
    for id in 0..9u16 {
        q.set_id(id);
        let bytes = q.to_vec().expect("encodes");
        let fast = one(udp(&bytes, &v, &p, &c));
        assert_eq!(fast.id(), id);
        assert!(fast.recursion_desired());
        assert_eq!(
            fast.queries()[0].name().to_ascii(),
            "WWW.example.org.",
            "the question as asked"
        );
        assert_eq!(fast.answers()[0].name().to_ascii(), "WWW.example.org.");
        seen.push(addrs(&fast));
        // The full way with the turn the replay took gives the same bytes.
        let turn = v.zones[0].zone.fleet[0]
            .turn
            .load(std::sync::atomic::Ordering::Relaxed)
            - 1;
        let full = handle(
            &bytes,
            &Ctx {
                turn: Some(turn),
                ..c
            },
        );
        assert_eq!(one(full), fast);
    }
    // Three members, two per answer (max_answers), each first in turn.
    let firsts: std::collections::HashSet<&String> = seen.iter().map(|a| &a[0]).collect();
    assert_eq!(firsts.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|a| a.len() == 2));
    assert_eq!(seen[0], seen[3], "the rotation repeats every three");
    // Static answers too.
    let bytes = query("mail.example.org", RecordType::A)
        .to_vec()
        .expect("encodes");
    for _ in 0..2 {
        assert_eq!(addrs(&one(udp(&bytes, &v, &p, &c))), ["192.0.2.1"]);
    }
}

/// What is not a plain answer goes the full way every time: errors,
/// EDNS options but a cookie, other versions, TCP.
#[test]
fn errors_other_options_and_tcp_are_answered_the_full_way() {
    let (v, p) = (Arc::new(view()), Arc::new(policy(0)));
    let c = cx(&v, &p);
    let nx = query("nope.example.org", RecordType::A)
        .to_vec()
        .expect("encodes");
    for _ in 0..2 {
        let m = one(udp(&nx, &v, &p, &c));
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert_eq!(m.name_servers().len(), 1, "the SOA");
    }
    let with = |options: Vec<EdnsOption>, version: u8| {
        let mut m = query("www.example.org", RecordType::A);
        let mut e = Edns::new();
        e.set_version(version);
        for o in options {
            e.options_mut().insert(o);
        }
        m.set_edns(e);
        m.to_vec().expect("encodes")
    };
    let subnet = ClientSubnet::new("192.0.2.0".parse().expect("ip"), 24, 0);
    let cookie = EdnsOption::Unknown(10, b"clientck".to_vec());
    for (what, bytes) in [
        ("client subnet", with(vec![EdnsOption::Subnet(subnet)], 0)),
        (
            "an unknown option",
            with(vec![EdnsOption::Unknown(65001, vec![1])], 0),
        ),
        ("two cookies", with(vec![cookie.clone(), cookie.clone()], 0)),
        (
            "a cookie and more",
            with(vec![cookie.clone(), EdnsOption::Subnet(subnet)], 0),
        ),
        ("version 1", with(Vec::new(), 1)),
    ] {
        assert!(wire::read(&bytes).is_none(), "{what}: the full way");
    }
    let read = |bytes: &[u8]| {
        let q = wire::read(bytes).expect("read");
        asker(&q, &p, &c).map(|a| (a.room, a.cookie, a.proven))
    };
    assert_eq!(read(&with(Vec::new(), 0)), Some((512, None, false)));
    assert_eq!(
        read(&with(vec![cookie.clone()], 0)),
        Some((512, Some(*b"clientck"), false))
    );
    let cookies = p.cookies.as_ref().expect("cookies on");
    let ip = c.peer.ip();
    let valid = cookies.answer(b"clientck", ip, c.unix as u32);
    let stale = cookies.answer(b"clientck", ip, c.unix as u32 - 7200);
    let with_data = |d: &[u8]| with(vec![EdnsOption::Unknown(10, d.to_vec())], 0);
    assert_eq!(
        read(&with_data(&valid)),
        Some((512, Some(*b"clientck"), true))
    );
    for (what, data) in [
        ("a stale server cookie", &stale[..]),
        ("another server's cookie", &[7u8; 20][..]),
        ("a malformed cookie", &b"short"[..]),
    ] {
        assert_eq!(read(&with_data(data)), None, "{what}: the full way");
    }
    // Before an OPT: a name with a compression pointer; after it, a byte.
    let mut pointer = with(Vec::new(), 0);
    let opt = pointer.split_off(12 + 17 + 4);
    pointer.truncate(12);
    pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    pointer.extend_from_slice(&opt);
    assert!(wire::read(&pointer).is_none());
    let mut trailing = with(Vec::new(), 0);
    assert!(wire::read(&trailing).is_some());
    trailing.push(0);
    assert!(wire::read(&trailing).is_none());
    let plain = query("www.example.org", RecordType::A)
        .to_vec()
        .expect("encodes");
    let tcp = Ctx { tcp: true, ..c };
    assert!(replay(&plain, &v, &p, &tcp, &mut Vec::new()).is_none());
}

/// A new View (the live set changed) is answered from, not the old one's
/// replies.
#[test]
fn a_new_view_starts_afresh() {
    let p = Arc::new(policy(0));
    let bytes = query("mail.example.org", RecordType::A)
        .to_vec()
        .expect("encodes");
    let old = Arc::new(view());
    assert_eq!(
        addrs(&one(udp(&bytes, &old, &p, &cx(&old, &p)))),
        ["192.0.2.1"]
    );
    let mut changed = view();
    changed.zones.clear();
    let new = Arc::new(changed);
    let m = one(udp(&bytes, &new, &p, &cx(&new, &p)));
    assert_eq!(m.response_code(), ResponseCode::Refused, "no zone any more");
}

/// The rate limit holds for replayed answers: past the rate, dropped or
/// slipped (truncated, the question kept).
#[test]
fn the_rate_limit_applies_to_replays() {
    let (v, p) = (Arc::new(view()), Arc::new(policy(1)));
    let c = cx(&v, &p);
    let bytes = query("mail.example.org", RecordType::A)
        .to_vec()
        .expect("encodes");
    let kinds: Vec<&str> = (0..6).map(|_| verdict(&udp(&bytes, &v, &p, &c))).collect();
    assert_eq!(kinds[0], "sent");
    assert!(kinds.contains(&"dropped"), "{kinds:?}");
    assert!(kinds.contains(&"slipped"), "{kinds:?}");
}

/// What the rate limit made of a UDP answer: sent, slipped (truncated,
/// no records, the question kept) or dropped.
fn verdict(r: &Reply) -> &'static str {
    match r {
        Reply::Nothing => "dropped",
        Reply::One(b) => {
            let m = Message::from_vec(b).expect("valid");
            if m.truncated() {
                assert!(m.answers().is_empty());
                assert_eq!(m.queries().len(), 1);
                "slipped"
            } else {
                "sent"
            }
        }
        Reply::Many(_) => "many",
    }
}

/// A small deterministic generator (xorshift64), so a failure repeats.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// The COOKIE option a query carries, by what the replay makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cookie {
    None,
    /// A client cookie alone (a resolver's first query).
    Client,
    /// The client cookie and the server cookie levee made for this
    /// client a while ago (a resolver's next queries).
    Valid,
    /// A server cookie made two hours ago, or not levee's at all.
    Stale,
    Foreign,
    /// A length RFC 7873 does not allow.
    Malformed,
}

/// What a random query was, as far as the test tallies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tally {
    Cookie(Cookie),
    /// DO set.
    DnssecOk,
    /// big.example.org's TXT (over 512 bytes), to a client that takes it.
    Big,
}

/// One random query: mostly EDNS, of any size, DO or not, with cookies
/// of every kind, for names that are answered, truncated or not there.
fn random_query(g: &mut Gen, p: &Policy, ip: std::net::IpAddr, unix: u64) -> (Vec<u8>, Vec<Tally>) {
    let name = g.pick(&[
        "www.example.org",
        "WWW.Example.ORG",
        "mail.example.org",
        "alias.example.org",
        "big.example.org",
        "a.b.example.org",
        "nope.example.org",
        "www.example.net",
    ]);
    let t = g.pick(&[
        RecordType::A,
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::MX,
        RecordType::SOA,
        RecordType::ANY,
    ]);
    let mut m = query(name, t);
    m.set_id(g.next() as u16);
    if g.next().is_multiple_of(8) {
        return (
            m.to_vec().expect("encodes"),
            vec![Tally::Cookie(Cookie::None)],
        );
    }
    let mut e = Edns::new();
    let dnssec_ok = g.next().is_multiple_of(2);
    e.set_max_payload(g.pick(&[0, 300, 512, 600, 1232, 1400, 4096, 65535]))
        .set_dnssec_ok(dnssec_ok)
        .set_version(if g.next().is_multiple_of(20) { 1 } else { 0 });
    // Few client cookies, so they come again.
    let client = *g.pick(&[b"resolver", b"another1", b"3rd-one!"]);
    let cookies = p.cookies.clone().unwrap_or_default();
    let kind = g.pick(&[
        Cookie::None,
        Cookie::Client,
        Cookie::Valid,
        Cookie::Valid,
        Cookie::Stale,
        Cookie::Foreign,
        Cookie::Malformed,
    ]);
    let data = match kind {
        Cookie::None => None,
        Cookie::Client => Some(client.to_vec()),
        Cookie::Valid => Some(cookies.answer(&client, ip, (unix - 600) as u32).to_vec()),
        Cookie::Stale => Some(cookies.answer(&client, ip, (unix - 7200) as u32).to_vec()),
        Cookie::Foreign => Some([&client[..], &[9u8; 12][..]].concat()),
        Cookie::Malformed => Some(client[..5].to_vec()),
    };
    if let Some(d) = data {
        e.options_mut().insert(EdnsOption::Unknown(10, d));
    }
    let mut tally = vec![Tally::Cookie(kind)];
    if dnssec_ok {
        tally.push(Tally::DnssecOk);
    }
    if name.starts_with("big") && t == RecordType::TXT {
        tally.push(Tally::Big);
    }
    m.set_edns(e);
    (m.to_vec().expect("encodes"), tally)
}

/// The replay's answer to any EDNS query (any size, DO, cookies of every
/// kind, from several addresses at several times) is the full path's,
/// byte for byte: the server cookie too, made from the same client
/// cookie, address and time. Every kind of query that may be replayed
/// is (a client cookie alone or with a valid server cookie, DO, an answer
/// over 512 bytes to a client that takes it); with cookies off, the
/// option is ignored alike.
#[test]
fn edns_replies_replayed_equal_the_full_paths_byte_for_byte() {
    let v = Arc::new(view());
    let peers: [SocketAddr; 3] = [
        "198.51.100.7:4000".parse().expect("peer"),
        "203.0.113.9:53".parse().expect("peer"),
        "[2001:db8::1]:5353".parse().expect("peer"),
    ];
    for cookies_on in [true, false] {
        let mut p = policy(0);
        if !cookies_on {
            p.cookies = None;
        }
        let p = Arc::new(p);
        let mut g = Gen(0x5eed_1e55_d0d0_cafe);
        let mut replayed: HashMap<Tally, u64> = HashMap::new();
        let n = 4000;
        for i in 0..n {
            let peer = g.pick(&peers);
            let unix = 1_700_000_000 + g.next() % 3000;
            let c = Ctx {
                peer,
                unix,
                ..cx(&v, &p)
            };
            let (bytes, tally) = random_query(&mut g, &p, peer.ip(), unix);
            let turn = v.zones[0].zone.fleet[0]
                .turn
                .load(std::sync::atomic::Ordering::Relaxed);
            let before = REPLAYED.with(|n| n.get());
            let fast = udp(&bytes, &v, &p, &c);
            let full = handle(
                &bytes,
                &Ctx {
                    turn: Some(turn),
                    ..c
                },
            );
            assert_eq!(fast, full, "query {i}: {:?}", Message::from_vec(&bytes));
            if REPLAYED.with(|n| n.get()) > before {
                for t in tally {
                    *replayed.entry(t).or_default() += 1;
                }
            }
        }
        let mut kinds = vec![Cookie::None, Cookie::Client, Cookie::Valid];
        if !cookies_on {
            // Ignored, the option is no reason to go the full way.
            kinds.extend([Cookie::Stale, Cookie::Foreign, Cookie::Malformed]);
        }
        let tallies = kinds
            .into_iter()
            .map(Tally::Cookie)
            .chain([Tally::DnssecOk, Tally::Big]);
        for t in tallies {
            assert!(
                replayed.get(&t).is_some_and(|&n| n >= 5),
                "{t:?}: {replayed:?}"
            );
        }
        if cookies_on {
            for k in [Cookie::Stale, Cookie::Foreign, Cookie::Malformed] {
                let t = Tally::Cookie(k);
                assert_eq!(replayed.get(&t), None, "{k:?} goes the full way");
            }
        }
    }
}

/// The rate limit over replayed EDNS answers: a client that returns
/// levee's server cookie is never limited, one with a client cookie alone
/// is, and its slipped answer is the full path's (TC, the question, the
/// OPT with the cookie).
#[test]
fn replayed_edns_answers_are_limited_unless_the_cookie_proves_the_client() {
    let (v, p) = (Arc::new(view()), Arc::new(policy(1)));
    let c = cx(&v, &p);
    let cookies = p.cookies.as_ref().expect("cookies on");
    let asking = |data: &[u8]| {
        let mut m = query("mail.example.org", RecordType::A);
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.options_mut()
            .insert(EdnsOption::Unknown(10, data.to_vec()));
        m.set_edns(e);
        m.to_vec().expect("encodes")
    };
    let proven = asking(&cookies.answer(b"clientck", c.peer.ip(), c.unix as u32 - 60));
    let before = REPLAYED.with(|n| n.get());
    for _ in 0..8 {
        let m = one(udp(&proven, &v, &p, &c));
        assert!(!m.truncated() && m.answers().len() == 1);
    }
    assert!(REPLAYED.with(|n| n.get()) - before >= 7, "replayed");
    let unproven = asking(b"clientck");
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let r = udp(&unproven, &v, &p, &c);
        outcomes.push(verdict(&r));
        if let (Reply::One(b), "slipped") = (&r, verdict(&r)) {
            // The full path's slip of the same query.
            let full = match handle(&unproven, &Ctx { tcp: true, ..c }) {
                Reply::One(f) => Message::from_vec(&f).expect("valid"),
                other => panic!("{other:?}"),
            };
            let slipped = crate::answer::truncated(full).to_vec().expect("encodes");
            assert_eq!(*b, slipped);
        }
    }
    assert!(outcomes.contains(&"dropped"), "{outcomes:?}");
    assert!(outcomes.contains(&"slipped"), "{outcomes:?}");
}
