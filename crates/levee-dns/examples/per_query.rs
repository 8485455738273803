//! The DNS query path alone, for counting instructions per query with
//! callgrind (bench/dns_callgrind.py): bench/dns.py's zone (a fleet record
//! `www` with one live member, a static `mail A`), cookies on and
//! response-rate limiting off as there, and `N` UDP queries for `NAME A`
//! answered as the UDP loop answers them (`replay`: `replay::udp_into`),
//! or always the full way (`full`: `answer::handle`, what every query cost
//! before replies were replayed), with no sockets. The query is `plain`
//! (as dnsperf sends by default: no EDNS), `edns` (an OPT record, as
//! `dnsperf -e` sends) or `cookie` (an OPT record with a COOKIE option: the
//! client cookie and the server cookie levee gave it, as a resolver sends
//! once it has one). Run it with two N: the difference over theirs is the
//! cost of one query, free of start-up and of the kernel.
//!
//!     per_query NAME N [replay|full] [plain|edns|cookie]

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use levee_dns::answer::{Ctx, Policy, Reply, handle};
use levee_dns::live::{LiveSet, Seen};
use levee_dns::view::{Journal, View, ZoneView};
use levee_dns::zone::Zone;

const CONFIG: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
    [fleet]\nname = \"bench\"\nredis = \"redis://127.0.0.1\"\n\
    [dns]\nlisten = \"127.0.0.1:5353\"\nrrl_rate = 0\n[[dns.zone]]\nname = \"example.test\"\nns = \"ns1.example.test\"\n\
    records = [\"ns1 A 127.0.0.53\", \"@ MX 10 mail\", \"mail A 192.0.2.25\", \"@ TXT \\\"v=spf1 -all\\\"\"]\n\
    [[dns.zone.fleet]]\nname = \"www\"\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "www.example.test".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let full = args.next().as_deref() == Some("full");
    let kind = args.next().unwrap_or_else(|| "plain".into());
    let (view, policy) = setup();
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
    let mut bytes = query(&name, &kind, &view, &policy, peer);
    let mut answered = 0u64;
    // The UDP loop's buffer, kept across queries as there.
    let mut out = Vec::with_capacity(4096);
    for i in 0..n {
        // A new id per query, as dnsperf sends.
        bytes[..2].copy_from_slice(&(i as u16).to_be_bytes());
        let cx = Ctx::arriving(&view, &policy, peer, false);
        let sent = if full {
            matches!(handle(&bytes, &cx), Reply::One(r) if r.len() > 12)
        } else {
            levee_dns::replay::udp_into(&bytes, &view, &policy, &cx, &mut out) && out.len() > 12
        };
        answered += u64::from(sent);
    }
    assert_eq!(answered, n, "every query answered");
}

/// bench/dns.py's zone as a View with one live member, and its Policy.
fn setup() -> (Arc<View>, Arc<Policy>) {
    let config = levee_config::parse(CONFIG, "bench.toml".as_ref()).expect("the bench config");
    let dns = config.dns.expect("[dns]");
    let zone = Zone::build(&dns.zones[0], &[]).expect("the bench zone");
    let public = ["127.0.0.1".parse().expect("an address")];
    let seen = [Seen {
        instance: "m0",
        fresh: true,
        serving: true,
        drained: false,
        public: &public,
        weight: 1,
        healthy: vec![Some(true)],
    }];
    let live = Arc::new(LiveSet::select(&seen, &|_| (None, None)));
    let mut view = View {
        zones: vec![ZoneView {
            soa: zone.soa(1),
            zone,
            serial: 1,
            live: vec![live],
            journal: Arc::new(Journal::default()),
        }],
    };
    view.sort();
    let policy = Policy {
        max_udp: 1232,
        cookies: Some(levee_dns::cookie::Cookies::new()),
        rrl: None,
        geo: None,
        keys: Vec::new(),
    };
    (Arc::new(view), Arc::new(policy))
}

/// The query for `name A` of `kind`: plain, edns, or cookie (the server
/// cookie in it asked of levee first, as a resolver has it).
fn query(name: &str, kind: &str, view: &View, policy: &Policy, peer: SocketAddr) -> Vec<u8> {
    let mut q = Message::new();
    q.set_id(1).set_recursion_desired(true);
    q.add_query(Query::query(
        Name::from_ascii(name).expect("a name"),
        RecordType::A,
    ));
    match kind {
        "plain" => {}
        "edns" => {
            q.set_edns(edns(None));
        }
        "cookie" => {
            q.set_edns(edns(Some(b"resolver")));
            let cx = Ctx::arriving(view, policy, peer, false);
            let Reply::One(first) = handle(&q.to_vec().expect("the query encodes"), &cx) else {
                panic!("no answer to the first query");
            };
            let answer = Message::from_vec(&first).expect("the answer decodes");
            let Some(EdnsOption::Unknown(10, both)) = answer
                .extensions()
                .as_ref()
                .and_then(|e| e.option(EdnsCode::Cookie))
            else {
                panic!("no cookie in the answer");
            };
            let both = both.clone();
            q.set_edns(edns(Some(&both)));
        }
        other => panic!("a query kind: plain, edns or cookie, not {other}"),
    }
    q.to_vec().expect("the query encodes")
}

/// An OPT record as resolvers send it: 1232 bytes, and a COOKIE option's
/// data when given.
fn edns(cookie: Option<&[u8]>) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some(c) = cookie {
        e.options_mut().insert(EdnsOption::Unknown(10, c.to_vec()));
    }
    e
}
