//! HTTP semantics of `resolve`: response fields, conditionals, ranges, HEAD.

use super::*;

/// `"{MTIME:x}-{len:x}"` for hello.txt (13 bytes).
const HELLO_ETAG: &str = "\"56273e80-d\"";
const HELLO_DATE: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

fn head(path: &str) -> StaticRequest<'_> {
    StaticRequest {
        method: b"HEAD",
        ..get(path)
    }
}

#[test]
fn full_response_fields() {
    let tree = Tree::new();
    let outcome = resolve(&tree.action(), &get("/hello.txt"));
    assert_serves(&outcome, HELLO);
    assert_eq!(
        field(&outcome, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(field(&outcome, "Content-Length"), Some("13"));
    assert_eq!(field(&outcome, "ETag"), Some(HELLO_ETAG));
    assert_eq!(field(&outcome, "Last-Modified"), Some(HELLO_DATE));
    assert_eq!(field(&outcome, "Accept-Ranges"), Some("bytes"));
    assert_eq!(field(&outcome, "Content-Range"), None);
    let StaticOutcome::Send { body, .. } = &outcome else {
        unreachable!()
    };
    assert_eq!(*body, BodyPlan::Range { start: 0, len: 13 });
}

#[test]
fn content_type_by_extension() {
    let tree = Tree::new();
    let action = tree.action();
    for (path, media) in [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/data.bin", "application/octet-stream"),
        ("/README", "application/octet-stream"),
        ("/link_in", "application/octet-stream"),
    ] {
        assert_eq!(
            field(&resolve(&action, &get(path)), "Content-Type"),
            Some(media),
            "{path}"
        );
    }
}

#[test]
fn head_has_get_fields_but_no_body() {
    let tree = Tree::new();
    let outcome = resolve(&tree.action(), &head("/hello.txt"));
    assert_eq!(status(&outcome), 200);
    assert_eq!(field(&outcome, "Content-Length"), Some("13"));
    assert_eq!(field(&outcome, "ETag"), Some(HELLO_ETAG));
    assert!(matches!(
        outcome,
        StaticOutcome::Send {
            body: BodyPlan::None,
            ..
        }
    ));
    // Range handling is defined for GET only (RFC 9110 §14.2).
    let ranged = resolve(
        &tree.action(),
        &StaticRequest {
            range: Some(b"bytes=0-1"),
            ..head("/hello.txt")
        },
    );
    assert_eq!(status(&ranged), 200);
    assert_eq!(field(&ranged, "Content-Length"), Some("13"));
}

#[test]
fn not_modified_by_etag() {
    let tree = Tree::new();
    for req in [get("/hello.txt"), head("/hello.txt")] {
        let req = StaticRequest {
            if_none_match: Some(HELLO_ETAG.as_bytes()),
            ..req
        };
        let outcome = resolve(&tree.action(), &req);
        assert_eq!(status(&outcome), 304);
        assert_eq!(field(&outcome, "ETag"), Some(HELLO_ETAG));
        assert_eq!(field(&outcome, "Last-Modified"), Some(HELLO_DATE));
        assert_eq!(field(&outcome, "Content-Length"), None);
    }
    let list = StaticRequest {
        if_none_match: Some(b"\"x\", W/\"56273e80-d\""),
        ..get("/hello.txt")
    };
    assert_eq!(status(&resolve(&tree.action(), &list)), 304);
    let star = StaticRequest {
        if_none_match: Some(b"*"),
        ..get("/hello.txt")
    };
    assert_eq!(status(&resolve(&tree.action(), &star)), 304);
    let stale = StaticRequest {
        if_none_match: Some(b"\"56273e80-c\""),
        ..get("/hello.txt")
    };
    assert_serves(&resolve(&tree.action(), &stale), HELLO);
}

#[test]
fn not_modified_by_date() {
    let tree = Tree::new();
    let same = StaticRequest {
        if_modified_since: Some(HELLO_DATE.as_bytes()),
        ..get("/hello.txt")
    };
    assert_eq!(status(&resolve(&tree.action(), &same)), 304);
    let later = StaticRequest {
        if_modified_since: Some(b"Thu, 22 Oct 2015 00:00:00 GMT"),
        ..get("/hello.txt")
    };
    assert_eq!(status(&resolve(&tree.action(), &later)), 304);
    let earlier = StaticRequest {
        if_modified_since: Some(b"Tue, 20 Oct 2015 00:00:00 GMT"),
        ..get("/hello.txt")
    };
    assert_serves(&resolve(&tree.action(), &earlier), HELLO);
    let junk = StaticRequest {
        if_modified_since: Some(b"yesterday"),
        ..get("/hello.txt")
    };
    assert_serves(&resolve(&tree.action(), &junk), HELLO);
}

#[test]
fn etag_takes_precedence_over_date() {
    let tree = Tree::new();
    let req = StaticRequest {
        if_none_match: Some(b"\"stale\""),
        if_modified_since: Some(HELLO_DATE.as_bytes()),
        ..get("/hello.txt")
    };
    assert_serves(&resolve(&tree.action(), &req), HELLO);
    let req = StaticRequest {
        if_none_match: Some(HELLO_ETAG.as_bytes()),
        if_modified_since: Some(b"Tue, 20 Oct 2015 00:00:00 GMT"),
        ..get("/hello.txt")
    };
    assert_eq!(status(&resolve(&tree.action(), &req)), 304);
}

#[test]
fn single_range() {
    let tree = Tree::new();
    let req = StaticRequest {
        range: Some(b"bytes=0-4"),
        ..get("/hello.txt")
    };
    let outcome = resolve(&tree.action(), &req);
    assert_eq!(status(&outcome), 206);
    assert_eq!(body(&outcome), b"hello");
    assert_eq!(field(&outcome, "Content-Range"), Some("bytes 0-4/13"));
    assert_eq!(field(&outcome, "Content-Length"), Some("5"));
    assert_eq!(
        field(&outcome, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(field(&outcome, "ETag"), Some(HELLO_ETAG));
}

#[test]
fn suffix_and_open_ranges() {
    let tree = Tree::new();
    let suffix = resolve(
        &tree.action(),
        &StaticRequest {
            range: Some(b"bytes=-6"),
            ..get("/hello.txt")
        },
    );
    assert_eq!(status(&suffix), 206);
    assert_eq!(body(&suffix), b"world\n");
    assert_eq!(field(&suffix, "Content-Range"), Some("bytes 7-12/13"));
    let open = resolve(
        &tree.action(),
        &StaticRequest {
            range: Some(b"bytes=7-"),
            ..get("/hello.txt")
        },
    );
    assert_eq!(body(&open), b"world\n");
    assert_eq!(field(&open, "Content-Length"), Some("6"));
}

#[test]
fn multiple_ranges_are_multipart_byteranges() {
    let tree = Tree::new();
    let req = StaticRequest {
        range: Some(b"bytes=0-1,-2, 16-18"),
        ..get("/data.bin")
    };
    let outcome = resolve(&tree.action(), &req);
    assert_eq!(status(&outcome), 206);
    let media = field(&outcome, "Content-Type").expect("Content-Type");
    let boundary = media
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart type");
    assert!(
        boundary.len() >= 32
            && boundary
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    );
    assert_eq!(field(&outcome, "Content-Range"), None);

    let mut expected = Vec::new();
    for (lead, range, bytes) in [
        ("", "0-1", &[0u8, 1][..]),
        ("\r\n", "254-255", &[254, 255]),
        ("\r\n", "16-18", &[16, 17, 18]),
    ] {
        expected.extend_from_slice(
            format!(
                "{lead}--{boundary}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Range: bytes {range}/256\r\n\r\n"
            )
            .as_bytes(),
        );
        expected.extend_from_slice(bytes);
    }
    expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&body(&outcome)),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(body(&outcome), expected);
    assert_eq!(
        field(&outcome, "Content-Length"),
        Some(expected.len().to_string().as_str())
    );

    let again = resolve(&tree.action(), &req);
    assert_ne!(
        field(&again, "Content-Type"),
        Some(media),
        "boundaries must differ"
    );
}

#[test]
fn multipart_length_matches_body() {
    let tree = Tree::new();
    let req = StaticRequest {
        range: Some(b"bytes=0-1,4-5"),
        ..get("/hello.txt")
    };
    let outcome = resolve(&tree.action(), &req);
    let length: usize = field(&outcome, "Content-Length")
        .expect("length")
        .parse()
        .expect("number");
    assert_eq!(length, body(&outcome).len());
}

#[test]
fn unsatisfiable_range_is_416() {
    let tree = Tree::new();
    for range in [&b"bytes=256-"[..], b"bytes=300-400", b"bytes=-0"] {
        let outcome = resolve(
            &tree.action(),
            &StaticRequest {
                range: Some(range),
                ..get("/data.bin")
            },
        );
        assert_eq!(status(&outcome), 416);
        assert_eq!(field(&outcome, "Content-Range"), Some("bytes */256"));
    }
}

#[test]
fn ignored_ranges_serve_the_whole_file() {
    let tree = Tree::new();
    for range in [
        &b"bytes=5-2"[..],
        b"lines=1-2",
        b"bytes=0-5,3-8",
        b"bytes=x",
    ] {
        let outcome = resolve(
            &tree.action(),
            &StaticRequest {
                range: Some(range),
                ..get("/hello.txt")
            },
        );
        assert_serves(&outcome, HELLO);
    }
    let many: Vec<String> = (0..17).map(|i| format!("{i}-{i}")).collect();
    let many = format!("bytes={}", many.join(","));
    let outcome = resolve(
        &tree.action(),
        &StaticRequest {
            range: Some(many.as_bytes()),
            ..get("/data.bin")
        },
    );
    assert_eq!(status(&outcome), 200);
}

#[test]
fn if_range_gates_the_range() {
    let tree = Tree::new();
    let ranged = |if_range: &'static [u8]| {
        let req = StaticRequest {
            range: Some(b"bytes=0-4"),
            if_range: Some(if_range),
            ..get("/hello.txt")
        };
        resolve(&tree.action(), &req)
    };
    assert_eq!(body(&ranged(HELLO_ETAG.as_bytes())), b"hello");
    assert_eq!(status(&ranged(HELLO_DATE.as_bytes())), 206);
    assert_serves(&ranged(b"\"56273e80-c\""), HELLO);
    assert_serves(&ranged(b"W/\"56273e80-d\""), HELLO);
    assert_serves(&ranged(b"Thu, 22 Oct 2015 00:00:00 GMT"), HELLO);
    assert_serves(&ranged(b"nonsense"), HELLO);
    // A stale If-Range also avoids a 416 for a range of the old version.
    let req = StaticRequest {
        range: Some(b"bytes=500-"),
        if_range: Some(b"\"old\""),
        ..get("/hello.txt")
    };
    assert_serves(&resolve(&tree.action(), &req), HELLO);
}

#[test]
fn empty_file() {
    let tree = Tree::new();
    std::fs::File::create(tree.root().join("empty.txt")).expect("create");
    let outcome = resolve(&tree.action(), &get("/empty.txt"));
    assert_serves(&outcome, b"");
    assert_eq!(field(&outcome, "Content-Length"), Some("0"));
    let ranged = resolve(
        &tree.action(),
        &StaticRequest {
            range: Some(b"bytes=0-"),
            ..get("/empty.txt")
        },
    );
    assert_eq!(status(&ranged), 416);
    assert_eq!(field(&ranged, "Content-Range"), Some("bytes */0"));
}
