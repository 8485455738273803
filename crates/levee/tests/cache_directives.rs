//! RFC 9111 directives as a client of levee sees them: what is stored, what
//! is answered from the store, and what goes to the origin (counted in
//! nginx's log; a revalidation shows there as a 304).

mod support;

use std::time::{Duration, SystemTime};

use support::*;

/// The origin's statuses for `path`, in order.
fn origin_statuses(b: &Bench, path: &str) -> Vec<String> {
    b.origin_count(path);
    b.nginx
        .settled_entries()
        .iter()
        .filter(|e| e.get("uri") == path)
        .map(|e| e.get("status"))
        .collect()
}

#[test]
fn private_and_set_cookie_responses_are_not_stored() {
    let b = start("", "");
    for path in ["/priv/a.txt", "/cookie/a.txt"] {
        b.get(path);
        assert_eq!(b.get(path).header("cache-status"), Some("levee; fwd=miss"));
        assert_eq!(b.origin_count(path), 2, "{path}");
    }
}

#[test]
fn no_cache_and_an_invalid_expires_are_stored_but_revalidated_every_time() {
    let b = start("", "");
    for path in ["/nocache/a.txt", "/badexp/a.txt"] {
        b.get(path);
        let again = b.get(path);
        assert_eq!(again.status, 200);
        assert_eq!(again.body, b"0123456789abcdef");
        assert_eq!(
            again.header("cache-status"),
            Some("levee; hit; fwd=stale; fwd-status=304"),
            "{path}"
        );
        assert_eq!(origin_statuses(&b, path), ["200", "304"], "{path}");
    }
}

#[test]
fn s_maxage_wins_over_max_age() {
    let b = start("", "");
    b.get("/smax/a.txt");
    assert!(is_hit(&b.get("/smax/a.txt")));
    assert_eq!(b.origin_count("/smax/a.txt"), 1);
}

#[test]
fn heuristic_freshness_from_an_old_last_modified() {
    let b = start("", "");
    let file = std::fs::File::options()
        .write(true)
        .open(b.nginx.root().join("heur/a.txt"))
        .expect("open");
    let ten_days = Duration::from_secs(10 * 86_400);
    file.set_modified(SystemTime::now() - ten_days)
        .expect("set mtime");
    b.get("/heur/a.txt");
    assert!(is_hit(&b.get("/heur/a.txt")));
    assert_eq!(b.origin_count("/heur/a.txt"), 1);
}

#[test]
fn an_upstream_age_is_honoured() {
    let b = start("", "");
    b.get("/aged/a.txt");
    let r = b.get("/aged/a.txt");
    assert!(is_hit(&r));
    let age: u64 = r.header("age").and_then(|a| a.parse().ok()).expect("Age");
    assert!((30..40).contains(&age), "Age {age}");
}

#[test]
fn request_directives_max_age_zero_and_no_cache_go_to_the_origin() {
    let b = start("", "");
    b.get("/c/a.txt");
    // max-age=0 accepts an age of 0 (whole seconds): let it reach 1.
    std::thread::sleep(Duration::from_millis(1100));
    let r = b.request("GET", "/c/a.txt", "Cache-Control: max-age=0\r\n");
    assert_eq!(
        r.header("cache-status"),
        Some("levee; hit; fwd=stale; fwd-status=304")
    );
    let r = b.request("GET", "/c/a.txt", "Cache-Control: no-cache\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(origin_statuses(&b, "/c/a.txt"), ["200", "304", "304"]);
    let r = b.request("GET", "/c/a.txt", "Cache-Control: min-fresh=3600\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(
        b.origin_count("/c/a.txt"),
        4,
        "min-fresh beyond the lifetime"
    );
}

/// `cache_strip_set_cookie`: a Set-Cookie response is stored without the
/// field; the client of the miss gets its cookie, the hits get none.
#[test]
fn a_route_may_store_set_cookie_responses_without_the_cookie() {
    let b = start("cache_strip_set_cookie = true", "");
    let miss = b.get("/cookie/a.txt");
    assert_eq!(miss.header("cache-status"), Some("levee; fwd=miss; stored"));
    assert_eq!(miss.header("set-cookie"), Some("a=b"));
    for _ in 0..2 {
        let hit = b.get("/cookie/a.txt");
        assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
        assert_eq!(hit.header("set-cookie"), None, "{:?}", hit.headers);
        assert_eq!(hit.body, b"0123456789abcdef");
    }
    assert_eq!(b.origin_requests("/cookie/a.txt", 1), 1);
}
