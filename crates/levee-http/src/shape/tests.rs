//! Dressing heads and minting ids.

use std::net::IpAddr;

use levee_config::{HeaderRule, HeaderRules, RouteShape, Template};

use super::*;

fn rule(name: &str, value: &str) -> HeaderRule {
    HeaderRule {
        name: name.into(),
        value: Template::parse(value).unwrap(),
    }
}

fn vars() -> Vars<'static> {
    Vars {
        client: "192.0.2.9".parse::<IpAddr>().unwrap(),
        https: true,
        host: b"shop.test",
        id: b"abc",
        upstream: Some("127.0.0.1:81".parse().unwrap()),
    }
}

fn dress<'a>(
    shape: Option<&'a Shape>,
    id: Option<(&'a IdField, &'a [u8])>,
    own: bool,
) -> Dress<'a> {
    Dress {
        hsts: None,
        own,
        shape,
        id,
        vars: vars(),
    }
}

/// Response rules: `X-Debug` set to `debug`, `X-Id` added with the
/// request id, `remove` removed; upstream software hidden.
fn response_rules(debug: &str, remove: &str) -> Shape {
    let response = HeaderRules {
        set: vec![rule("X-Debug", debug)],
        add: vec![rule("X-Id", "{request_id}")],
        remove: vec![remove.into()],
    };
    let shape = RouteShape {
        response,
        ..RouteShape::default()
    };
    Shape::build(&shape, true, &Pages::default()).unwrap()
}

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nX-Powered-By: PHP/8\r\n\
    X-Debug: 1\r\nX-Request-Id: upstream-id\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn upstream_software_is_hidden_by_default_and_kept_when_asked() {
    let hide = Shape::build(&RouteShape::default(), true, &Pages::default()).unwrap();
    let mut out = HEAD.to_vec();
    h1_head(&mut out, &dress(Some(&hide), None, false));
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("nginx") && !text.contains("PHP"), "{text}");
    assert!(
        text.ends_with("X-Debug: 1\r\nX-Request-Id: upstream-id\r\nContent-Length: 2\r\n\r\nok")
    );

    let keep = Shape::build(&RouteShape::default(), false, &Pages::default()).unwrap();
    let mut out = HEAD.to_vec();
    h1_head(&mut out, &dress(Some(&keep), None, false));
    assert_eq!(out, HEAD);
}

#[test]
fn rules_drop_set_and_add_with_variables_and_the_id_replaces_the_servers() {
    let shape = response_rules(
        "{client} via {scheme}://{host} ({upstream})",
        "content-length",
    );
    let field = IdField::build(&levee_config::Http::default()).unwrap();
    let mut out = HEAD.to_vec();
    h1_head(
        &mut out,
        &dress(Some(&shape), Some((&field, b"mine")), false),
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nX-Debug: 192.0.2.9 via https://shop.test (127.0.0.1:81)\r\n\
         X-Id: abc\r\nX-Request-Id: mine\r\n\r\nok"
    );

    // The same rules in HTTP/2.
    let mut map = HeaderMap::new();
    map.insert("server", HeaderValue::from_static("nginx"));
    map.insert("x-debug", HeaderValue::from_static("1"));
    map.insert("x-request-id", HeaderValue::from_static("upstream-id"));
    h2_head(
        &mut map,
        &dress(Some(&shape), Some((&field, b"mine")), false),
    );
    assert!(map.get("server").is_none());
    assert_eq!(
        map["x-debug"],
        "192.0.2.9 via https://shop.test (127.0.0.1:81)"
    );
    assert_eq!(map["x-id"], "abc");
    assert_eq!(map["x-request-id"], "mine");
}

#[test]
fn response_rules_touch_levees_own_responses_only_with_always() {
    let mut shape = RouteShape {
        response: HeaderRules {
            add: vec![rule("X-Frame-Options", "DENY")],
            ..HeaderRules::default()
        },
        ..RouteShape::default()
    };
    let own = b"HTTP/1.1 502 Bad Gateway\r\nServer: levee\r\nContent-Length: 0\r\n\r\n";
    let mut out = own.to_vec();
    h1_head(
        &mut out,
        &dress(
            Some(&Shape::build(&shape, true, &Pages::default()).unwrap()),
            None,
            true,
        ),
    );
    assert_eq!(out, own, "levee's own Server stays; no rule without always");
    shape.always = true;
    let mut out = own.to_vec();
    h1_head(
        &mut out,
        &dress(
            Some(&Shape::build(&shape, true, &Pages::default()).unwrap()),
            None,
            true,
        ),
    );
    assert!(out.ends_with(b"Content-Length: 0\r\nX-Frame-Options: DENY\r\n\r\n"));
}

