//! Server actions for the whole fleet, end to end with three members
//! (fleet/common.rs), a real redis-server and two real nginx servers:
//! `levee ctl drain UPSTREAM SERVER --fleet` through one member drains the
//! server on every member that has it (no new request reaches it through
//! any of them), prints one row per member, and enable and weight follow
//! the same way.

#[path = "fleet/common.rs"]
mod common;
mod support;

use std::time::Duration;

use common::{Member, ping_until_heard, promo};
use support::{Nginx, Redis, admin_request, poll};

/// The state and weight override `m` reports for `server` of `app`.
fn server_state(m: &Member, server: &str) -> (String, serde_json::Value) {
    let (status, text) = admin_request(m.admin, "GET", "/upstreams/app", "");
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let s = v["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["address"] == server))
        .unwrap_or_else(|| panic!("{server} not in {v}"))
        .clone();
    (
        s["admin"].as_str().unwrap_or_default().to_owned(),
        s["weight_override"].clone(),
    )
}

fn hits(n: &Nginx) -> usize {
    n.settled_entries()
        .iter()
        .filter(|e| e.get("uri").starts_with("/app/"))
        .count()
}

#[test]
fn a_drain_through_one_member_reaches_every_member_that_has_the_server() {
    let redis = Redis::start();
    let (a, b) = (Nginx::start_default(), Nginx::start_default());
    let fleet = format!(
        "name = \"t\"\nredis = \"{}\"\ntimeout = \"500ms\"",
        redis.url()
    );
    // m2 has no server b: it answers "not here".
    let members: Vec<Member> = (0..3)
        .map(|n| {
            let servers = match n {
                2 => format!("\"{}\"", a.addr()),
                _ => format!("\"{}\", \"{}\"", a.addr(), b.addr()),
            };
            let tables = format!(
                "{}\n[[route]]\npath = \"/app/\"\nproxy = \"app\"\n\n[upstream.app]\nservers = [{servers}]\n",
                promo("10/s", 10)
            );
            Member::start(n, &fleet, &tables)
        })
        .collect();
    for m in &members {
        assert!(
            m.wait_redis_up(Duration::from_secs(15)),
            "{}",
            m.levee.stderr()
        );
    }
    for m in &members {
        let three = poll(Duration::from_secs(10), || {
            m.ctl_fleet().contains("3 live member(s)").then_some(())
        });
        assert!(three.is_some(), "{}", m.ctl_fleet());
    }
    assert!(ping_until_heard(&members[0], &members, "before-the-drain"));
    let through_all = |n: u32| {
        for m in &members {
            assert_eq!(common::send(m, "/app/x", n).admitted, n, "m{}", m.n);
        }
    };
    through_all(6);
    assert!(hits(&b) > 0, "b took no requests before the drain");

    let (ok, out) = members[1].ctl(&["drain", "app", &b.addr(), "--fleet"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("drain app {} on every member", b.addr())),
        "{out}"
    );
    for (m, result) in [("m0", "applied"), ("m1", "applied"), ("m2", "not here")] {
        assert!(
            out.lines().any(|l| l.starts_with(m) && l.contains(result)),
            "{m} {result}: {out}"
        );
    }
    assert!(out.contains("2 of 3 member(s) applied the action"), "{out}");
    for m in &members[..2] {
        assert_eq!(server_state(m, &b.addr()).0, "draining", "m{}", m.n);
    }
    let before = hits(&b);
    through_all(10);
    assert_eq!(hits(&b), before, "a new request reached the drained server");

    // Enable and weight the same way; the answer says what each member has.
    let (ok, out) = members[2].ctl(&["enable", "app", &b.addr(), "--fleet"]);
    assert!(ok && out.contains("2 of 3"), "{out}");
    let (ok, out) = members[0].ctl(&["weight", "app", &b.addr(), "7", "--fleet"]);
    assert!(ok, "{out}");
    for m in &members[..2] {
        assert_eq!(
            server_state(m, &b.addr()),
            ("enabled".to_owned(), serde_json::json!(7)),
            "m{}",
            m.n
        );
    }
    through_all(6);
    assert!(hits(&b) > before, "b takes requests again once enabled");

    // No fleet action without Redis: nothing half-applied.
    let mut redis = redis;
    redis.kill();
    let down = poll(Duration::from_secs(10), || {
        (members[0].metric("levee_fleet_redis_up") == 0.0).then_some(())
    });
    assert!(down.is_some());
    let (ok, out) = members[0].ctl(&["disable", "app", &b.addr(), "--fleet"]);
    assert!(
        !ok && out.contains("503") && out.contains("no member acted"),
        "{out}"
    );
    assert_eq!(server_state(&members[0], &b.addr()).0, "enabled");
}
