//! The HTTP cache in front of a real nginx origin: storing, answering from
//! the store, coalescing, invalidation and purges. Every test counts the
//! requests that reached the origin (support/cache.rs).

mod support;

use std::time::Duration;

use support::*;

#[test]
fn a_stored_response_is_served_with_age_and_cache_status() {
    let b = start("", "");
    let first = b.get("/c/a.txt");
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    for _ in 0..3 {
        let r = b.get("/c/a.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"0123456789abcdef");
        assert!(is_hit(&r));
        assert!(r.header("age").is_some(), "Age is sent");
        assert!(r.header("etag").is_some(), "stored fields are sent");
    }
    assert_eq!(b.origin_count("/c/a.txt"), 1);
}

#[test]
fn every_spelling_of_a_path_shares_its_stored_response() {
    // The key is the path the origin is sent, normalised (docs/http1.md,
    // "Paths"): other spellings neither miss nor fill entries of their own.
    let b = start("", "");
    assert!(!is_hit(&b.get("/c/a.txt")));
    for spelling in ["//c/a.txt", "/c/./a.txt", "/x/../c/a.txt", "/%63/%61.txt"] {
        let r = b.get(spelling);
        assert_eq!(r.status, 200, "{spelling}");
        assert!(is_hit(&r), "{spelling}: {:?}", r.header("cache-status"));
    }
    assert_eq!(b.origin_count("/c/a.txt"), 1);
    assert_eq!(
        b.nginx.settled_entries().len(),
        1,
        "no other spelling reached the origin"
    );
}

#[test]
fn no_store_is_never_served_from_the_cache() {
    let b = start("", "");
    for _ in 0..3 {
        let r = b.get("/ns/a.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-status"), Some("levee; fwd=miss"));
    }
    assert_eq!(b.origin_count("/ns/a.txt"), 3);
}

#[test]
fn head_ranges_and_conditionals_are_answered_from_a_stored_get() {
    let b = start("", "");
    let full = b.get("/c/a.txt");
    let etag = full
        .header("etag")
        .expect("nginx sends an ETag")
        .to_string();
    let head = b.request("HEAD", "/c/a.txt", "");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("16"));
    let one = b.request("GET", "/c/a.txt", "Range: bytes=2-5\r\n");
    assert_eq!(one.status, 206);
    assert_eq!(one.body, b"2345");
    assert_eq!(one.header("content-range"), Some("bytes 2-5/16"));
    let many = b.request("GET", "/c/a.txt", "Range: bytes=0-1,10-11\r\n");
    assert_eq!(many.status, 206);
    assert!(
        many.header("content-type")
            .unwrap_or_default()
            .starts_with("multipart/byteranges")
    );
    let text = many.body_text();
    assert!(
        text.contains("01") && text.contains("ab") && text.contains("bytes 10-11/16"),
        "{text}"
    );
    let changed = b.request(
        "GET",
        "/c/a.txt",
        "Range: bytes=2-5\r\nIf-Range: \"old\"\r\n",
    );
    assert_eq!(
        changed.status, 200,
        "If-Range no longer holds: the whole body"
    );
    let same = format!("Range: bytes=2-5\r\nIf-Range: {etag}\r\n");
    assert_eq!(b.request("GET", "/c/a.txt", &same).status, 206);
    let bad = b.request("GET", "/c/a.txt", "Range: bytes=100-200\r\n");
    assert_eq!(bad.status, 416);
    let cond = b.request("GET", "/c/a.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(cond.status, 304);
    let other = b.request("GET", "/c/a.txt", "If-None-Match: \"nope\"\r\n");
    assert_eq!(other.status, 200);
    assert_eq!(b.origin_count("/c/a.txt"), 1, "all from one stored GET");
}

