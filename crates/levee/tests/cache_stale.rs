//! The HTTP cache with stale responses: revalidation (304),
//! stale-while-revalidate, and serving stale while the origin is down.

mod support;

use std::thread;
use std::time::Duration;

use support::*;

#[test]
fn stale_is_served_while_the_origin_is_down_within_the_limit() {
    let mut b = start("", "stale_if_down = \"3s\"");
    b.get("/short/a.txt");
    b.get("/mr/a.txt");
    drop(std::mem::replace(&mut b.nginx, Nginx::start("")));
    thread::sleep(Duration::from_millis(1500));
    let stale = b.get("/short/a.txt");
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, b"0123456789abcdef");
    let status = stale.header("cache-status").unwrap_or_default();
    assert!(status.contains("fwd=stale"), "{status}");
    let head = b.request("HEAD", "/short/a.txt", "");
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("16"))
    );
    // 502 (connect refused) or 503 (passive health has ejected the server).
    let down = |status: u16| matches!(status, 502 | 503);
    let mr = b.get("/mr/a.txt").status;
    assert!(down(mr), "must-revalidate forbids stale: {mr}");
    // Whole seconds: staleness 4 or more is past the 3 s allowance.
    thread::sleep(Duration::from_millis(4000));
    let past = b.get("/short/a.txt").status;
    assert!(down(past), "past stale_if_down: {past}");
}

/// RFC 9111 §4.2.4, §5.2.2.4, §5.2.2.10: with the origin unreachable, a
/// response that said no-cache or s-maxage is not served stale (a shared
/// cache must revalidate it); the others are, and Cache-Status names why:
/// the response's stale-if-error, or the route's stale_if_down.
#[test]
fn stale_on_failure_obeys_the_response_and_names_its_reason() {
    let mut b = start("", "stale_if_down = \"1h\"");
    for path in [
        "/nocache/a.txt",
        "/smaxs/a.txt",
        "/short/a.txt",
        "/sie/a.txt",
    ] {
        assert_eq!(b.get(path).status, 200, "{path}");
    }
    drop(std::mem::replace(&mut b.nginx, Nginx::start("")));
    thread::sleep(Duration::from_millis(2100));
    let down = |status: u16| matches!(status, 502 | 503);
    for forbidden in ["/nocache/a.txt", "/smaxs/a.txt"] {
        let r = b.get(forbidden);
        assert!(down(r.status), "{forbidden}: {} {:?}", r.status, r.headers);
    }
    for (path, reason) in [
        ("/short/a.txt", "detail=stale-if-down"),
        ("/sie/a.txt", "detail=stale-if-error"),
    ] {
        let r = b.get(path);
        assert_eq!(r.status, 200, "{path}");
        let status = r.header("cache-status").unwrap_or_default();
        assert!(
            status.starts_with("levee; hit; fwd=stale; fwd-status=") && status.ends_with(reason),
            "{path}: {status}"
        );
    }
}

#[test]
fn a_stale_response_is_revalidated_with_its_etag_and_a_304_refreshes_it() {
    let b = start("", "");
    assert_eq!(b.get("/refresh/a.txt").status, 200);
    thread::sleep(Duration::from_millis(2100));
    let lenient = b.request("GET", "/refresh/a.txt", "Cache-Control: max-stale=60\r\n");
    assert_eq!(
        lenient.header("cache-status"),
        Some("levee; hit; detail=stale")
    );
    let r = b.get("/refresh/a.txt");
    assert_eq!(r.status, 200, "the client asked unconditionally");
    assert_eq!(r.body, b"0123456789abcdef");
    assert_eq!(
        r.header("cache-status"),
        Some("levee; hit; fwd=stale; fwd-status=304")
    );
    let statuses: Vec<String> = b
        .nginx
        .wait_entries("/refresh/a.txt", 2)
        .iter()
        .map(|e| e.get("status"))
        .collect();
    assert_eq!(statuses, ["200", "304"]);
    assert!(is_hit(&b.get("/refresh/a.txt")));
}

