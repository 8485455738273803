//! Runtime bans and allow entries across a fleet, end to end with three
//! members (fleet/common.rs) and a real redis-server: a ban through any
//! member applies on every member within a second, is listed with who set
//! it, expires on time everywhere and is lifted from any member; an allow
//! entry exempts an address on every member; a ban made while Redis is
//! down applies on that member and reaches the others when Redis is back,
//! and bans Redis lost in a restart are written back by the members.

#[path = "fleet/common.rs"]
mod common;
mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, Member, ping_until_heard, promo, start_fleet};
use support::{Redis, admin_request, poll};

/// The issue's bound for a ban to apply fleet-wide.
const WITHIN: Duration = Duration::from_secs(1);

fn fleet(redis: &Redis) -> Vec<Member> {
    // Generous: an answer on this loaded machine may take longer than the
    // default 20 ms.
    let members = start_fleet(
        &format!(
            "name = \"t\"\nredis = \"{}\"\ntimeout = \"500ms\"",
            redis.url()
        ),
        &promo("10/s", 10),
    );
    assert!(ping_until_heard(&members[0], &members, "before-the-bans"));
    members
}

/// Whether a new connection to `m` is served (a ban closes it at accept).
fn serves(m: &Member) -> bool {
    Client::new(&m.ip, m.port).get("/").0 == Some(200)
}

/// Waits until every member is banned (`true`) or serves again; how long
/// that took, or `None` if it did not happen within `limit`.
fn all_become(members: &[Member], banned: bool, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    poll(limit, || {
        members
            .iter()
            .all(|m| serves(m) != banned)
            .then(|| start.elapsed())
    })
}

