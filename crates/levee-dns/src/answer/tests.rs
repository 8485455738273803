use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::*;
use crate::live::{LiveSet, Seen};
use crate::view::{Journal, View, ZoneView};
use crate::zone::Zone;

const CONFIG: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
    [fleet]\nname = \"f\"\nredis = \"redis://127.0.0.1\"\n\
    [dns]\nlisten = \"127.0.0.1:5353\"\n[[dns.zone]]\nname = \"example.org\"\nns = \"ns1.example.org\"\n\
    secondaries = \"192.0.2.53\"\n\
    records = [\"@ MX 10 mail\", \"mail A 192.0.2.1\", \"alias CNAME mail\", \"out CNAME www.example.net.\", \
    \"a.b TXT hello\", \"big TXT \\\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\\\"\"]\n\
    [[dns.zone.fleet]]\nname = \"www\"\nmax_answers = 2\n";

pub(crate) fn view() -> View {
    let config = levee_config::parse(CONFIG, "t.toml".as_ref()).expect("valid config");
    let mut dns = config.dns.expect("dns");
    // Forty TXT strings make an answer too big for 512 bytes.
    let big = dns.zones[0]
        .records
        .iter_mut()
        .find(|r| r.owner.starts_with("big"))
        .expect("big");
    big.data = vec![big.data.clone(); 8].join(" ");
    let zone = Zone::build(&dns.zones[0], &[]).expect("zone");
    let public: Vec<Vec<std::net::IpAddr>> = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        .iter()
        .map(|a| vec![a.parse().expect("ip")])
        .collect();
    let seen: Vec<Seen<'_>> = public
        .iter()
        .enumerate()
        .map(|(i, p)| Seen {
            instance: ["a", "b", "c"][i],
            fresh: true,
            serving: true,
            drained: false,
            public: p,
            weight: 1,
            healthy: vec![Some(true)],
        })
        .collect();
    let live = Arc::new(LiveSet::select(&seen, &|_| (None, None)));
    let mut v = View {
        zones: vec![ZoneView {
            soa: zone.soa(42),
            zone,
            serial: 42,
            live: vec![live],
            journal: Arc::new(Journal::default()),
        }],
    };
    v.sort();
    v
}

pub(crate) fn policy(rate: u32) -> Policy {
    Policy {
        max_udp: 1232,
        cookies: Some(crate::cookie::Cookies::new()),
        rrl: crate::rrl::Rrl::new(&levee_config::Rrl {
            rate,
            burst: rate.max(1),
            slip: 2,
            ..Default::default()
        }),
        geo: None,
        keys: Vec::new(),
    }
}

pub(crate) fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(0x1234).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
    m
}

fn ask_with(v: &View, p: &Policy, m: &Message, tcp: bool, peer: &str) -> Option<Message> {
    let bytes = m.to_vec().expect("encodes");
    let cx = Ctx {
        view: v,
        policy: p,
        peer: peer.parse::<SocketAddr>().expect("peer"),
        tcp,
        unix: 1_700_000_000,
        now: Instant::now(),
        turn: None,
    };
    match handle(&bytes, &cx) {
        Reply::One(b) => Some(Message::from_vec(&b).expect("a valid answer")),
        Reply::Many(_) => panic!("a transfer"),
        Reply::Nothing => None,
    }
}

fn ask(m: &Message) -> Message {
    ask_with(&view(), &policy(0), m, false, "198.51.100.7:4000").expect("an answer")
}

fn data(m: &Message) -> Vec<String> {
    m.answers().iter().map(|r| r.data().to_string()).collect()
}

#[test]
fn static_records_are_answered_with_the_name_as_asked() {
    let r = ask(&query("MAIL.Example.org.", RecordType::A));
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.authoritative() && !r.recursion_available() && r.recursion_desired());
    assert_eq!(r.id(), 0x1234);
    assert_eq!(data(&r), ["192.0.2.1"]);
    assert_eq!(r.answers()[0].name().to_string(), "MAIL.Example.org.");
    assert!(
        r.name_servers().is_empty() && r.additionals().is_empty(),
        "minimal"
    );
}

#[test]
fn negative_answers_carry_the_soa() {
    let r = ask(&query("nope.example.org.", RecordType::A));
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    assert_eq!(r.name_servers()[0].record_type(), RecordType::SOA);
    assert_eq!(r.name_servers()[0].ttl(), 300);
    // A name with data of another type, and an empty non-terminal: NODATA.
    for name in ["mail.example.org.", "b.example.org."] {
        let r = ask(&query(name, RecordType::AAAA));
        assert_eq!(r.response_code(), ResponseCode::NoError, "{name}");
        assert!(r.answers().is_empty());
        assert_eq!(r.name_servers().len(), 1);
    }
}

