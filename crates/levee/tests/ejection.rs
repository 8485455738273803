//! One bad URL must never take the site down (issue 12, section 2), against
//! real nginx servers: an application's 500s eject nothing by default,
//! ejection is bounded, the only server of a group is never ejected (with
//! and without the cache in front), and panic mode serves a group whose
//! servers active checks all marked down.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// An app with one URL that always fails, one that drops the connection
/// without a response (nginx's 444), one that fails its health check,
/// cacheable ones, and everything else fine.
const APP: &str = r#"
        location = /broken { return 500 "broken\n"; }
        location = /drop { return 444; }
        location = /health { return 404; }
        location = /cached { add_header Cache-Control "max-age=60"; return 200 "cached\n"; }
        location /short/ { add_header Cache-Control "max-age=1"; return 200 "short\n"; }
        location / { add_header Cache-Control "no-store"; return 200 "hello from $server_port\n"; }
"#;

/// How long the bad clients hammer while the good one is checked.
const HAMMER: Duration = Duration::from_secs(3);

fn status_is(expected: u16) -> impl Fn(&Response) -> Result<(), String> {
    move |r| {
        if r.status == expected {
            Ok(())
        } else {
            Err(format!("status {}", r.status))
        }
    }
}

fn five_hundred(r: &Response) -> Result<(), String> {
    status_is(500)(r)
}

fn bad_gateway(r: &Response) -> Result<(), String> {
    status_is(502)(r)
}

/// A well-behaved client for `HAMMER`: GETs and POSTs of normal URLs (and
/// `/cached` when `cached`), each of which must be answered 200. Returns
/// how many it sent.
fn normal_client(port: u16, cached: bool) -> usize {
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < HAMMER {
        let mut c = RawConn::connect(port);
        c.send(&get_req("/page", "up.test"));
        let r = c.read_response("GET");
        assert_eq!(r.status, 200, "GET /page after {sent}: {}", r.body_text());
        assert!(hello(&r).is_ok(), "{}", r.body_text());
        c.send(b"POST /form HTTP/1.1\r\nHost: up.test\r\nContent-Length: 3\r\n\r\na=b");
        let r = c.read_response("POST");
        assert_eq!(r.status, 200, "POST /form after {sent}: {}", r.body_text());
        sent += 2;
        if cached {
            c.send(&get_req("/cached", "up.test"));
            let r = c.read_response("GET");
            assert_eq!(r.status, 200, "GET /cached after {sent}");
            assert_eq!(r.body, b"cached\n");
            sent += 1;
        }
        thread::sleep(Duration::from_millis(5));
    }
    sent
}

/// `n` servers running [`APP`] behind a levee whose route gets `route`, its
/// upstream `upstream`, and `tail` after it.
struct Bed {
    servers: Vec<Nginx>,
    levee: Levee,
    admin: u16,
}

fn bed(n: usize, route: &str, upstream: &str, tail: &str) -> Bed {
    let servers: Vec<Nginx> = (0..n).map(|_| Nginx::start(APP)).collect();
    let list: Vec<String> = servers.iter().map(quoted).collect();
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = upstream_config(&setup, admin, &list, route, upstream, tail);
    let levee = setup.start(&cfg);
    Bed {
        servers,
        levee,
        admin,
    }
}

impl Bed {
    /// `threads` bad clients loop on `path`, each response passing `check`,
    /// while the [`normal_client`] runs: how many bad requests were
    /// answered, and how many normal ones were sent (all answered 200).
    fn hammer(&self, threads: usize, path: &str, check: Check, cached: bool) -> (u64, usize) {
        let req = get_req(path, "up.test");
        let hammer = Load::start(self.levee.port, threads, &req, "GET", check);
        let normal = normal_client(self.levee.port, cached);
        let (bad, errors) = hammer.finish();
        assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(5)]);
        assert!(normal > 20, "only {normal} normal requests");
        (bad, normal)
    }

    /// Requests for `path` in the (first) server's access log.
    fn to_origin(&self, path: &str) -> usize {
        self.servers[0]
            .settled_entries()
            .iter()
            .filter(|e| e.get("uri") == path)
            .count()
    }

    fn wait_all_down(&self) {
        let down = poll(Duration::from_secs(10), || {
            self.states().iter().all(|s| s == "down").then_some(())
        });
        assert!(down.is_some(), "the checks never marked every server down");
    }

    fn states(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| state(self.admin, &s.addr()))
            .collect()
    }
}

/// Issue 12: four clients looping on a URL that always answers 500 on all
/// three servers ejected all of them (passive health counted the app's own
/// 500s), and normal users got thousands of 503s. Now a status counts only
/// when the upstream opts in, so nothing is ejected.
#[test]
fn one_url_always_500_on_every_server_leaves_the_rest_of_the_site_up() {
    let b = bed(3, "", "", "");
    let (failed, _) = b.hammer(4, "/broken", five_hundred, false);
    assert!(
        failed > 30,
        "only {failed} 500s: not enough to have ejected every server before"
    );
    assert_eq!(b.states(), ["up", "up", "up"]);
}