fn list(m: &Member, which: &str) -> serde_json::Value {
    let (status, text) = admin_request(m.admin, "GET", &format!("/{which}"), "");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

/// The address a client on this machine reaches the members from.
fn client_ip(m: &Member) -> String {
    let s = TcpStream::connect((m.ip.as_str(), m.port)).expect("connect");
    s.local_addr().expect("local address").ip().to_string()
}

#[test]
fn a_ban_through_any_member_applies_everywhere_lists_and_expires() {
    let redis = Redis::start();
    let members = fleet(&redis);
    assert!(all_become(&members, false, WITHIN).is_some());

    let (ok, out) = members[0].ctl(&["ban", "127.0.0.0/8", "--for", "4s"]);
    assert!(ok && out.contains("(fleet: every member)"), "{out}");
    let took = all_become(&members, true, WITHIN);
    assert!(took.is_some(), "not banned on every member within 1 s");
    for m in &members {
        let v = list(m, "bans");
        assert_eq!(v["count"], 1, "m{}: {v}", m.n);
        assert_eq!(v["bans"][0]["address"], "127.0.0.0/8", "{v}");
        assert_eq!(v["bans"][0]["by"], "m0", "{v}");
    }
    let (ok, out) = members[2].ctl(&["bans"]);
    assert!(
        ok && out.contains("127.0.0.0/8") && out.contains("m0"),
        "{out}"
    );
    // Ends at the same moment on every member: 4 s after it was set, give
    // or take a second of rounding and polling.
    let until = list(&members[1], "bans")["bans"][0]["until"]
        .as_u64()
        .expect("an expiry");
    let ended = all_become(&members, false, Duration::from_secs(10));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(ended.is_some(), "the ban did not expire");
    assert!(
        now >= until && now <= until + 2,
        "ended at {now}, due {until}"
    );
    for m in &members {
        assert_eq!(list(m, "bans")["count"], 0, "m{}", m.n);
    }
    // Redis forgets it too (the next read removes expired entries).
    let in_redis = poll(Duration::from_secs(15), || {
        (redis.cli(&["HLEN", "{t}:bans"]).trim() == "0").then_some(())
    });
    assert!(
        in_redis.is_some(),
        "{}",
        redis.cli(&["HGETALL", "{t}:bans"])
    );

    // Set on one member, lifted through another, for every member.
    let (ok, out) = members[1].ctl(&["ban", "127.0.0.0/8"]);
    assert!(ok, "{out}");
    assert!(all_become(&members, true, WITHIN).is_some());
    let (ok, out) = members[2].ctl(&["unban", "127.0.0.0/8"]);
    assert!(ok && out.contains("lifted 127.0.0.0/8"), "{out}");
    assert!(
        all_become(&members, false, WITHIN).is_some(),
        "the lift did not reach every member within 1 s"
    );
}

#[test]
fn an_allow_entry_exempts_an_address_on_every_member() {
    let redis = Redis::start();
    let members = fleet(&redis);
    let me = client_ip(&members[0]);
    let (ok, out) = members[0].ctl(&["ban", "127.0.0.0/8"]);
    assert!(ok, "{out}");
    assert!(all_become(&members, true, WITHIN).is_some());
    let (ok, out) = members[1].ctl(&["allow", &me]);
    assert!(ok && out.contains(&format!("allowed {me}")), "{out}");
    assert!(
        all_become(&members, false, WITHIN).is_some(),
        "the allow entry did not reach every member within 1 s"
    );
    for m in &members {
        assert_eq!(list(m, "allows")["count"], 1, "m{}", m.n);
        assert_eq!(list(m, "bans")["count"], 1, "the ban stays, m{}", m.n);
    }
    let (ok, out) = members[2].ctl(&["unallow", &me]);
    assert!(ok, "{out}");
    assert!(all_become(&members, true, WITHIN).is_some());
}

#[test]
fn bans_outlive_an_outage_and_a_restart_empty() {
    let mut redis = Redis::start();
    let members = fleet(&redis);
    // Set while Redis is up: lost when it restarts empty, written back by
    // the members.
    let (status, text) = admin_request(
        members[1].admin,
        "POST",
        "/bans",
        r#"{"address": "192.0.2.0/24"}"#,
    );
    assert_eq!(status, 200, "{text}");
    let everywhere = |net: &str| {
        members.iter().all(|m| {
            list(m, "bans")["bans"]
                .as_array()
                .is_some_and(|a| a.iter().any(|b| b["address"] == net))
        })
    };
    assert!(poll(WITHIN, || everywhere("192.0.2.0/24").then_some(())).is_some());

    redis.kill();
    for m in &members {
        let down = poll(Duration::from_secs(10), || {
            (m.metric("levee_fleet_redis_up") == 0.0).then_some(())
        });
        assert!(down.is_some(), "m{} never saw Redis go", m.n);
    }
    // Applies here at once; the others hear of it when Redis is back.
    let (ok, out) = members[0].ctl(&["ban", "127.0.0.0/8"]);
    assert!(
        ok && out.contains("every member once Redis answers"),
        "{out}"
    );
    assert!(!serves(&members[0]));
    assert!(serves(&members[1]) && serves(&members[2]));
    // Known bans are still enforced: nothing was dropped with the link.
    assert!(everywhere("192.0.2.0/24"));

    redis.restart_empty();
    let caught_up = all_become(&members, true, Duration::from_secs(20));
    assert!(
        caught_up.is_some(),
        "the ban made alone never reached the others"
    );
    let kept = poll(Duration::from_secs(20), || {
        everywhere("192.0.2.0/24").then_some(())
    });
    assert!(kept.is_some(), "a ban vanished with Redis' data");
    assert_eq!(redis.cli(&["HLEN", "{t}:bans"]).trim(), "2");
    for m in &members {
        assert!(m.wait_redis_up(Duration::from_secs(15)));
    }
    // Back to normal: a lift through any member reaches every member.
    let (ok, out) = members[2].ctl(&["unban", "127.0.0.0/8"]);
    assert!(ok, "{out}");
    assert!(all_become(&members, false, WITHIN).is_some());
}