#[test]
fn cnames_are_followed_within_the_zone() {
    let r = ask(&query("alias.example.org.", RecordType::A));
    assert_eq!(data(&r), ["mail.example.org.", "192.0.2.1"]);
    let r = ask(&query("out.example.org.", RecordType::A));
    assert_eq!(
        (r.response_code(), data(&r)),
        (ResponseCode::NoError, vec!["www.example.net.".to_owned()])
    );
    let r = ask(&query("alias.example.org.", RecordType::CNAME));
    assert_eq!(data(&r), ["mail.example.org."]);
}

#[test]
fn fleet_records_rotate_within_max_answers() {
    let v = view();
    let p = policy(0);
    let firsts: Vec<String> = (0..3)
        .map(|_| {
            let r = ask_with(
                &v,
                &p,
                &query("www.example.org.", RecordType::A),
                false,
                "198.51.100.7:1",
            )
            .expect("answer");
            assert_eq!(r.answers().len(), 2);
            assert_eq!(r.answers()[0].ttl(), 30);
            data(&r)[0].clone()
        })
        .collect();
    assert_eq!(firsts, ["192.0.2.10", "192.0.2.11", "192.0.2.12"]);
    let r = ask_with(
        &v,
        &p,
        &query("www.example.org.", RecordType::AAAA),
        false,
        "198.51.100.7:1",
    )
    .expect("answer");
    assert!(r.answers().is_empty() && r.response_code() == ResponseCode::NoError);
}

#[test]
fn no_recursion_and_other_zones_are_refused() {
    for (name, class) in [
        ("www.example.net.", DNSClass::IN),
        ("example.org.", DNSClass::CH),
        (".", DNSClass::IN),
    ] {
        let mut m = query(name, RecordType::A);
        m.queries_mut()[0].set_query_class(class);
        let r = ask(&m);
        assert_eq!(r.response_code(), ResponseCode::Refused, "{name}");
        assert!(!r.authoritative() && r.answers().is_empty());
    }
}

#[test]
fn any_gets_one_small_hinfo() {
    let r = ask(&query("example.org.", RecordType::ANY));
    assert_eq!(r.answers().len(), 1);
    assert!(matches!(r.answers()[0].data(), RData::HINFO(h) if h.cpu() == b"RFC8482"));
}

#[test]
fn malformed_input_gets_formerr_or_nothing() {
    let v = view();
    let p = policy(0);
    let cx = Ctx {
        view: &v,
        policy: &p,
        peer: "198.51.100.7:1".parse().expect("peer"),
        tcp: false,
        unix: 0,
        now: Instant::now(),
        turn: None,
    };
    assert_eq!(handle(b"", &cx), Reply::Nothing);
    assert_eq!(handle(b"\x12\x34\x01", &cx), Reply::Nothing);
    let Reply::One(b) = handle(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www",
        &cx,
    ) else {
        panic!("FORMERR expected");
    };
    let r = Message::from_vec(&b).expect("parses");
    assert_eq!((r.id(), r.response_code()), (0x1234, ResponseCode::FormErr));
    // A response (QR set) is never answered: no loops between servers.
    let mut m = query("www.example.org.", RecordType::A);
    m.set_message_type(MessageType::Response);
    assert!(ask_with(&v, &p, &m, false, "198.51.100.7:1").is_none());
    // Two questions; an update.
    let mut m = query("www.example.org.", RecordType::A);
    m.add_query(Query::query(
        Name::from_ascii("mail.example.org.").expect("n"),
        RecordType::A,
    ));
    assert_eq!(ask(&m).response_code(), ResponseCode::FormErr);
    let mut m = query("example.org.", RecordType::SOA);
    m.set_op_code(OpCode::Update);
    assert_eq!(ask(&m).response_code(), ResponseCode::NotImp);
}

