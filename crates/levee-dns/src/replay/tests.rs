use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::RecordType;

use super::*;
use crate::answer::tests::{policy, query, view};

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
/// EDNS (cookies), TCP.
#[test]
fn errors_edns_and_tcp_are_answered_the_full_way() {
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
    let mut e = query("www.example.org", RecordType::A);
    e.set_edns(Edns::new());
    let bytes = e.to_vec().expect("encodes");
    assert!(key(&bytes).is_none(), "an OPT record: the full way");
    assert!(one(udp(&bytes, &v, &p, &c)).extensions().is_some());
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
    let mut kinds = Vec::new();
    for _ in 0..6 {
        kinds.push(match udp(&bytes, &v, &p, &c) {
            Reply::Nothing => "dropped",
            Reply::One(b) => {
                let m = Message::from_vec(&b).expect("valid");
                if m.truncated() {
                    assert!(m.answers().is_empty());
                    assert_eq!(m.queries().len(), 1);
                    "slipped"
                } else {
                    "sent"
                }
            }
            Reply::Many(_) => "many",
        });
    }
    assert_eq!(kinds[0], "sent");
    assert!(kinds.contains(&"dropped"), "{kinds:?}");
    assert!(kinds.contains(&"slipped"), "{kinds:?}");
}
