use std::collections::HashMap;
use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

struct Member {
    name: &'static str,
    public: Vec<IpAddr>,
    fresh: bool,
    drained: bool,
    healthy: bool,
    weight: u32,
}

fn m(name: &'static str, addr: &str) -> Member {
    Member {
        name,
        public: vec![ip(addr)],
        fresh: true,
        drained: false,
        healthy: true,
        weight: 1,
    }
}

fn set(members: &[Member]) -> LiveSet {
    let seen: Vec<Seen<'_>> = members
        .iter()
        .map(|m| Seen {
            instance: m.name,
            fresh: m.fresh,
            serving: true,
            drained: m.drained,
            public: &m.public,
            weight: m.weight,
            healthy: vec![Some(m.healthy); m.public.len()],
        })
        .collect();
    LiveSet::select(&seen, &|_| (None, None))
}

#[test]
fn only_fresh_healthy_undrained_members_are_in() {
    let mut b = m("b", "192.0.2.2");
    b.healthy = false;
    let mut c = m("c", "192.0.2.3");
    c.drained = true;
    let mut d = m("d", "192.0.2.4");
    d.fresh = false;
    let s = set(&[m("a", "192.0.2.1"), b, c, d, m("e", "2001:db8::5")]);
    assert_eq!(s.mode, Mode::In);
    assert_eq!(s.members, ["a", "e"]);
    assert_eq!(
        s.v4.iter().map(|e| e.ip).collect::<Vec<_>>(),
        [ip("192.0.2.1")]
    );
    assert_eq!(s.v6.len(), 1);
}

#[test]
fn an_empty_set_is_never_answered() {
    // None healthy: every fresh member not drained.
    let mut all: Vec<Member> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        .iter()
        .zip(["a", "b", "c"])
        .map(|(a, n)| Member {
            healthy: false,
            ..m(n, a)
        })
        .collect();
    all[2].drained = true;
    let s = set(&all);
    assert_eq!((s.mode, s.members.len()), (Mode::NoneHealthy, 2));
    // None fresh (Redis lost them, or all were killed): every member.
    for x in &mut all {
        x.fresh = false;
    }
    let s = set(&all);
    assert_eq!((s.mode, s.members.len()), (Mode::NoneFresh, 3));
    assert_eq!(set(&[]), LiveSet::default());
}

#[test]
fn rotation_moves_one_place_per_query_and_follows_weights() {
    let mut members: Vec<Member> = (1..=3)
        .map(|i| m(["a", "b", "c"][i - 1], &format!("192.0.2.{i}")))
        .collect();
    members[2].weight = 2;
    let s = set(&members);
    let mut leaders = HashMap::new();
    for turn in 0..400 {
        let mut out = Vec::new();
        s.choose(false, AnswerOrder::Rotate, 2, turn, None, &mut out);
        assert_eq!(out.len(), 2);
        assert_ne!(out[0], out[1]);
        *leaders.entry(out[0]).or_insert(0) += 1;
    }
    assert_eq!(leaders[&ip("192.0.2.1")], 100);
    assert_eq!(leaders[&ip("192.0.2.3")], 200);
    let mut out = Vec::new();
    s.choose(true, AnswerOrder::Rotate, 2, 0, None, &mut out);
    assert!(out.is_empty(), "no IPv6 address: no AAAA");
}

#[test]
fn weighted_draws_follow_weights_without_repeats() {
    let mut members: Vec<Member> = (1..=4)
        .map(|i| m(["a", "b", "c", "d"][i - 1], &format!("192.0.2.{i}")))
        .collect();
    members[0].weight = 7;
    let s = set(&members);
    let mut first = HashMap::new();
    for turn in 0..10_000 {
        let mut out = Vec::new();
        s.choose(false, AnswerOrder::Weighted, 4, turn, None, &mut out);
        let mut sorted = out.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
        *first.entry(out[0]).or_insert(0) += 1;
    }
    // 7 of 10 on average; the draw is deterministic, the bound generous.
    let heavy = first[&ip("192.0.2.1")];
    assert!((6_000..8_000).contains(&heavy), "{first:?}");
}

#[test]
fn geo_answers_the_clients_country_then_continent_then_all() {
    let members = [
        m("de", "192.0.2.1"),
        m("fr", "192.0.2.2"),
        m("us", "192.0.2.3"),
    ];
    let seen: Vec<Seen<'_>> = members
        .iter()
        .map(|m| Seen {
            instance: m.name,
            fresh: true,
            serving: true,
            drained: false,
            public: &m.public,
            weight: 1,
            healthy: vec![Some(true)],
        })
        .collect();
    let place = |a: IpAddr| match a.to_string().as_str() {
        "192.0.2.1" => (Some(*b"DE"), Some(*b"EU")),
        "192.0.2.2" => (Some(*b"FR"), Some(*b"EU")),
        _ => (Some(*b"US"), Some(*b"NA")),
    };
    let s = LiveSet::select(&seen, &place);
    let ask = |client: Option<Place>| {
        let mut out = Vec::new();
        let narrowed = s.choose(false, AnswerOrder::Rotate, 8, 0, client, &mut out);
        out.sort();
        (out, narrowed)
    };
    assert_eq!(
        ask(Some((Some(*b"DE"), Some(*b"EU")))),
        (vec![ip("192.0.2.1")], true)
    );
    assert_eq!(
        ask(Some((Some(*b"IT"), Some(*b"EU")))),
        (vec![ip("192.0.2.1"), ip("192.0.2.2")], true)
    );
    assert_eq!(ask(Some((Some(*b"JP"), Some(*b"AS")))).0.len(), 3);
    assert_eq!(
        ask(None),
        (
            vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")],
            false
        )
    );
}