/// A HEAD miss fetches with GET, stores, and answers with the head only
/// (nginx's `proxy_cache_convert_head`); the GET after it is a hit.
#[test]
fn a_head_miss_is_fetched_as_get_and_stored() {
    let b = start("", "");
    b.nginx.put_file("c/head.txt", b"0123456789abcdef");
    let head = b.request("HEAD", "/c/head.txt", "");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("16"));
    assert_eq!(head.header("cache-status"), Some("levee; fwd=miss; stored"));
    let get = b.get("/c/head.txt");
    assert!(is_hit(&get));
    assert_eq!(get.body, b"0123456789abcdef");
    assert!(is_hit(&b.request("HEAD", "/c/head.txt", "")));
    let seen = origin_methods(&b, "/c/head.txt");
    assert_eq!(seen, ["GET"], "one origin request, a GET");
}

/// A HEAD for a response that may not be stored is answered with the
/// GET's head; later ones go to the upstream as HEADs (hit-for-miss).
#[test]
fn a_head_miss_for_an_uncacheable_response_gets_the_get_head() {
    let b = start("", "");
    for _ in 0..2 {
        let head = b.request("HEAD", "/ns/a.txt", "");
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(head.header("content-length"), Some("16"));
    }
    let seen = origin_methods(&b, "/ns/a.txt");
    assert_eq!(seen, ["GET", "HEAD"], "one GET finds it uncacheable");
}

/// The methods of the origin's requests for `path`, in order.
fn origin_methods(b: &Bench, path: &str) -> Vec<String> {
    b.nginx
        .settled_entries()
        .iter()
        .filter(|e| e.get("uri") == path)
        .map(|e| e.get("method").to_string())
        .collect()
}

#[test]
fn variants_are_stored_per_normalised_accept_encoding() {
    let b = start("", "");
    b.request("GET", "/vary/a.txt", "Accept-Encoding: gzip, deflate\r\n");
    b.request("GET", "/vary/a.txt", "");
    let gz = b.request("GET", "/vary/a.txt", "Accept-Encoding: deflate, GZIP\r\n");
    assert!(is_hit(&gz));
    let plain = b.request("GET", "/vary/a.txt", "");
    assert!(is_hit(&plain));
    assert_eq!(b.origin_count("/vary/a.txt"), 2);
}

#[test]
fn a_thousand_concurrent_misses_make_one_origin_request() {
    let b = start("", "");
    // 24 KiB at 20 KiB/s: the first fetch takes over a second.
    let body = random_bytes(24 * 1024, 7);
    b.nginx.put_file("slowc/big.bin", &body);
    for r in b.parallel_gets("/slowc/big.bin", 1000) {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
    }
    assert_eq!(b.origin_count("/slowc/big.bin"), 1);
    assert!(metric(b.admin, "levee_cache_coalesced_total").is_some_and(|n| n > 0.0));
}

#[test]
fn an_uncacheable_response_releases_its_waiters_and_is_remembered() {
    // Waiters that were not released would wait a minute, past the
    // clients' 10 s read timeout.
    let b = start("", "lock_timeout = \"60s\"");
    b.nginx
        .put_file("slowns/big.bin", &random_bytes(24 * 1024, 3));
    for r in b.parallel_gets("/slowns/big.bin", 10) {
        assert_eq!(r.status, 200);
    }
    assert_eq!(b.origin_count("/slowns/big.bin"), 10);
    let coalesced = metric(b.admin, "levee_cache_coalesced_total");
    for r in b.parallel_gets("/slowns/big.bin", 5) {
        assert_eq!(r.status, 200);
    }
    assert_eq!(b.origin_count("/slowns/big.bin"), 15);
    assert_eq!(
        metric(b.admin, "levee_cache_coalesced_total"),
        coalesced,
        "hit-for-miss: later misses do not wait"
    );
}

#[test]
fn a_response_over_the_object_cap_is_relayed_but_not_stored() {
    let b = start("", "max_object_size = \"8k\"");
    let body = random_bytes(20 * 1024, 5);
    b.nginx.put_file("c/big.bin", &body);
    for _ in 0..2 {
        let r = b.get("/c/big.bin");
        assert_eq!(r.body, body);
        assert_eq!(r.header("cache-status"), Some("levee; fwd=miss"));
    }
    assert_eq!(b.origin_count("/c/big.bin"), 2);
}

