//! The HTTP cache in front of a real nginx origin. Every test counts the
//! requests that reached the origin in nginx's access log, so it proves
//! whether the cache answered.

mod support;

use std::thread;
use std::time::Duration;

use support::*;

/// nginx locations: each sets the caching fields a test needs.
const ORIGIN: &str = r#"
        location /c/ { add_header Cache-Control "max-age=60"; }
        location /ns/ { add_header Cache-Control "no-store"; }
        location /short/ { add_header Cache-Control "max-age=1"; }
        location /swr/ { add_header Cache-Control "max-age=1, stale-while-revalidate=30"; }
        location /mr/ { add_header Cache-Control "max-age=1, must-revalidate"; }
        location /vary/ { add_header Cache-Control "max-age=60"; add_header Vary "Accept-Encoding"; }
        location /tag/ { add_header Cache-Control "max-age=60"; add_header Surrogate-Key "red blue"; }
        location /slowc/ { limit_rate 20k; add_header Cache-Control "max-age=60"; }
        location /dav/ {
            dav_methods PUT DELETE;
            create_full_put_path on;
            add_header Cache-Control "max-age=60";
        }
"#;

/// A levee config with a caching route to `origin`; `route` and `tail` are
/// added to the route and after the upstream.
fn config(setup: &LeveeSetup, admin: u16, origin: &str, route: &str, tail: &str) -> String {
    format!(
        r#"pid_file = "{pid}"
workers = 2

[log]
access = "off"

[admin]
address = "127.0.0.1:{admin}"

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
proxy = "app"
cache = true
{route}

[upstream.app]
servers = ["{origin}"]

[cache]
purge_allow = "127.0.0.1/32"
{tail}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
    )
}

struct Bench {
    nginx: Nginx,
    levee: Levee,
    admin: u16,
}

fn start(route: &str, tail: &str) -> Bench {
    let nginx = Nginx::start(ORIGIN);
    for f in [
        "c/a.txt",
        "ns/a.txt",
        "short/a.txt",
        "mr/a.txt",
        "vary/a.txt",
        "tag/a.txt",
        "tag/b.txt",
    ] {
        nginx.put_file(f, b"0123456789abcdef");
    }
    let setup = LeveeSetup::new();
    let admin = free_port();
    let text = config(&setup, admin, &nginx.addr(), route, tail);
    let levee = setup.start(&text);
    Bench {
        nginx,
        levee,
        admin,
    }
}

impl Bench {
    /// One request on a fresh connection.
    fn request(&self, method: &str, path: &str, headers: &str) -> Response {
        let mut conn = RawConn::connect(self.levee.port);
        let req = format!("{method} {path} HTTP/1.1\r\nHost: site\r\n{headers}\r\n");
        conn.send(req.as_bytes());
        conn.read_response(method)
    }

    fn get(&self, path: &str) -> Response {
        self.request("GET", path, "")
    }

    /// Requests for `path` the origin has logged (complete ones).
    fn origin_count(&self, path: &str) -> usize {
        // nginx logs after the response; give it a moment to be sure.
        thread::sleep(Duration::from_millis(100));
        self.nginx
            .entries()
            .iter()
            .filter(|e| e.get("uri") == path)
            .count()
    }
}

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
        assert_eq!(r.header("cache-status"), Some("levee; hit"));
        assert!(r.header("age").is_some(), "Age is sent");
        assert!(r.header("etag").is_some(), "stored fields are sent");
    }
    assert_eq!(b.origin_count("/c/a.txt"), 1);
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
    let bad = b.request("GET", "/c/a.txt", "Range: bytes=100-200\r\n");
    assert_eq!(bad.status, 416);
    let cond = b.request("GET", "/c/a.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(cond.status, 304);
    let other = b.request("GET", "/c/a.txt", "If-None-Match: \"nope\"\r\n");
    assert_eq!(other.status, 200);
    assert_eq!(b.origin_count("/c/a.txt"), 1, "all from one stored GET");
}

#[test]
fn variants_are_stored_per_normalised_accept_encoding() {
    let b = start("", "");
    b.request("GET", "/vary/a.txt", "Accept-Encoding: gzip, deflate\r\n");
    b.request("GET", "/vary/a.txt", "");
    let gz = b.request("GET", "/vary/a.txt", "Accept-Encoding: deflate, GZIP\r\n");
    assert_eq!(gz.header("cache-status"), Some("levee; hit"));
    let plain = b.request("GET", "/vary/a.txt", "");
    assert_eq!(plain.header("cache-status"), Some("levee; hit"));
    assert_eq!(b.origin_count("/vary/a.txt"), 2);
}

