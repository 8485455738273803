//! A fleet whose Redis fails: killed mid-run and restarted empty, paused
//! with SIGSTOP (a hung server, as a partition looks), and failed over
//! under Sentinel. Each time every request is answered within a generous
//! bound (the Redis timeout is 20 ms; the machine is loaded, so the test
//! allows 1 s, and bench/protect/run.py measures the real figure), the
//! local fallback engages (metrics), and fleet limits resume.

#[path = "fleet/common.rs"]
mod common;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{Member, Tally, promo, send, start_fleet};
use support::{Redis, Sentinel, poll};

const ANSWERED_WITHIN: Duration = Duration::from_secs(1);
const FALLBACK: &str = "levee_rate_limit_fallback_total{rule=\"promo\"}";

/// Requests to every member, round robin, until `stop`: each one timed.
fn hammer(members: &[Member], path: &str, stop: &AtomicBool) -> Tally {
    let mut clients: Vec<_> = members
        .iter()
        .map(|m| common::Client::new(&m.ip, m.port))
        .collect();
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        for c in &mut clients {
            t.add(c.get(path));
        }
        thread::sleep(Duration::from_millis(5));
    }
    t
}

/// Runs `hammer` in the background while `during` runs.
fn under_load(members: &[Member], path: &str, during: impl FnOnce()) -> Tally {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let h = s.spawn(|| hammer(members, path, &stop));
        during();
        stop.store(true, Ordering::Relaxed);
        h.join().expect("hammer thread")
    })
}

fn wait_fallback(members: &[Member]) {
    for m in members {
        let engaged = poll(Duration::from_secs(10), || {
            (m.metric("levee_fleet_redis_up") == 0.0
                && m.metric("levee_fleet_fallbacks_total") >= 1.0)
                .then_some(())
        });
        assert!(
            engaged.is_some(),
            "no fallback on {}: {}",
            m.ip,
            m.levee.stderr()
        );
    }
}

fn wait_resumed(members: &[Member]) {
    for m in members {
        assert!(
            m.wait_redis_up(Duration::from_secs(20)),
            "fleet limits never resumed on {}: {}",
            m.ip,
            m.levee.stderr()
        );
        // Logged just after the state (and its metric) changed.
        assert!(
            m.levee
                .wait_stderr("fleet rate limits resume", Duration::from_secs(5)),
            "{}",
            m.levee.stderr()
        );
    }
}

/// 30 per hour, so nothing refills during the test: the fleet may admit 30
/// in all. Redis admits 9, dies; each member admits a third of what it knew
/// was left; Redis comes back empty, is given back the state the members
/// last saw and charged what they admitted alone, in whatever order their
/// restores run; the rest of the 30, and no more, is admitted after.
#[test]
fn redis_killed_mid_run_then_restarted_empty() {
    let mut redis = Redis::start();
    // Killing Redis is seen as a reset, whatever the timeout; a generous
    // one keeps this loaded machine's slow answers from being decided
    // locally while Redis is up, which the count below would see.
    let fleet = format!(
        "name = \"t\"\nredis = \"{}\"\ntimeout = \"500ms\"",
        redis.url()
    );
    let members = start_fleet(&fleet, &promo("30/h", 30));
    // Round robin, so each member last heard from Redis late in the run
    // (after the 7th, 8th and 9th request): each takes a third of what it
    // knows is left. (Use by others that a member has not heard of is
    // taken again: docs/fleet.md, "Redis down".)
    let mut admitted = 0;
    for _ in 0..3 {
        for m in &members {
            admitted += send(m, "/redeem?code=K", 1).admitted;
        }
    }
    assert_eq!(admitted, 9);
    let load = under_load(&members, "/redeem?code=Z", || {
        redis.kill();
        wait_fallback(&members);
    });
    assert_eq!(load.unanswered + load.other, 0, "{load:?}");
    assert!(load.slowest < ANSWERED_WITHIN, "{load:?}");
    for m in &members {
        let t = send(m, "/redeem?code=K", 15);
        assert!(t.slowest < ANSWERED_WITHIN, "{t:?}");
        admitted += t.admitted;
        assert!(m.metric(FALLBACK) > 0.0);
    }
    // On their own the members stayed within the limit.
    assert!(admitted <= 30, "{admitted} admitted with Redis away");
    redis.restart_empty();
    wait_resumed(&members);
    let fallback_before: Vec<f64> = members.iter().map(|m| m.metric(FALLBACK)).collect();
    for m in &members {
        admitted += send(m, "/redeem?code=K", 15).admitted;
    }
    assert!(
        admitted.abs_diff(30) <= 1,
        "the fleet admitted {admitted} of a limit of 30 across the outage"
    );
    // Decided by Redis again: the fallback counted nothing more, and the
    // key is back in the empty Redis.
    for (m, before) in members.iter().zip(fallback_before) {
        assert_eq!(m.metric(FALLBACK), before);
    }
    assert!(
        redis
            .cli(&["--scan", "--pattern", "{t}:rl:promo:*"])
            .lines()
            .count()
            >= 1
    );
}