/// Opting in to 5xx ejection: the same bad URL ejects servers, but never
/// more than `max_ejected_percent` (half by default: 1 of 3), so the rest
/// of the site is still served.
#[test]
fn opting_in_to_5xx_ejection_takes_out_at_most_half_the_group() {
    let b = bed(3, "", "eject_on_status = [500]", "");
    let watcher = {
        let (admin, addrs) = (b.admin, b.servers.iter().map(|s| s.addr()));
        let addrs: Vec<String> = addrs.collect();
        thread::spawn(move || {
            let started = Instant::now();
            let mut most = 0;
            while started.elapsed() < HAMMER {
                let out = addrs
                    .iter()
                    .filter(|a| state(admin, a) == "ejected")
                    .count();
                most = most.max(out);
                thread::sleep(Duration::from_millis(50));
            }
            most
        })
    };
    b.hammer(4, "/broken", five_hundred, false);
    assert_eq!(
        watcher.join().expect("watcher"),
        1,
        "ejected at the worst moment"
    );
}

/// Issue 12: with a single server, three dropped connections in a row
/// ejected it, and every request, writes included, got 503 while the origin
/// was healthy. The only server of a group is never ejected: the dropped
/// requests get 502 and everything else is served.
#[test]
fn a_single_server_keeps_serving_through_dropped_connections() {
    let b = bed(1, "", "", "");
    let (dropped, _) = b.hammer(3, "/drop", bad_gateway, false);
    assert!(dropped > 10, "only {dropped} dropped requests");
    assert_eq!(b.states(), ["up"]);
    let resets = metric(
        b.admin,
        &format!(
            "levee_upstream_errors_total{{upstream=\"app\",server=\"{}\",kind=\"reset\"}}",
            b.servers[0].addr()
        ),
    );
    assert!(resets >= Some(dropped as f64), "{resets:?} for {dropped}");
}

/// Issue 13, cache item 9: the same with the cache in front of the one
/// server. Hits, misses that reach the origin, and writes keep working
/// while one URL's connections drop.
#[test]
fn a_single_origin_cache_keeps_working_through_dropped_connections() {
    let b = bed(1, "cache = true", "", "[cache]\n");
    let (dropped, normal) = b.hammer(3, "/drop", bad_gateway, true);
    assert!(dropped > 10, "only {dropped} dropped requests");
    assert_eq!(b.states(), ["up"]);
    let r = get(b.levee.port, "/cached");
    assert_eq!(r.header("cache-status"), Some("levee; hit"));
    assert_eq!(b.to_origin("/cached"), 1, "one miss, then hits");
    // Every round sends one /page; nginx may not have logged the last yet.
    assert!(
        b.to_origin("/page") * 3 + 3 >= normal,
        "no-store pages reach the origin"
    );
}

/// Active checks on a URL the app answers 404: every server is marked down
/// although it serves everything else.
const WRONG_CHECK: &str = "[upstream.app.health_check]\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"500ms\"\nfall = 1\njitter = 0\n";

const PANIC: &str = "levee_upstream_panic_total{upstream=\"app\"}";

/// Panic mode: active checks mark every server down while the servers are
/// in fact reachable (here the health URL is wrong). Requests are served by
/// all of them instead of an outage of 503s, and `/metrics` counts it.
#[test]
fn every_server_marked_down_but_reachable_is_panic_mode_not_503() {
    let b = bed(2, "", "", WRONG_CHECK);
    b.wait_all_down();
    let before = metric(b.admin, PANIC).expect("the panic counter");
    let (status, body) = admin_request(b.admin, "GET", "/upstreams/app", "");
    assert_eq!(status, 200, "{body}");
    let app: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(app["panic"], true, "the API tells of panic mode: {body}");
    let mut by = std::collections::HashSet::new();
    for _ in 0..20 {
        let r = get(b.levee.port, "/page");
        assert_eq!(r.status, 200, "{}", r.body_text());
        by.insert(served_by(&r));
    }
    assert_eq!(by.len(), 2, "panic mode spreads over every server: {by:?}");
    let after = metric(b.admin, PANIC).expect("the panic counter");
    assert!(after - before >= 20.0, "{before} -> {after}");
    // Told in the log, not once per request.
    assert!(b.levee.wait_stderr("panic mode", Duration::from_secs(5)));
    let lines = b.levee.stderr().matches("panic mode").count();
    assert!(lines <= 2, "{lines} panic mode lines for 20 requests");
}

/// Panic mode and the cache's "stale when every server is down": with every
/// server marked down, a stale copy within `stale_if_down` still answers at
/// once, and only a request the cache cannot answer goes to a server in
/// panic mode.
#[test]
fn with_every_server_down_a_stale_copy_answers_before_panic_mode() {
    let b = bed(1, "cache = true", "", &format!("{WRONG_CHECK}\n[cache]\n"));
    assert_eq!(get(b.levee.port, "/short/a").body, b"short\n");
    b.wait_all_down();
    // Stale after max-age=1.
    thread::sleep(Duration::from_millis(2100));
    let stale = get(b.levee.port, "/short/a");
    assert_eq!(stale.status, 200);
    let status = stale.header("cache-status").unwrap_or_default();
    assert!(status.contains("fwd=stale"), "{status}");
    let fresh = get(b.levee.port, "/page");
    assert_eq!(fresh.status, 200, "panic mode serves what the cache cannot");
    assert!(metric(b.admin, PANIC) >= Some(1.0));
    assert_eq!(
        b.to_origin("/short/a"),
        1,
        "the stale copy answered without the origin"
    );
}
