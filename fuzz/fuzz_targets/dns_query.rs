//! The DNS server's query handling (`levee_dns::answer::handle`, and over
//! UDP `levee_dns::replay::udp`, which replays stored replies) never panics
//! on any bytes, over UDP or TCP; what it sends is a response with the
//! query's ID, and over UDP no larger than the client may take.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use levee_dns::answer::{Ctx, Policy, Reply, handle};
use levee_dns::live::{LiveSet, Mode};
use levee_dns::view::{Journal, View, ZoneView};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
    [fleet]\nname = \"f\"\nredis = \"redis://127.0.0.1\"\n\
    [dns]\nlisten = \"127.0.0.1:5353\"\nrrl_rate = 0\n\
    [[dns.zone]]\nname = \"example.org\"\nns = \"ns1.example.org\"\nsecondaries = \"127.0.0.1\"\n\
    records = [\"@ MX 10 mail\", \"mail A 192.0.2.1\", \"alias CNAME mail\", \"loop CNAME loop\", \
    \"a.b TXT hello\", \"@ CAA 0 issue \\\"ca.example\\\"\"]\n\
    [[dns.zone.fleet]]\nname = \"www\"\n";

fn setup() -> &'static (Arc<View>, Arc<Policy>) {
    static S: OnceLock<(Arc<View>, Arc<Policy>)> = OnceLock::new();
    S.get_or_init(|| {
        let config = levee_config::parse(CONFIG, "fuzz.toml".as_ref()).expect("valid config");
        let (zones, policy) = levee_dns::load(&config).expect("loads").expect("[dns]");
        let live = LiveSet {
            v4: vec![levee_dns::live::Entry {
                ip: "192.0.2.10".parse().expect("ip"),
                weight: 1,
                place: (None, None),
            }],
            v6: Vec::new(),
            members: vec!["a".into()],
            mode: Mode::In,
        };
        let mut view = View {
            zones: zones
                .into_iter()
                .map(|zone| ZoneView {
                    soa: zone.soa(1),
                    live: vec![Arc::new(live.clone()); zone.fleet.len()],
                    zone,
                    serial: 1,
                    journal: Arc::new(Journal::default()),
                })
                .collect(),
        };
        view.sort();
        (Arc::new(view), Arc::new(policy))
    })
}

fuzz_target!(|data: &[u8]| {
    let (view, policy) = setup();
    let tcp = data.first().is_some_and(|b| b & 1 == 1);
    let peer: SocketAddr = "127.0.0.1:5300".parse().expect("addr");
    let cx = Ctx {
        view: &**view,
        policy: &**policy,
        peer,
        tcp,
        unix: 1_700_000_000,
        now: Instant::now(),
        turn: None,
    };
    let reply = if tcp {
        handle(data, &cx)
    } else {
        levee_dns::replay::udp(data, view, policy, &cx)
    };
    let replies = match reply {
        Reply::Nothing => Vec::new(),
        Reply::One(b) => vec![b],
        Reply::Many(bs) => bs,
    };
    for r in replies {
        assert!(r.len() >= 12);
        assert_eq!(r[..2], data[..2], "the query's ID");
        assert!(r[2] & 0x80 != 0, "a response");
        if !tcp {
            assert!(r.len() <= 1232);
        }
    }
});