#[test]
fn a_hung_redis_costs_each_request_one_timeout_at_most() {
    let mut redis = Redis::start();
    let fleet = format!("name = \"t\"\nredis = \"{}\"", redis.url());
    let members = start_fleet(&fleet, &promo("1000/s", 1000));
    let load = under_load(&members, "/redeem?code=H", || {
        thread::sleep(Duration::from_millis(300));
        redis.pause();
        wait_fallback(&members);
        thread::sleep(Duration::from_millis(500));
        redis.resume();
        wait_resumed(&members);
        thread::sleep(Duration::from_millis(300));
    });
    assert_eq!(load.unanswered + load.other, 0, "{load:?}");
    assert!(load.slowest < ANSWERED_WITHIN, "{load:?}");
    assert!(load.admitted > 0);
    for m in &members {
        assert!(m.metric(FALLBACK) > 0.0, "{}", m.levee.stderr());
        assert!(m.metric("levee_fleet_redis_errors_total{kind=\"timeout\"}") >= 1.0);
    }
    // Resumed: the next question goes to Redis again.
    let calls = members[0].metric("levee_fleet_rate_limit_calls_total");
    send(&members[0], "/redeem?code=after", 1);
    assert!(members[0].metric("levee_fleet_rate_limit_calls_total") > calls);
}

#[test]
fn a_sentinel_failover_is_followed() {
    let mut master = Redis::start();
    let replica = Redis::replica_of(&master);
    let synced = poll(Duration::from_secs(10), || {
        replica
            .cli(&["info", "replication"])
            .contains("master_link_status:up")
            .then_some(())
    });
    assert!(
        synced.is_some(),
        "{}",
        replica.cli(&["info", "replication"])
    );
    let sentinel = Sentinel::start("main", &master);
    let fleet = format!(
        "name = \"t\"\nsentinel = [\"127.0.0.1:{}\"]\nmaster = \"main\"",
        sentinel.port
    );
    let members = start_fleet(&fleet, &promo("1000/s", 1000));
    let load = under_load(&members, "/redeem?code=S", || {
        thread::sleep(Duration::from_millis(300));
        master.kill();
        wait_fallback(&members);
        let promoted = poll(Duration::from_secs(30), || {
            (sentinel.master_port("main") == Some(replica.port)).then_some(())
        });
        assert!(
            promoted.is_some(),
            "the sentinel never promoted the replica"
        );
        wait_resumed(&members);
        thread::sleep(Duration::from_millis(300));
    });
    assert_eq!(load.unanswered + load.other, 0, "{load:?}");
    assert!(load.slowest < ANSWERED_WITHIN, "{load:?}");
    for m in &members {
        assert!(m.metric(FALLBACK) > 0.0);
    }
    // The fleet's state now lives on the promoted replica.
    send(&members[1], "/redeem?code=after-failover", 1);
    assert!(replica.is_master());
    let keys = replica.cli(&["--scan", "--pattern", "{t}:rl:promo:*"]);
    assert!(keys.lines().count() >= 1, "no fleet key on the new master");
}
