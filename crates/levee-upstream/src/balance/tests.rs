//! Each algorithm over real groups: exact weights, ejection and backups,
//! least connections, latency, consistent-hash movement, sticky cookies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use levee_config::{Balance, HashKey, Server, Upstream};
use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::{Group, Registry};

fn server(i: usize, weight: u32, backup: bool) -> Server {
    Server {
        address: format!("127.0.0.{}:80", i + 1),
        weight,
        backup,
    }
}

fn group(balance: Balance, servers: Vec<Server>) -> Group {
    let cfg = Upstream {
        balance,
        ..Upstream::new("app", servers)
    };
    Group::build(&cfg, &Registry::new()).expect("IP literals need no DNS")
}

fn weighted(weights: &[u32]) -> Group {
    let servers = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| server(i, w, false))
        .collect();
    group(Balance::RoundRobin, servers)
}

fn picks(g: &Group, n: usize) -> Vec<usize> {
    let members = g.members();
    let now = Instant::now();
    (0..n)
        .map(|_| {
            g.pick(&members, Affinity::None, &[], now)
                .expect("a server")
        })
        .collect()
}

#[test]
fn interleaves_heavy_servers() {
    let g = weighted(&[5, 1, 1]);
    assert_eq!(picks(&g, 7), vec![0, 0, 1, 0, 2, 0, 0]);
}

proptest! {
    #[test]
    fn honours_weights_exactly_over_a_cycle(weights in proptest::collection::vec(1u32..20, 1..8)) {
        let g = weighted(&weights);
        let total: u32 = weights.iter().sum();
        let mut counts = vec![0u32; weights.len()];
        for i in picks(&g, total as usize) {
            counts[i] += 1;
        }
        prop_assert_eq!(counts, weights);
    }
}

#[test]
fn unusable_and_tried_servers_are_skipped() {
    let g = weighted(&[1, 1, 1]);
    let members = g.members();
    let now = Instant::now();
    members.list[1].state.set_admin(crate::AdminState::Draining);
    for _ in 0..10 {
        let i = g.pick(&members, Affinity::None, &[0], now);
        assert_eq!(i, Some(2));
    }
    members.list[2].state.set_check_up(false, now);
    assert_eq!(g.pick(&members, Affinity::None, &[0], now), None);
    assert_eq!(g.pick(&members, Affinity::None, &[], now), Some(0));
}

#[test]
fn backups_only_when_no_primary_is_usable() {
    let g = group(
        Balance::RoundRobin,
        vec![server(0, 1, false), server(1, 1, false), server(2, 1, true)],
    );
    let members = g.members();
    let now = Instant::now();
    assert!(picks(&g, 20).iter().all(|&i| i != 2));
    members.list[0].state.set_check_up(false, now);
    assert!(picks(&g, 20).iter().all(|&i| i == 1));
    members.list[1].state.set_admin(crate::AdminState::Disabled);
    assert!(picks(&g, 5).iter().all(|&i| i == 2));
    members.list[2].state.set_admin(crate::AdminState::Disabled);
    // No server usable: panic mode takes the one that is only down, never
    // a disabled one.
    assert!(picks(&g, 5).iter().all(|&i| i == 0));
    members.list[0].state.set_admin(crate::AdminState::Draining);
    assert_eq!(g.pick(&members, Affinity::None, &[], now), None);
}

#[test]
fn slow_start_gives_a_returning_server_a_small_share() {
    let g = Group::build(
        &Upstream {
            slow_start: std::time::Duration::from_secs(100),
            ..Upstream::new("app", vec![server(0, 1, false), server(1, 1, false)])
        },
        &Registry::new(),
    )
    .expect("group");
    let members = g.members();
    let now = Instant::now();
    members.list[1].state.set_check_up(false, now);
    members.list[1].state.set_check_up(true, now);
    let to_new = picks(&g, 110).iter().filter(|&&i| i == 1).count();
    assert_eq!(to_new, 10, "10% of its weight at the start of slow start");
}

#[test]
fn least_conn_prefers_the_idlest_per_weight() {
    let g = group(
        Balance::LeastConn,
        vec![
            server(0, 1, false),
            server(1, 2, false),
            server(2, 1, false),
        ],
    );
    let members = g.members();
    let now = Instant::now();
    let _busy: Vec<_> = (0..3).map(|_| members.list[0].state.lease()).collect();
    let _also: Vec<_> = (0..3).map(|_| members.list[1].state.lease()).collect();
    // Loads (active+1)/weight: 4, 2, 1.
    assert_eq!(g.pick(&members, Affinity::None, &[], now), Some(2));
    let _more: Vec<_> = (0..2).map(|_| members.list[2].state.lease()).collect();
    // Now 4, 2, 3.
    assert_eq!(g.pick(&members, Affinity::None, &[], now), Some(1));
}