/// `s-maxage=1, stale-while-revalidate=30` in one field (what frameworks
/// such as Next.js send): s-maxage forbids stale use only by implication,
/// and the response grants this one itself, so the stale copy answers at
/// once while a refresh runs, as CDNs do.
#[test]
fn s_maxage_with_stale_while_revalidate_answers_stale_and_refreshes() {
    let b = start("", "");
    b.nginx.put_file("smswr/a.txt", b"v1");
    assert_eq!(b.get("/smswr/a.txt").body, b"v1");
    thread::sleep(Duration::from_millis(2100));
    b.nginx.put_file("smswr/a.txt", b"v2-new");
    let stale = b.get("/smswr/a.txt");
    assert_eq!(stale.body, b"v1", "the stale response answers at once");
    assert_eq!(
        stale.header("cache-status"),
        Some("levee; hit; detail=stale-while-revalidate")
    );
    poll(Duration::from_secs(5), || {
        (b.get("/smswr/a.txt").body == b"v2-new").then_some(())
    })
    .expect("the background refresh stored the new response");
    assert_eq!(b.origin_requests("/smswr/a.txt", 2), 2);
}

/// A background refresh sends what the request that started it would
/// have: the route's request header rules and that request's id.
#[test]
fn a_background_refresh_carries_the_route_rules_and_the_request_id() {
    let b = start(
        "request_headers = { set = { \"X-Foo\" = \"rule for {host}\" } }\n",
        "[http]\nrequest_id_header = \"X-Bar\"\n",
    );
    b.nginx.put_file("swr/b.txt", b"v1");
    assert_eq!(b.get("/swr/b.txt").body, b"v1");
    thread::sleep(Duration::from_millis(2100));
    b.nginx.put_file("swr/b.txt", b"v2-new");
    let stale = b.get("/swr/b.txt");
    assert_eq!(
        stale.header("cache-status"),
        Some("levee; hit; detail=stale-while-revalidate")
    );
    // Each stale hit spawns a refresh and the first to run leads it: on a
    // loaded machine that may be a later hit's (the poll's), on another
    // worker. Any stale hit's id will do; the miss's or a new one will not.
    let mut ids = vec![
        stale
            .header("x-bar")
            .expect("the stale hit's id")
            .to_owned(),
    ];
    poll(Duration::from_secs(5), || {
        let r = b.get("/swr/b.txt");
        if r.body == b"v2-new" {
            return Some(());
        }
        ids.extend(r.header("x-bar").map(str::to_owned));
        None
    })
    .expect("the background refresh stored the new response");
    let entries = b.nginx.wait_entries("/swr/b.txt", 2);
    let refresh = &entries[1];
    assert_eq!(refresh.get("x_foo"), "rule for site");
    assert!(ids.contains(&refresh.get("x_bar")), "{refresh:?} {ids:?}");
    assert!(
        !ids.contains(&entries[0].get("x_bar")),
        "each request has its own id"
    );
}

#[test]
fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let b = start("", "");
    b.nginx.put_file("swr/a.txt", b"v1");
    assert_eq!(b.get("/swr/a.txt").body, b"v1");
    thread::sleep(Duration::from_millis(2100));
    b.nginx.put_file("swr/a.txt", b"v2-new");
    let stale = b.get("/swr/a.txt");
    assert_eq!(stale.body, b"v1", "the stale response answers at once");
    assert_eq!(
        stale.header("cache-status"),
        Some("levee; hit; detail=stale-while-revalidate")
    );
    let fresh = poll(Duration::from_secs(5), || {
        let r = b.get("/swr/a.txt");
        (r.body == b"v2-new").then_some(r)
    })
    .expect("the background refresh stored the new response");
    assert!(is_hit(&fresh));
    assert_eq!(
        b.origin_count("/swr/a.txt"),
        2,
        "first fetch and one refresh"
    );
    // The refresh is a request like any other: it counts in the server's
    // metrics (and passive health).
    let series = format!(
        "levee_upstream_requests_total{{upstream=\"app\",server=\"{}\"}}",
        b.nginx.addr()
    );
    assert_eq!(metric(b.admin, &series), Some(2.0));
}
