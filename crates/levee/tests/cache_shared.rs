//! The fleet's shared cache tier (`[cache.shared]`) with three levee members,
//! a real redis-server and a real nginx origin: a cold object fetched by
//! all three at once reaches the origin once (the others wait on the fleet's
//! lock and are answered from the shared tier), purges reach the shared
//! tier, and a Redis that is down costs nothing but origin fetches.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::*;

struct Member {
    levee: Levee,
    admin: u16,
}

/// Three members of the fleet `f` in front of `nginx`, sharing `redis`.
fn members(nginx: &Nginx, redis: &Redis, shared: &str) -> Vec<Member> {
    (0..3)
        .map(|i| {
            let setup = LeveeSetup::new();
            let admin = free_port();
            let tail = format!(
                "\n[cache.shared]\n{shared}\n\n[fleet]\nname = \"f\"\ninstance = \"m{i}\"\nredis = \"redis://127.0.0.1:{}\"\ntimeout = \"1s\"\n",
                redis.port
            );
            let text = config(&setup, admin, &nginx.addr(), "", &tail);
            let levee = setup.start(&text);
            let deadline = Instant::now() + Duration::from_secs(30);
            while metric(admin, "levee_fleet_redis_up") != Some(1.0) {
                assert!(Instant::now() < deadline, "member {i} never reached Redis");
                thread::sleep(Duration::from_millis(50));
            }
            Member { levee, admin }
        })
        .collect()
}

fn get(port: u16, path: &str) -> Response {
    let mut conn = RawConn::connect(port);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: site\r\n\r\n").as_bytes());
    conn.read_response("GET")
}

/// The issue's case: a cold object asked of three members at once. One
/// wins the fleet's lock and fetches (nginx sends it at 20 KB/s, so the
/// others arrive while it is in flight); the others wait and are answered
/// from the shared tier. Then each member has it locally.
#[test]
fn a_cold_object_is_fetched_once_for_the_fleet() {
    let nginx = Nginx::start(ORIGIN);
    let body: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    nginx.put_file("slowc/cold.bin", &body);
    let redis = Redis::start();
    // A Redis call over `timeout` (50 ms by default) is a miss that takes
    // no lock: generous here, so a loaded machine still shows coalescing.
    let fleet = members(&nginx, &redis, "lock_wait = \"10s\"\ntimeout = \"2s\"");
    let answers: Vec<Response> = thread::scope(|s| {
        let handles: Vec<_> = fleet
            .iter()
            .map(|m| {
                let port = m.levee.port;
                s.spawn(move || get(port, "/slowc/cold.bin"))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let mut statuses: Vec<&str> = answers
        .iter()
        .map(|r| r.header("cache-status").unwrap_or_default())
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [
            "levee; fwd=miss; stored",
            "levee; hit; tier=shared",
            "levee; hit; tier=shared"
        ]
    );
    for r in &answers {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body, "the origin's bytes");
    }
    for m in &fleet {
        let again = get(m.levee.port, "/slowc/cold.bin");
        assert_eq!(
            again.header("cache-status"),
            Some("levee; hit"),
            "now local"
        );
    }
    assert_eq!(
        nginx.wait_entries("/slowc/cold.bin", 1).len(),
        1,
        "one origin fetch"
    );
    let won: f64 = fleet
        .iter()
        .filter_map(|m| metric(m.admin, "levee_cache_shared_locks_total{outcome=\"won\"}"))
        .sum();
    let waited: f64 = fleet
        .iter()
        .filter_map(|m| {
            metric(
                m.admin,
                "levee_cache_shared_locks_total{outcome=\"waited\"}",
            )
        })
        .sum();
    assert_eq!((won, waited), (1.0, 2.0));
    assert_eq!(
        fleet
            .iter()
            .filter_map(|m| metric(m.admin, "levee_cache_tier_hits_total{tier=\"shared\"}"))
            .sum::<f64>(),
        2.0
    );
}

/// Objects over the size bound stay local: each member fetches its own.
#[test]
fn only_small_objects_are_shared() {
    let nginx = Nginx::start(ORIGIN);
    nginx.put_file("c/large.bin", &vec![b'l'; 20_000]);
    nginx.put_file("c/small.bin", &vec![b's'; 2_000]);
    let redis = Redis::start();
    let fleet = members(&nginx, &redis, "max_object_size = \"10k\"");
    for m in &fleet {
        assert_eq!(get(m.levee.port, "/c/large.bin").status, 200);
        assert_eq!(get(m.levee.port, "/c/small.bin").status, 200);
    }
    assert_eq!(nginx.wait_entries("/c/large.bin", 3).len(), 3);
    assert_eq!(nginx.wait_entries("/c/small.bin", 1).len(), 1);
}

/// A purge on one member removes the object from the shared tier: a member
/// that never had it locally goes to the origin again.
#[test]
fn purges_reach_the_shared_tier() {
    let nginx = Nginx::start(ORIGIN);
    for f in ["c/p.txt", "tag/t.txt", "c/img/a.png"] {
        nginx.put_file(f, b"0123456789abcdef");
    }
    let redis = Redis::start();
    let fleet = members(&nginx, &redis, "");
    let keys = || {
        redis
            .cli(&["--scan", "--pattern", "{f}:c:*"])
            .lines()
            .count()
    };
    for (stored, path) in ["/c/p.txt", "/tag/t.txt", "/c/img/a.png"]
        .into_iter()
        .enumerate()
    {
        assert_eq!(get(fleet[0].levee.port, path).status, 200);
        // The store reaches Redis a round trip after the response.
        let there = poll(Duration::from_secs(10), || (keys() > stored).then_some(()));
        assert!(there.is_some(), "{path} never reached the shared tier");
        let shared = get(fleet[1].levee.port, path);
        assert_eq!(
            shared.header("cache-status"),
            Some("levee; hit; tier=shared"),
            "{path}"
        );
    }
    // Each object and nothing else (no Vary marker here).
    assert_eq!(keys(), 3);
    for body in [
        r#"{"url": "http://site/c/p.txt"}"#,
        r#"{"tag": "red"}"#,
        r#"{"prefix": "http://site/c/img/"}"#,
    ] {
        let (status, text) = admin_request(fleet[0].admin, "POST", "/cache/purge", body);
        assert_eq!(status, 200, "{body}: {text}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while keys() != 0 {
        assert!(
            Instant::now() < deadline,
            "the shared tier still has {} keys",
            keys()
        );
        thread::sleep(Duration::from_millis(50));
    }
    for path in ["/c/p.txt", "/tag/t.txt", "/c/img/a.png"] {
        let r = get(fleet[2].levee.port, path);
        assert_eq!(
            r.header("cache-status"),
            Some("levee; fwd=miss; stored"),
            "{path}"
        );
        assert_eq!(nginx.wait_entries(path, 2).len(), 2, "{path}");
    }
}

/// Redis down: each member caches on its own, and no request waits for it.
#[test]
fn without_redis_each_member_fetches_alone() {
    let nginx = Nginx::start(ORIGIN);
    nginx.put_file("c/down.txt", b"0123456789abcdef");
    let mut redis = Redis::start();
    let fleet = members(&nginx, &redis, "");
    redis.kill();
    for m in &fleet {
        let started = Instant::now();
        let r = get(m.levee.port, "/c/down.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"0123456789abcdef");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            get(m.levee.port, "/c/down.txt").header("cache-status"),
            Some("levee; hit")
        );
    }
    assert_eq!(nginx.wait_entries("/c/down.txt", 3).len(), 3);
}