/// Server 0 answers in 200 ms, server 1 in 2 ms.
fn slow_0_fast_1(members: &Members, now: Instant) {
    members.list[0]
        .state
        .observe_latency(Duration::from_millis(200), now);
    members.list[1]
        .state
        .observe_latency(Duration::from_millis(2), now);
}

#[test]
fn latency_avoids_the_slow_server() {
    let g = group(
        Balance::Latency,
        vec![server(0, 1, false), server(1, 1, false)],
    );
    let members = g.members();
    slow_0_fast_1(&members, Instant::now());
    // With a request in flight on the slow server it is never probed.
    let _busy = members.list[0].state.lease();
    assert!(picks(&g, 200).iter().all(|&i| i == 1));
    drop(_busy);
    // Idle, it is probed about one pick in PROBE_ONE_IN.
    let n = 64 * PROBE_ONE_IN as usize;
    let to_slow = picks(&g, n).iter().filter(|&&i| i == 0).count();
    assert!(
        (16..=160).contains(&to_slow),
        "{to_slow} of {n} picks probed the slow server"
    );
}

/// P2C on the EWMA alone shut a server out for good once it was slow: it
/// never got the sample that would show it was fast again (0 of 6,000
/// requests in issue 12). The estimate's decay and the probes let it back.
#[test]
fn a_server_slow_for_a_moment_gets_a_fair_share_again_within_seconds() {
    let g = group(
        Balance::Latency,
        vec![server(0, 1, false), server(1, 1, false)],
    );
    let members = g.members();
    let mut now = Instant::now();
    // A moment of slowness.
    for _ in 0..50 {
        slow_0_fast_1(&members, now);
        now += Duration::from_millis(1);
    }
    // From now on both answer in 2 ms; one request per millisecond.
    let mut run = |ms: u64| -> usize {
        let mut to_0 = 0;
        for _ in 0..ms {
            let i = g
                .pick(&members, Affinity::None, &[], now)
                .expect("a server");
            members.list[i]
                .state
                .observe_latency(Duration::from_millis(2), now);
            to_0 += usize::from(i == 0);
            now += Duration::from_millis(1);
        }
        to_0
    };
    let at_first = run(100);
    assert!(
        at_first < 30,
        "{at_first} of the first 100 requests went to the server that was slow"
    );
    run(3_000);
    let share = run(3_000);
    assert!(
        (1_050..=1_950).contains(&share),
        "{share} of 3,000 requests 3 s after recovery"
    );
}

fn hash_group(n: usize) -> Group {
    group(
        Balance::Hash(HashKey::Uri),
        (0..n).map(|i| server(i, 1, false)).collect(),
    )
}

fn owners(g: &Group, keys: usize) -> Vec<SocketAddr> {
    let members = g.members();
    let now = Instant::now();
    (0..keys)
        .map(|k| {
            let h = hash::key(format!("/object/{k}").as_bytes());
            let i = g
                .pick(&members, Affinity::Key(h), &[], now)
                .expect("a server");
            members.list[i].addr
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Removing one of N servers moves only the keys it owned, which are
    /// about 1/N of all keys.
    #[test]
    fn consistent_hashing_moves_about_one_nth(n in 3usize..12, removed in 0usize..12) {
        let removed = removed % n;
        let before = owners(&hash_group(n), 4000);
        let survivors: Vec<Server> = (0..n).filter(|&i| i != removed).map(|i| server(i, 1, false)).collect();
        let after = owners(&group(Balance::Hash(HashKey::Uri), survivors), 4000);
        let gone: SocketAddr = server(removed, 1, false).address.parse().expect("literal");
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                prop_assert_eq!(*b, gone, "a key moved between two surviving servers");
                moved += 1;
            }
        }
        let share = moved as f64 / 4000.0;
        let ideal = 1.0 / n as f64;
        prop_assert!(share > ideal * 0.5 && share < ideal * 1.6, "moved {share:.3}, ideal {ideal:.3}");
    }
}

#[test]
fn a_down_server_lends_its_keys_and_gets_them_back() {
    let g = hash_group(4);
    let before = owners(&g, 2000);
    let members = g.members();
    members.list[2].state.set_check_up(false, Instant::now());
    let during = owners(&g, 2000);
    for (b, d) in before.iter().zip(&during) {
        if *b != members.list[2].addr {
            assert_eq!(b, d);
        } else {
            assert_ne!(*d, members.list[2].addr);
        }
    }
    members.list[2].state.set_check_up(true, Instant::now());
    assert_eq!(owners(&g, 2000), before);
}

