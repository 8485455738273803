//! What counts against a server, and the bound on ejection, over real
//! groups (IP literals, so nothing is resolved).

use std::time::Duration;

use levee_config::{Server, StatusSet, Upstream};
use tokio::time::Instant;

use super::*;
use crate::{AdminState, Affinity, Registry, Status};

fn group(n: usize, edit: impl FnOnce(&mut Upstream)) -> Group {
    let servers = (0..n)
        .map(|i| Server {
            address: format!("127.0.0.{}:80", i + 1),
            weight: 1,
            backup: false,
        })
        .collect();
    let mut cfg = Upstream::new("app", servers);
    cfg.passive.max_fails = 1;
    cfg.passive.fail_timeout = Duration::from_secs(60);
    edit(&mut cfg);
    Group::build(&cfg, &Registry::new()).expect("IP literals need no DNS")
}

fn fail_all(g: &Group, kind: ErrorKind, times: usize) {
    let members = g.members();
    for _ in 0..times {
        for m in &members.list {
            g.observe_error(&m.state, m.addr, kind);
        }
    }
}

fn ejected(g: &Group) -> usize {
    let now = Instant::now();
    g.members()
        .list
        .iter()
        .filter(|m| m.state.status(now, Duration::ZERO) == Status::Ejected)
        .count()
}

#[test]
fn statuses_are_answers_unless_the_upstream_opts_in() {
    let g = group(3, |c| c.passive.max_fails = 3);
    let members = g.members();
    for _ in 0..100 {
        for m in &members.list {
            g.observe_response(&m.state, m.addr, 500, Duration::from_millis(1));
            g.observe_response(&m.state, m.addr, 503, Duration::from_millis(1));
        }
    }
    assert_eq!(ejected(&g), 0, "an application's 5xx ejected a server");

    let g = group(3, |c| {
        c.passive.max_fails = 3;
        c.passive.on_status = StatusSet::of(&[503]);
    });
    let m = &g.members().list[0];
    for _ in 0..3 {
        g.observe_response(&m.state, m.addr, 500, Duration::from_millis(1));
    }
    assert_eq!(ejected(&g), 0, "500 is not in eject_on_status");
    for _ in 0..3 {
        g.observe_response(&m.state, m.addr, 503, Duration::from_millis(1));
    }
    assert_eq!(ejected(&g), 1);
}

#[test]
fn connect_reset_and_timeout_count_a_malformed_head_does_not() {
    for kind in [
        ErrorKind::Connect,
        ErrorKind::ConnectTimeout,
        ErrorKind::Reset,
        ErrorKind::Timeout,
    ] {
        let g = group(2, |_| {});
        let m = &g.members().list[0];
        g.observe_error(&m.state, m.addr, kind);
        assert_eq!(ejected(&g), 1, "{kind:?}");
        assert_eq!(m.state.stats.errors(kind), 1);
    }
    let g = group(2, |_| {});
    fail_all(&g, ErrorKind::Protocol, 10);
    assert_eq!(ejected(&g), 0);
}

#[test]
fn at_most_max_ejected_percent_of_a_group_is_ejected() {
    // Rounded down: 1 of 3, 2 of 4, 5 of 10.
    for (n, most) in [(2, 1), (3, 1), (4, 2), (10, 5)] {
        let g = group(n, |_| {});
        fail_all(&g, ErrorKind::Connect, 5);
        assert_eq!(ejected(&g), most, "{n} servers");
        let now = Instant::now();
        assert!(g.any_usable(&g.members(), now));
    }
    let g = group(10, |c| c.passive.max_ejected_percent = 20);
    fail_all(&g, ErrorKind::Reset, 5);
    assert_eq!(ejected(&g), 2);
    let g = group(3, |c| c.passive.max_ejected_percent = 0);
    fail_all(&g, ErrorKind::Reset, 5);
    assert_eq!(ejected(&g), 0);
}

#[test]
fn the_only_server_is_never_ejected_whatever_the_share() {
    let g = group(1, |c| c.passive.max_ejected_percent = 100);
    fail_all(&g, ErrorKind::Connect, 50);
    assert_eq!(ejected(&g), 0);
    let members = g.members();
    assert_eq!(
        g.pick(&members, Affinity::None, &[], Instant::now()),
        Some(0)
    );

    // Nor the last usable one of a larger group.
    let g = group(3, |c| c.passive.max_ejected_percent = 100);
    fail_all(&g, ErrorKind::Connect, 50);
    assert_eq!(ejected(&g), 2);
}

#[test]
fn servers_down_by_active_checks_count_towards_the_share() {
    let g = group(4, |_| {});
    let members = g.members();
    let now = Instant::now();
    members.list[0].state.set_check_up(false, now);
    fail_all(&g, ErrorKind::Connect, 5);
    assert_eq!(ejected(&g), 1, "one down and one ejected make half of four");
}

#[test]
fn drained_and_disabled_servers_do_not_lift_the_last_usable_one_out() {
    let g = group(3, |c| c.passive.max_ejected_percent = 100);
    let members = g.members();
    members.list[0].state.set_admin(AdminState::Draining);
    members.list[1].state.set_admin(AdminState::Disabled);
    fail_all(&g, ErrorKind::Timeout, 10);
    assert_eq!(ejected(&g), 0);
}

/// Workers failing different servers at the same moment still respect the
/// bound: the decision and the ejection happen under one lock.
#[test]
fn concurrent_failures_respect_the_bound() {
    let g = std::sync::Arc::new(group(8, |_| {}));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let g = g.clone();
            std::thread::spawn(move || {
                let m = g.members().list[i].clone();
                for _ in 0..200 {
                    g.observe_error(&m.state, m.addr, ErrorKind::Connect);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(ejected(&g), 4);
}