#[test]
fn only_if_cached_misses_get_504() {
    let b = start("", "");
    let r = b.request("GET", "/c/a.txt", "Cache-Control: only-if-cached\r\n");
    assert_eq!(r.status, 504);
    assert_eq!(b.origin_count("/c/a.txt"), 0);
}

#[test]
fn authorization_is_not_cached_without_permission() {
    let b = start("", "");
    for _ in 0..2 {
        b.request("GET", "/c/a.txt", "Authorization: Basic dTpw\r\n");
    }
    assert_eq!(b.origin_count("/c/a.txt"), 2);
}

#[test]
fn bypass_cookie_skips_the_cache() {
    let b = start("cache_bypass_cookies = \"session\"", "");
    b.get("/c/a.txt");
    let r = b.request("GET", "/c/a.txt", "Cookie: session=1\r\n");
    assert!(r.header("cache-status").is_none());
    assert!(is_hit(&b.get("/c/a.txt")));
    assert_eq!(b.origin_count("/c/a.txt"), 2);
}

#[test]
fn a_successful_put_invalidates_the_stored_response() {
    let b = start("", "");
    b.nginx.put_file("dav/doc.txt", b"old");
    assert_eq!(b.get("/dav/doc.txt").body, b"old");
    assert!(is_hit(&b.get("/dav/doc.txt")));
    let put = b.request("PUT", "/dav/doc.txt", "Content-Length: 3\r\n\r\nnew");
    assert!(put.status == 201 || put.status == 204, "{}", put.status);
    let after = b.get("/dav/doc.txt");
    assert_eq!(after.body, b"new");
    assert_eq!(b.origin_count("/dav/doc.txt"), 3, "GET, PUT, GET");
}