#[test]
fn edns_versions_sizes_and_truncation() {
    let mut m = query("big.example.org.", RecordType::TXT);
    let r = ask(&m);
    assert!(
        r.truncated() && r.answers().is_empty(),
        "over 512 bytes without EDNS"
    );
    let mut e = Edns::new();
    e.set_max_payload(4096);
    m.set_edns(e.clone());
    let r = ask(&m);
    assert!(!r.truncated() && r.answers().len() == 1);
    assert_eq!(r.extensions().as_ref().map(|e| e.max_payload()), Some(1232));
    assert_eq!(
        r.extensions().as_ref().map(|e| e.flags().dnssec_ok),
        Some(false)
    );
    // RFC 3225: DO comes back as asked.
    let mut asked = e.clone();
    asked.set_dnssec_ok(true);
    m.set_edns(asked);
    let r = ask(&m);
    assert_eq!(
        r.extensions().as_ref().map(|e| e.flags().dnssec_ok),
        Some(true)
    );
    let v = view();
    let over_tcp = ask_with(
        &v,
        &policy(0),
        &query("big.example.org.", RecordType::TXT),
        true,
        "198.51.100.7:1",
    )
    .expect("answer");
    assert!(!over_tcp.truncated());
    e.set_version(1);
    m.set_edns(e);
    // 16 on the wire: BADVERS (hickory reads the number back as BADSIG,
    // TSIG's name for the same code).
    assert_eq!(u16::from(ask(&m).response_code()), 16);
}

#[test]
fn a_flood_from_one_prefix_is_limited_but_a_cookie_exempts() {
    let v = view();
    let p = policy(3);
    let q = query("mail.example.org.", RecordType::A);
    let answers: Vec<Option<Message>> = (0..7)
        .map(|_| ask_with(&v, &p, &q, false, "203.0.113.9:53"))
        .collect();
    assert!(
        answers[..3]
            .iter()
            .all(|a| a.as_ref().is_some_and(|m| !m.truncated()))
    );
    let slipped = answers[3..]
        .iter()
        .filter(|a| a.as_ref().is_some_and(|m| m.truncated()))
        .count();
    let dropped = answers[3..].iter().filter(|a| a.is_none()).count();
    assert_eq!((slipped, dropped), (2, 2));
    // TCP is never limited.
    assert!(ask_with(&v, &p, &q, true, "203.0.113.9:53").is_some_and(|m| m.answers().len() == 1));
    // A client that returns levee's cookie has proved its address.
    let mut m = q.clone();
    let mut e = Edns::new();
    e.options_mut()
        .insert(EdnsOption::Unknown(10, b"clientck".to_vec()));
    m.set_edns(e);
    let ip = "203.0.113.77".parse().expect("ip");
    let server = p
        .cookies
        .as_ref()
        .expect("cookies")
        .answer(b"clientck", ip, 1_700_000_000);
    let mut e = Edns::new();
    e.options_mut()
        .insert(EdnsOption::Unknown(10, server.to_vec()));
    m.set_edns(e);
    for _ in 0..10 {
        let r = ask_with(&v, &p, &m, false, "203.0.113.77:53").expect("never limited");
        assert!(!r.truncated());
        let cookie = r
            .extensions()
            .as_ref()
            .and_then(|e| e.option(EdnsCode::Cookie).cloned());
        assert!(
            matches!(cookie, Some(EdnsOption::Unknown(10, d)) if d.len() == 24 && d[..8] == *b"clientck")
        );
    }
}

#[test]
fn transfers_only_to_secondaries_over_tcp() {
    let v = view();
    let p = policy(0);
    let q = query("example.org.", RecordType::AXFR);
    let r = ask_with(&v, &p, &q, true, "198.51.100.7:1").expect("answer");
    assert_eq!(r.response_code(), ResponseCode::Refused);
    let r = ask_with(&v, &p, &q, false, "192.0.2.53:1").expect("answer");
    assert_eq!(r.response_code(), ResponseCode::NotImp, "no AXFR over UDP");
    let r = ask_with(
        &v,
        &p,
        &query("mail.example.org.", RecordType::AXFR),
        true,
        "192.0.2.53:1",
    )
    .expect("answer");
    assert_eq!(r.response_code(), ResponseCode::Refused, "not the apex");
    let r = ask_with(&v, &p, &q, true, "192.0.2.53:1").expect("answer");
    let types: Vec<RecordType> = r.answers().iter().map(|a| a.record_type()).collect();
    assert_eq!(types.first(), Some(&RecordType::SOA));
    assert_eq!(types.last(), Some(&RecordType::SOA));
    // NS, MX, A, CNAME x2, TXT x2, and the three fleet addresses.
    assert_eq!(types.len(), 2 + 1 + 1 + 1 + 2 + 2 + 3, "{types:?}");
}