#[test]
fn sticky_follows_the_cookie_while_its_server_is_usable() {
    let g = group(
        Balance::Sticky {
            cookie: "s".into(),
            attributes: Default::default(),
        },
        (0..3).map(|i| server(i, 1, false)).collect(),
    );
    let members = g.members();
    let now = Instant::now();
    let id = members.list[2].cookie;
    for _ in 0..10 {
        assert_eq!(
            g.pick(&members, Affinity::Sticky(Some(id)), &[], now),
            Some(2)
        );
    }
    members.list[2].state.set_admin(crate::AdminState::Disabled);
    let other = g.pick(&members, Affinity::Sticky(Some(id)), &[], now);
    assert!(matches!(other, Some(0 | 1)));
    // An unknown id falls back to round robin.
    assert!(
        g.pick(&members, Affinity::Sticky(Some(42)), &[], now)
            .is_some()
    );
}

#[test]
fn states_survive_a_rebuild_until_the_server_changes() {
    let registry = Registry::new();
    let cfg = Upstream::new("app", vec![server(0, 1, false), server(1, 1, false)]);
    let g1 = Group::build(&cfg, &registry).expect("group");
    g1.members().list[0]
        .state
        .set_admin(crate::AdminState::Draining);
    g1.members().list[1].state.set_weight_override(Some(9));
    let mut changed = cfg.clone();
    changed.servers[1].weight = 3;
    let g2 = Group::build(&changed, &registry).expect("group");
    let m2 = g2.members();
    assert!(Arc::ptr_eq(&m2.list[0].state, &g1.members().list[0].state));
    assert_eq!(m2.list[0].state.admin(), crate::AdminState::Draining);
    // The config changed server 1: its override is gone.
    assert_eq!(m2.list[1].state.weight_override(), None);
}

/// The cost of choosing a server, 1 vs 3 servers (run with
/// `cargo test --release -p levee-upstream pick_cost -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn pick_cost() {
    for n in [1usize, 3] {
        for balance in [Balance::RoundRobin, Balance::LeastConn, Balance::Latency] {
            let g = group(
                balance.clone(),
                (0..n).map(|i| server(i, 1, false)).collect(),
            );
            let members = g.members();
            let rounds = 5_000_000u32;
            let started = std::time::Instant::now();
            let mut sum = 0usize;
            for _ in 0..rounds {
                let now = Instant::now();
                sum += g
                    .pick(&members, Affinity::None, &[], now)
                    .unwrap_or_default();
            }
            let ns = started.elapsed().as_nanos() as f64 / f64::from(rounds);
            println!("{n} server(s), {balance:?}: {ns:.1} ns per pick (checksum {sum})");
        }
    }
}

/// Every server down by active checks: panic mode spreads requests over
/// all of them instead of none, and counts each such pick.
#[test]
fn no_usable_server_is_panic_mode_over_every_routable_one() {
    let g = weighted(&[1, 1, 1]);
    let members = g.members();
    let now = Instant::now();
    for m in &members.list {
        m.state.set_check_up(false, now);
    }
    members.list[2].state.set_admin(crate::AdminState::Disabled);
    let chosen = picks(&g, 40);
    assert_eq!(chosen.iter().filter(|&&i| i == 0).count(), 20);
    assert_eq!(chosen.iter().filter(|&&i| i == 1).count(), 20);
    assert_eq!(g.stats.panic.load(Relaxed), 40);
    // A retry in panic mode goes to another routable server.
    assert_eq!(g.pick(&members, Affinity::None, &[0], now), Some(1));
    assert_eq!(g.pick(&members, Affinity::None, &[0, 1], now), None);

    // One usable server ends panic mode; a request that has tried it gets
    // no down server instead.
    members.list[1].state.set_check_up(true, now);
    let before = g.stats.panic.load(Relaxed);
    assert!(picks(&g, 10).iter().all(|&i| i == 1));
    assert_eq!(g.pick(&members, Affinity::None, &[1], now), None);
    assert_eq!(g.stats.panic.load(Relaxed), before);
}

#[test]
fn panic_mode_keeps_affinity_and_prefers_primaries() {
    let g = hash_group(4);
    let members = g.members();
    let now = Instant::now();
    let key = hash::key(b"/some/object");
    let owner = g.pick(&members, Affinity::Key(key), &[], now);
    for m in &members.list {
        m.state.set_check_up(false, now);
    }
    assert_eq!(g.pick(&members, Affinity::Key(key), &[], now), owner);

    let g = group(
        Balance::RoundRobin,
        vec![server(0, 1, false), server(1, 1, true)],
    );
    let members = g.members();
    members.list[0].state.set_check_up(false, now);
    assert!(
        picks(&g, 5).iter().all(|&i| i == 1),
        "a usable backup first"
    );
    assert_eq!(g.stats.panic.load(Relaxed), 0);
    members.list[1].state.set_check_up(false, now);
    assert!(picks(&g, 5).iter().all(|&i| i == 0), "then the primary");
    assert_eq!(g.stats.panic.load(Relaxed), 5);
}