#[test]
fn a_successful_post_invalidates_its_same_host_location_only() {
    let b = start("", "");
    b.get("/c/a.txt");
    let other = b.request("POST", "/elsewhere", "Content-Length: 2\r\n\r\nhi");
    assert_eq!(other.status, 201);
    assert!(
        is_hit(&b.get("/c/a.txt")),
        "another host's Location is left alone"
    );
    let made = b.request("POST", "/make", "Content-Length: 2\r\n\r\nhi");
    assert_eq!(made.status, 201);
    let after = b.get("/c/a.txt");
    assert_eq!(
        after.header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    assert_eq!(b.origin_count("/c/a.txt"), 2);
}

#[test]
fn purge_method_from_an_allowed_network() {
    let b = start("", "");
    b.get("/c/a.txt");
    let purged = b.request("PURGE", "/c/a.txt", "");
    assert_eq!(purged.status, 200);
    assert_eq!(b.request("PURGE", "/c/a.txt", "").status, 404);
    assert_eq!(
        b.get("/c/a.txt").header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    assert_eq!(b.origin_count("/c/a.txt"), 2);
}

#[test]
fn admin_purges_by_tag_prefix_and_url_and_metrics_count() {
    let b = start("", "");
    for p in ["/tag/a.txt", "/tag/b.txt", "/c/a.txt", "/c/a.txt"] {
        b.get(p);
    }
    assert_eq!(metric(b.admin, "levee_cache_stored_total"), Some(3.0));
    assert_eq!(metric(b.admin, "levee_cache_hits_total"), Some(1.0));
    assert_eq!(metric(b.admin, "levee_cache_misses_total"), Some(3.0));
    // The shared tier has each object a round trip after its response
    // (Fill::finish): the count may lag the last answer.
    let stored = poll(Duration::from_secs(10), || {
        (b.entries() == 3.0).then_some(())
    });
    assert!(stored.is_some(), "{} entries", b.entries());
    assert!(b.bytes() > 48.0, "{}", b.bytes());
    let purge = |body: &str| {
        let (status, text) = admin_request(b.admin, "POST", "/cache/purge", body);
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        (status, v["purged"].as_u64())
    };
    assert_eq!(purge(r#"{"tag": "blue"}"#), (200, Some(2)));
    assert_eq!(purge(r#"{"prefix": "http://site/c/"}"#), (200, Some(1)));
    // In a fleet (the shared tier's matrix) the purge went to every member
    // too, whose stores may hold what this one does not: 200 (docs/api.md).
    let nothing = if b.tier == Some("shared") { 200 } else { 404 };
    assert_eq!(
        purge(r#"{"url": "http://site/c/a.txt"}"#),
        (nothing, Some(0)),
        "nothing left to purge says so"
    );
    assert_eq!(purge(r#"{"colour": "red"}"#).0, 400);
    assert_eq!(purge(r#"{"url": "site/c/a.txt"}"#).0, 400, "not a URL");
    assert_eq!(b.entries(), 0.0);
    assert_eq!(
        b.get("/tag/a.txt").header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    assert_eq!(b.origin_count("/tag/a.txt"), 2);
    b.get("/c/a.txt");
    assert_eq!(purge(r#"{"url": "http://site/c/a.txt"}"#), (200, Some(1)));
    b.get("/tag/b.txt");
    let admin = format!("127.0.0.1:{}", b.admin);
    let out = levee_cmd(&["ctl", "--admin", &admin, "purge", "tag", "red"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["purged"], 2,
        "/tag/a.txt (stored again above) and /tag/b.txt"
    );
    let bad = levee_cmd(&["ctl", "--admin", &admin, "purge", "colour", "red"]);
    assert!(!bad.status.success());
}

#[test]
fn stored_responses_survive_a_reload_that_keeps_the_store_size() {
    let b = start("", "");
    b.get("/c/a.txt");
    let quiet = b
        .config
        .replace("cache = true\n", "cache = true\ncache_status = false\n");
    b.levee.write_config(&quiet);
    b.levee.reload();
    let applied = poll(Duration::from_secs(5), || {
        let r = b.get("/c/a.txt");
        r.header("cache-status").is_none().then_some(r)
    })
    .expect("the reload applied");
    assert!(applied.header("age").is_some(), "answered from the store");
    assert_eq!(b.origin_count("/c/a.txt"), 1);
    let resized = quiet.replacen("[cache]\n", "[cache]\nmax_size = \"64m\"\n", 1);
    b.levee.write_config(&resized);
    b.levee.reload();
    poll(Duration::from_secs(5), || {
        (metric(b.admin, "levee_cache_entries") == Some(0.0)).then_some(())
    })
    .expect("a new size starts an empty store");
    let after = b.get("/c/a.txt");
    if b.tier.is_some() {
        // The memory tier started empty; the tier under test kept it.
        assert!(after.header("age").is_some(), "answered from the store");
        assert_eq!(b.origin_count("/c/a.txt"), 1);
    } else {
        assert_eq!(b.origin_count("/c/a.txt"), 2);
    }
}

/// A purge names the URL as clients used it, port included, and matches
/// the key it was stored under; a purge that matched nothing says so, in
/// the API's answer and in `levee ctl`'s output and exit status.
#[test]
fn a_purge_by_url_with_a_port_matches_and_an_empty_one_says_so() {
    let b = start("", "");
    let host = format!("site:{}", b.levee.port);
    for _ in 0..2 {
        let mut conn = RawConn::connect(b.levee.port);
        conn.send(&get_req("/c/a.txt", &host));
        conn.read_response("GET");
    }
    assert_eq!(b.origin_requests("/c/a.txt", 1), 1, "stored");
    let admin = format!("127.0.0.1:{}", b.admin);
    let url = format!("http://{host}/c/a.txt");
    let out = levee_cmd(&["ctl", "--admin", &admin, "purge", "url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["purged"], 1);
    let again = levee_cmd(&["ctl", "--admin", &admin, "purge", "url", &url]);
    if b.tier == Some("shared") {
        // In a fleet the purge went to every member: not a failure, and
        // this member's count says it removed nothing more (docs/api.md).
        assert!(again.status.success(), "sent to the fleet");
        let v: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON");
        assert_eq!(v["purged"], 0);
        assert_eq!(v["fleet"], "sent to every member");
    } else {
        assert!(!again.status.success(), "nothing matched: a failure");
        let said = String::from_utf8_lossy(&again.stderr);
        assert!(said.contains("nothing stored matches url"), "{said}");
    }
    assert_eq!(
        b.get("/c/a.txt").header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
}
