//! RFC 9111 as a client of levee sees it, for what the directive and
//! stale tests do not cover: which fields are stored, list-valued `Age`,
//! which statuses are stored, invalidation after unsafe methods, updates
//! from 304s and HEADs, incomplete responses. The origin is a real nginx
//! (support/cache.rs) except where noted.

mod support;

use std::thread;
use std::time::Duration;

use support::*;

/// RFC 9110 §7.6.1, RFC 9111 §3.1: the fields `Connection` names are not
/// stored, so a hit carries what the miss did; unknown fields are stored,
/// the proxy's authentication fields are not.
#[test]
fn fields_named_in_connection_are_not_stored() {
    let b = start("", "");
    let miss = b.get("/conn/a.txt");
    let hit = b.get("/conn/a.txt");
    assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
    for r in [&miss, &hit] {
        assert_eq!(r.header("c"), Some("3"));
        assert_eq!(r.header("a"), None, "{:?}", r.headers);
        assert_eq!(r.header("b"), None, "{:?}", r.headers);
    }
    assert_eq!(hit.header("proxy-authenticate"), None);
    assert_eq!(b.origin_requests("/conn/a.txt", 1), 1);
}

/// RFC 9111 §5.1: `Age: 7200, 0` counts as 7200, so a response with
/// max-age=3600 arrives stale and is revalidated before reuse.
#[test]
fn a_list_valued_age_uses_its_first_value() {
    let b = start("", "");
    b.get("/agelist/a.txt");
    let again = b.get("/agelist/a.txt");
    assert_eq!(again.status, 200);
    assert_eq!(
        again.header("cache-status"),
        Some("levee; hit; fwd=stale; fwd-status=304")
    );
    let age: u64 = again
        .header("age")
        .and_then(|a| a.parse().ok())
        .expect("Age");
    assert!(age >= 7200, "Age {age}");
    assert_eq!(b.origin_requests("/agelist/a.txt", 2), 2);
}

/// RFC 9111 §3: any final status with explicit freshness is stored (as
/// nginx does); without it, a status that is not heuristically cacheable
/// (RFC 9110 §15.1) is not, even with a Last-Modified.
#[test]
fn error_statuses_with_explicit_freshness_are_stored() {
    let b = start("", "");
    // Three 5xx in a row would eject the only server (passive health): an
    // uncacheable 200 between them resets the count.
    let reset = || assert_eq!(b.get("/ns/a.txt").status, 200);
    for path in ["/s500", "/s599"] {
        reset();
        let first = b.get(path);
        assert_eq!(
            first.header("cache-status"),
            Some("levee; fwd=miss; stored"),
            "{path}"
        );
        let again = b.get(path);
        assert!(is_hit(&again), "{path}: {:?}", again.header("cache-status"));
        assert_eq!(again.status, first.status);
        assert_eq!(again.body, first.body);
        assert_eq!(b.origin_requests(path, 1), 1, "{path}");
    }
    for _ in 0..2 {
        reset();
        let r = b.get("/s500lm");
        assert_eq!(r.status, 500);
        assert_eq!(r.header("cache-status"), Some("levee; fwd=miss"));
    }
    assert_eq!(b.origin_requests("/s500lm", 2), 2);
}

/// RFC 9111 §5.2.2.3: must-understand lets a cache that understands the
/// status ignore the no-store beside it.
#[test]
fn must_understand_overrides_no_store() {
    let b = start("", "");
    b.get("/mu/a.txt");
    assert!(is_hit(&b.get("/mu/a.txt")));
    assert_eq!(b.origin_requests("/mu/a.txt", 1), 1);
}