#[test]
fn an_expanded_value_never_carries_a_control_character() {
    let v = Vars {
        host: b"a\r\nInjected: 1\0",
        ..vars()
    };
    let mut out = Vec::new();
    expand(&Template::parse("h={host}").unwrap(), &v, &mut out);
    assert_eq!(out, b"h=aInjected: 1");
}

#[test]
fn minted_ids_are_32_hex_digits_and_distinct() {
    let a = RequestId::mint();
    let b = RequestId::mint();
    assert_eq!(a.as_bytes().len(), 32);
    assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
    assert_ne!(a.as_bytes(), b.as_bytes());
    let other = std::thread::spawn(RequestId::mint).join().unwrap();
    assert_ne!(
        a.as_bytes()[..16],
        other.as_bytes()[..16],
        "threads differ in prefix"
    );
}

#[test]
fn a_clients_id_is_taken_only_when_short_and_visible() {
    assert_eq!(RequestId::accept(b"req-42").unwrap().as_bytes(), b"req-42");
    assert!(RequestId::accept(b"").is_none());
    assert!(RequestId::accept(b"has space").is_none());
    assert!(RequestId::accept(b"a\r\nb").is_none());
    assert!(RequestId::accept(&[b'a'; 65]).is_none());
    assert!(RequestId::accept(&[b'a'; 64]).is_some());
}

#[test]
fn hsts_goes_after_the_status_line_only_when_set() {
    let original = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let mut unchanged = original.clone();
    h1_head(&mut unchanged, &dress(None, None, true));
    assert_eq!(unchanged, original);
    let mut with = original.clone();
    let d = Dress {
        hsts: Some(31536000),
        ..dress(None, None, true)
    };
    h1_head(&mut with, &d);
    assert_eq!(
        with,
        b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000\r\n\
          Content-Length: 2\r\n\r\nok"
    );
}

/// A relayed head is dressed as it is written (h1/head.rs); the result is
/// the same as dressing the written head afterwards, as h1_head does.
#[test]
fn a_head_dressed_as_written_is_the_head_dressed_after() {
    let limits = crate::h1::HeadLimits {
        max_request_line: 8192,
        max_header_bytes: 32 * 1024,
        max_headers: 100,
    };
    let raw = b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n";
    let Ok(crate::h1::Parsed::Complete(parts, n)) = crate::h1::parse_request(raw, 0, &limits)
    else {
        panic!("a request head");
    };
    let req = parts.into_head(bytes::Bytes::copy_from_slice(&raw[..n]));
    let raw = &HEAD[..HEAD.len() - 2];
    let Ok(crate::h1::Parsed::Complete(parts, n)) = crate::h1::parse_response(raw, 1 << 16, false)
    else {
        panic!("a response head");
    };
    let resp = parts.into_head(bytes::Bytes::copy_from_slice(&raw[..n]));
    let framing = crate::h1::head::client_framing(&resp, &req, true);
    let rules = response_rules("{client}", "set-cookie");
    let hide = Shape::build(&RouteShape::default(), true, &Pages::default()).unwrap();
    let keep = Shape::build(&RouteShape::default(), false, &Pages::default()).unwrap();
    let field = IdField::build(&levee_config::Http::default()).unwrap();
    let id = Some((&field, &b"mine"[..]));
    let extra = b"Set-Cookie: sticky=1\r\nX-Cache: HIT\r\n";
    let plain = dress(None, None, false);
    for shape in [None, Some(&rules), Some(&hide), Some(&keep)] {
        for id in [None, id] {
            for hsts in [None, Some(60)] {
                let d = Dress {
                    hsts,
                    ..dress(shape, id, false)
                };
                let written = crate::h1::head::client_response(&resp, &req, framing, extra, &d);
                let mut after =
                    crate::h1::head::client_response(&resp, &req, framing, extra, &plain);
                h1_head(&mut after, &d);
                assert_eq!(
                    String::from_utf8_lossy(&written),
                    String::from_utf8_lossy(&after)
                );
            }
        }
    }
}