#[test]
fn concurrent_misses_make_one_origin_request() {
    let b = start("", "");
    // 24 KiB at 20 KiB/s: the first fetch takes over a second.
    let body = random_bytes(24 * 1024, 7);
    b.nginx.put_file("slowc/big.bin", &body);
    let port = b.levee.port;
    let clients: Vec<_> = (0..40)
        .map(|_| {
            thread::spawn(move || {
                let mut conn = RawConn::connect(port);
                conn.send(&get_req("/slowc/big.bin", "site"));
                conn.read_response("GET")
            })
        })
        .collect();
    for c in clients {
        let r = c.join().expect("client thread");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
    }
    assert_eq!(b.origin_count("/slowc/big.bin"), 1);
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
    assert_eq!(b.get("/c/a.txt").header("cache-status"), Some("levee; hit"));
    assert_eq!(b.origin_count("/c/a.txt"), 2);
}

#[test]
fn a_successful_put_invalidates_the_stored_response() {
    let b = start("", "");
    b.nginx.put_file("dav/doc.txt", b"old");
    assert_eq!(b.get("/dav/doc.txt").body, b"old");
    assert_eq!(
        b.get("/dav/doc.txt").header("cache-status"),
        Some("levee; hit")
    );
    let put = b.request("PUT", "/dav/doc.txt", "Content-Length: 3\r\n\r\nnew");
    assert!(put.status == 201 || put.status == 204, "{}", put.status);
    let after = b.get("/dav/doc.txt");
    assert_eq!(after.body, b"new");
    assert_eq!(b.origin_count("/dav/doc.txt"), 3, "GET, PUT, GET");
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
    assert_eq!(
        b.get("/mr/a.txt").status,
        502,
        "must-revalidate forbids stale"
    );
    thread::sleep(Duration::from_millis(3000));
    assert_eq!(b.get("/short/a.txt").status, 502, "past stale_if_down");
    let _ = &b.admin;
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
    assert_eq!(metric(b.admin, "levee_cache_entries"), Some(3.0));
    assert!(metric(b.admin, "levee_cache_bytes").is_some_and(|n| n > 48.0));
    let purge = |body: &str| {
        let (status, text) = admin_request(b.admin, "POST", "/cache/purge", body);
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        (status, v["purged"].as_u64())
    };
    assert_eq!(purge(r#"{"tag": "blue"}"#), (200, Some(2)));
    assert_eq!(purge(r#"{"prefix": "http://site/c/"}"#), (200, Some(1)));
    assert_eq!(purge(r#"{"url": "http://site/c/a.txt"}"#), (200, Some(0)));
    assert_eq!(purge(r#"{"colour": "red"}"#).0, 400);
    assert_eq!(metric(b.admin, "levee_cache_entries"), Some(0.0));
    assert_eq!(
        b.get("/tag/a.txt").header("cache-status"),
        Some("levee; fwd=miss; stored")
    );
    assert_eq!(b.origin_count("/tag/a.txt"), 2);
    b.get("/c/a.txt");
    assert_eq!(purge(r#"{"url": "http://site/c/a.txt"}"#), (200, Some(1)));
}

#[test]
fn a_stale_response_is_revalidated_with_its_etag_and_a_304_refreshes_it() {
    let b = start("", "");
    assert_eq!(b.get("/short/a.txt").status, 200);
    thread::sleep(Duration::from_millis(2100));
    let r = b.get("/short/a.txt");
    assert_eq!(r.status, 200, "the client asked unconditionally");
    assert_eq!(r.body, b"0123456789abcdef");
    assert_eq!(
        r.header("cache-status"),
        Some("levee; hit; fwd=stale; fwd-status=304")
    );
    let statuses: Vec<String> = b
        .nginx
        .wait_entries("/short/a.txt", 2)
        .iter()
        .map(|e| e.get("status"))
        .collect();
    assert_eq!(statuses, ["200", "304"]);
    assert_eq!(
        b.get("/short/a.txt").header("cache-status"),
        Some("levee; hit")
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
    assert_eq!(fresh.header("cache-status"), Some("levee; hit"));
    assert_eq!(
        b.origin_count("/swr/a.txt"),
        2,
        "first fetch and one refresh"
    );
}
