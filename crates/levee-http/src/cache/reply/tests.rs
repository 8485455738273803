use levee_cache::body::{Body, Slice};
use levee_cache::freshness::Stored;
use levee_cache::policy::Head;
use levee_cache::store::Object;

use super::answer;
use crate::message::RequestHead;

fn request(text: &str) -> RequestHead {
    crate::h1::test_request(text)
}

fn object() -> Object {
    let fields: [(&[u8], &[u8]); 3] = [
        (b"Content-Type", b"text/plain"),
        (b"ETag", b"\"v1\""),
        (b"Last-Modified", b"Tue, 01 Dec 2026 00:00:00 GMT"),
    ];
    let head = Head::plain(fields.into_iter());
    Object {
        status: 200,
        visible: head.visible,
        head: head.lines,
        body: Body::from(&b"0123456789"[..]),
        meta: Stored {
            status: 200,
            ..Stored::default()
        },
        tags: Box::default(),
    }
}

fn get(extra: &str) -> RequestHead {
    request(&format!("GET /a HTTP/1.1\r\nHost: h\r\n{extra}\r\n"))
}

fn text(a: &super::Answer) -> String {
    String::from_utf8_lossy(&a.head).into_owned()
}

#[test]
fn a_plain_hit_carries_age_status_and_length() {
    let a = answer(
        &object(),
        &get(""),
        42,
        b"Cache-Status: levee; hit\r\n",
        true,
    );
    assert_eq!(a.status, 200);
    let head = text(&a);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"),
        "{head}"
    );
    assert!(head.contains("Age: 42\r\nCache-Status: levee; hit\r\nContent-Length: 10\r\n\r\n"));
    assert_eq!(a.body_len(), 10);
}

#[test]
fn conditionals_prefer_if_none_match() {
    let o = object();
    assert_eq!(
        answer(&o, &get("If-None-Match: W/\"v1\"\r\n"), 0, b"", true).status,
        304
    );
    assert_eq!(
        answer(&o, &get("If-None-Match: \"x\", \"v1\"\r\n"), 0, b"", true).status,
        304
    );
    // A non-matching ETag wins over a matching date.
    let both = "If-None-Match: \"x\"\r\nIf-Modified-Since: Wed, 02 Dec 2026 00:00:00 GMT\r\n";
    assert_eq!(answer(&o, &get(both), 0, b"", true).status, 200);
    let since = "If-Modified-Since: Wed, 02 Dec 2026 00:00:00 GMT\r\n";
    let a = answer(&o, &get(since), 0, b"", true);
    assert_eq!(a.status, 304);
    assert!(
        !text(&a).contains("Content-Length"),
        "a 304 announces no length"
    );
    let before = "If-Modified-Since: Mon, 30 Nov 2026 00:00:00 GMT\r\n";
    assert_eq!(answer(&o, &get(before), 0, b"", true).status, 200);
}

#[test]
fn ranges_and_if_range() {
    let o = object();
    let a = answer(&o, &get("Range: bytes=-3\r\n"), 0, b"", true);
    let bytes: Vec<u8> = a
        .body
        .iter()
        .flat_map(|s| match s {
            Slice::Bytes(b) => b.to_vec(),
            Slice::File { .. } => panic!("a memory body"),
        })
        .collect();
    assert_eq!((a.status, bytes), (206, b"789".to_vec()));
    assert!(text(&a).contains("Content-Range: bytes 7-9/10\r\n"));
    let stale = answer(
        &o,
        &get("Range: bytes=0-1\r\nIf-Range: \"v0\"\r\n"),
        0,
        b"",
        true,
    );
    assert_eq!(stale.status, 200);
    let weak = answer(
        &o,
        &get("Range: bytes=0-1\r\nIf-Range: W/\"v1\"\r\n"),
        0,
        b"",
        true,
    );
    assert_eq!(weak.status, 200, "If-Range needs a strong validator");
    let date = "Range: bytes=0-1\r\nIf-Range: Tue, 01 Dec 2026 00:00:00 GMT\r\n";
    assert_eq!(answer(&o, &get(date), 0, b"", true).status, 206);
    assert_eq!(
        answer(&o, &get("Range: bytes=20-\r\n"), 0, b"", true).status,
        416
    );
}

#[test]
fn head_and_http10() {
    let o = object();
    let head = request("HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n");
    let a = answer(&o, &head, 0, b"", true);
    assert!(a.body.is_empty());
    assert!(text(&a).contains("Content-Length: 10\r\n"));
    let old = request("GET /a HTTP/1.0\r\nHost: h\r\n\r\n");
    assert!(text(&answer(&o, &old, 0, b"", true)).contains("Connection: keep-alive\r\n"));
    assert!(text(&answer(&o, &old, 0, b"", false)).contains("Connection: close\r\n"));
}

/// RFC 9111 §4.3.2: without a stored Last-Modified, If-Modified-Since is
/// evaluated against the stored Date.
#[test]
fn if_modified_since_falls_back_to_the_stored_date() {
    let fields: [(&[u8], &[u8]); 1] = [(b"Date", b"Tue, 01 Dec 2026 00:00:00 GMT")];
    let head = Head::plain(fields.into_iter());
    let o = Object {
        visible: head.visible,
        head: head.lines,
        ..object()
    };
    let after = "If-Modified-Since: Wed, 02 Dec 2026 00:00:00 GMT\r\n";
    assert_eq!(answer(&o, &get(after), 0, b"", true).status, 304);
    let before = "If-Modified-Since: Mon, 30 Nov 2026 00:00:00 GMT\r\n";
    assert_eq!(answer(&o, &get(before), 0, b"", true).status, 200);
}

/// Hidden fields (targeted cache control that stops at levee) are stored
/// but never sent, whole or shaped (a 304, a range).
#[test]
fn hidden_fields_are_never_sent() {
    let o = object();
    let mut lines = o.head.to_vec();
    lines.extend_from_slice(b"Levee-Cache-Control: max-age=600\r\n");
    let hidden = Object {
        head: lines.into_boxed_slice(),
        ..object()
    };
    assert!(hidden.field("levee-cache-control").is_some(), "stored");
    for req in ["", "Range: bytes=0-1\r\n", "If-None-Match: \"v1\"\r\n"] {
        let a = answer(&hidden, &get(req), 0, b"", true);
        assert!(
            !text(&a).contains("Levee-Cache-Control"),
            "{req}: {}",
            text(&a)
        );
        assert!(text(&a).contains("ETag"), "{req}");
    }
}

/// RFC 9111 §4.3.2: If-Match and If-Unmodified-Since are for the origin; a
/// cache does not evaluate them and answers from the store.
#[test]
fn conditionals_for_the_origin_are_not_evaluated() {
    let o = object();
    for cond in [
        "If-Match: \"other\"\r\n",
        "If-Unmodified-Since: Mon, 30 Nov 2026 00:00:00 GMT\r\n",
    ] {
        assert_eq!(answer(&o, &get(cond), 0, b"", true).status, 200, "{cond}");
    }
}