/// RFC 9111 §4.4: a method not known to be safe (`M-SEARCH`) invalidates
/// the target when it succeeds; a failed one (418) leaves it.
#[test]
fn an_unknown_unsafe_method_invalidates_the_target() {
    let b = start("", "");
    b.get("/ms/a.txt");
    assert!(is_hit(&b.get("/ms/a.txt")));
    let failed = b.request("BREW", "/ms/a.txt", "");
    assert_eq!(failed.status, 418);
    assert!(
        is_hit(&b.get("/ms/a.txt")),
        "a failed request invalidates nothing"
    );
    let searched = b.request("M-SEARCH", "/ms/a.txt", "");
    assert_eq!(
        (searched.status, searched.body_text().as_str()),
        (200, "searched")
    );
    assert_eq!(
        b.get("/ms/a.txt").header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    let methods: Vec<String> = b
        .nginx
        .wait_entries("/ms/a.txt", 4)
        .iter()
        .map(|e| e.get("method"))
        .collect();
    assert_eq!(methods, ["GET", "BREW", "M-SEARCH", "GET"]);
}

/// RFC 9111 §4.4: a Location on another origin (here another port of the
/// same host) is not invalidated.
#[test]
fn a_location_on_another_port_is_not_invalidated() {
    let b = start("", "");
    b.get("/c/a.txt");
    let made = b.request("POST", "/make-port", "Content-Length: 2\r\n\r\nhi");
    assert_eq!(made.status, 201);
    assert!(is_hit(&b.get("/c/a.txt")));
    assert_eq!(b.origin_requests("/c/a.txt", 1), 1);
}

/// RFC 9111 §3.2, §4.3.4: a 304 updates the stored fields it carries, for
/// this answer and the next hits; its Set-Cookie reaches only the client
/// that caused the revalidation.
#[test]
fn a_304_updates_the_stored_fields_but_not_with_its_cookie() {
    let b = start("", "");
    let first = b.request("GET", "/upd/a.txt", "X-Version: A\r\n");
    assert_eq!(first.header("x-version"), Some("A"));
    thread::sleep(Duration::from_millis(2100));
    let validated = b.request("GET", "/upd/a.txt", "X-Version: B\r\n");
    assert_eq!(
        validated.header("cache-status"),
        Some("levee; hit; fwd=stale; fwd-status=304")
    );
    assert_eq!(validated.header("x-version"), Some("B"));
    assert_eq!(validated.header("set-cookie"), Some("s=1"));
    let hit = b.get("/upd/a.txt");
    assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
    assert_eq!(hit.header("x-version"), Some("B"));
    assert_eq!(hit.header("set-cookie"), None, "{:?}", hit.headers);
}

/// RFC 9111 §4.3.5: a HEAD's 200 whose validators match updates the
/// stored GET response; one that does not match retires it.
#[test]
fn a_head_response_updates_or_retires_the_stored_get() {
    let b = start("", "");
    b.request("GET", "/hf/a.txt", "X-Max-Age: 1\r\n");
    thread::sleep(Duration::from_millis(2100));
    // A conditional HEAD never leads a fetch: it goes upstream as a HEAD.
    let head = b.request(
        "HEAD",
        "/hf/a.txt",
        "If-None-Match: \"nope\"\r\nX-Max-Age: 3600\r\n",
    );
    assert_eq!(head.status, 200);
    let hit = b.get("/hf/a.txt");
    assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
    assert_eq!(hit.header("cache-control"), Some("max-age=3600"));

    b.nginx.put_file("hf/b.txt", b"old");
    b.request("GET", "/hf/b.txt", "X-Max-Age: 1\r\n");
    thread::sleep(Duration::from_millis(2100));
    b.nginx.put_file("hf/b.txt", b"newer");
    let head = b.request("HEAD", "/hf/b.txt", "If-None-Match: \"nope\"\r\n");
    assert_eq!(head.header("content-length"), Some("5"));
    let after = b.get("/hf/b.txt");
    assert_eq!(
        after.header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    assert_eq!(after.body, b"newer");
}

/// RFC 9111 §5.2: request directives are passed on to the origin;
/// §5.2.1.5: a request's no-store keeps its response out of the store.
#[test]
fn request_directives_reach_the_origin_and_no_store_is_obeyed() {
    let b = start("", "");
    let r = b.request("GET", "/echo/a.txt", "Cache-Control: no-store\r\n");
    assert_eq!(r.header("x-request-cache-control"), Some("no-store"));
    assert_eq!(r.header("cache-status"), Some("levee; fwd=miss"));
    let r = b.get("/echo/a.txt");
    assert_eq!(r.header("cache-status"), Some("levee; fwd=miss; stored"));
    assert_eq!(b.origin_requests("/echo/a.txt", 2), 2);
}

/// RFC 9111 §3.3: a response whose body ends short is never stored.
/// nginx will not send a body shorter than its Content-Length, so a python
/// origin does (support/cache.rs, `RawOrigin`).
#[test]
fn an_incomplete_response_is_not_stored() {
    let origin = RawOrigin::start(
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\nonly ten b",
    );
    let setup = LeveeSetup::new();
    let admin = free_port();
    let addr = format!("127.0.0.1:{}", origin.port);
    let text = config(&setup, admin, &addr, "", "");
    let levee = setup.start(&text);
    for _ in 0..2 {
        let mut conn = RawConn::connect(levee.port);
        conn.send(&get_req("/short", "site"));
        let (got, _) = conn.read_to_close(Duration::from_secs(10));
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains("only ten b"), "{text}");
        assert!(!text.contains("; hit"), "{text}");
    }
    assert_eq!(origin.requests().len(), 2, "{:?}", origin.requests());
}

/// RFC 9111 §3.1: trailer fields are never combined with the stored
/// header fields (levee keeps body data only).
#[test]
fn trailers_are_not_stored_as_header_fields() {
    let b = start("", "");
    let gz = "Accept-Encoding: gzip\r\n";
    let miss = b.request("GET", "/trailer/a.txt", gz);
    assert_eq!(miss.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        miss.trailers,
        [("X-Trailer".to_string(), "t".to_string())],
        "relayed on the miss"
    );
    let hit = b.request("GET", "/trailer/a.txt", gz);
    assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
    assert_eq!(hit.body, miss.body);
    assert_eq!(hit.header("x-trailer"), None, "{:?}", hit.headers);
    assert!(hit.trailers.is_empty());
}

/// RFC 9111 §4.3.1: a stored response with only a Last-Modified is
/// revalidated with If-Modified-Since; §4.3.3: a full response to a
/// validation replaces the stored one.
#[test]
fn validation_by_date_and_a_changed_response_replaces_the_stored_one() {
    let b = start("", "");
    b.get("/lm/a.txt");
    thread::sleep(Duration::from_millis(2100));
    let r = b.get("/lm/a.txt");
    assert_eq!(
        r.header("cache-status"),
        Some("levee; hit; fwd=stale; fwd-status=304")
    );
    assert_eq!(r.header("etag"), None, "nginx sends no ETag here");
    b.nginx.put_file("lm/b.txt", b"v1");
    b.get("/lm/b.txt");
    thread::sleep(Duration::from_millis(2100));
    b.nginx.put_file("lm/b.txt", b"v2-changed");
    let changed = b.get("/lm/b.txt");
    assert_eq!(changed.body, b"v2-changed");
    assert_eq!(
        changed.header("cache-status"),
        Some("levee; fwd=stale; stored")
    );
    // Served from the store (max-age=1 with a Date in whole seconds may
    // already have it revalidated again, so any kind of hit will do): the
    // body is the changed one.
    let hit = b.get("/lm/b.txt");
    let status = hit.header("cache-status").unwrap_or_default();
    assert!(status.starts_with("levee; hit"), "{status}");
    assert_eq!(hit.body, b"v2-changed");
}

/// RFC 9110 §6.6.1: a response stored without a Date gets the time it
/// arrived, on the miss and on every hit. nginx always sends a Date, so a
/// python origin leaves it out (support/cache.rs, `RawOrigin`).
#[test]
fn a_response_without_date_is_stored_with_one() {
    let origin = RawOrigin::start(
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    );
    let setup = LeveeSetup::new();
    let admin = free_port();
    let addr = format!("127.0.0.1:{}", origin.port);
    let text = config(&setup, admin, &addr, "", "");
    let levee = setup.start(&text);
    let get = || {
        let mut conn = RawConn::connect(levee.port);
        conn.send(&get_req("/dated", "site"));
        conn.read_response("GET")
    };
    let miss = get();
    let hit = get();
    assert!(is_hit(&hit), "{:?}", hit.headers);
    let date = miss.header("date").expect("the miss has a Date");
    assert_eq!(hit.header("date"), Some(date), "the same Date");
    assert!(date.ends_with(" GMT"), "{date}");
    assert_eq!(origin.requests().len(), 1);
}
