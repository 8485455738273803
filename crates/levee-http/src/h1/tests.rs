//! HTTP/1 parser tests: the smuggling policy case by case, split reads, and
//! a property test that arbitrary input never panics.

use super::*;
use crate::message::{Framing, Version};
use crate::normal::PathError;
use proptest::prelude::*;

const LIMITS: HeadLimits = HeadLimits {
    max_request_line: 8192,
    max_header_bytes: 32 * 1024,
    max_headers: 100,
};

fn req(text: &str) -> Result<Parsed<parse::RequestParts>, HeadError> {
    parse_request(text.as_bytes(), 0, &LIMITS)
}

fn complete(text: &str) -> parse::RequestParts {
    match req(text) {
        Ok(Parsed::Complete(p, n)) => {
            assert_eq!(n, text.len());
            p
        }
        other => panic!("expected a complete head, got {other:?}"),
    }
}

fn refused(text: &str) -> HeadError {
    match req(text) {
        Err(e) => e,
        other => panic!("expected a refusal of {text:?}, got {other:?}"),
    }
}

#[test]
fn simple_get() {
    let p = complete("GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX: y\r\n\r\n");
    assert_eq!(p.version, Version::Http11);
    assert_eq!(p.framing, Framing::None);
    assert!(p.keep_alive);
    assert_eq!(p.fields.len(), 2);
}

#[test]
fn framing_by_length_and_chunked() {
    let p = complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
    assert_eq!(p.framing, Framing::Length(12));
    let p = complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
    assert_eq!(p.framing, Framing::Length(5));
    let p = complete("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(p.framing, Framing::Chunked);
}

#[test]
fn smuggling_policy() {
    use HeadError::*;
    let cases: &[(&str, HeadError, u16)] = &[
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            LengthAndChunked,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            ConflictingContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            ConflictingContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            BadContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            BadContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            BadContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
            BadContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            BadContentLength,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            ChunkedNotFinal,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            ChunkedNotFinal,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            ChunkedNotFinal,
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            UnsupportedCoding,
            501,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            ChunkedInHttp10,
            400,
        ),
        (
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            Connect,
            501,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
            BadField,
            400,
        ),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadField, 400),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            BadField,
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            BadField,
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n",
            BareLf,
            400,
        ),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine, 400),
        ("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", BadRequestLine, 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", BadVersion, 505),
        ("GET /\r\n\r\n", BadRequestLine, 400),
        ("GET / HTTP/1.1\r\n\r\n", MissingHost, 400),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            DuplicateHost,
            400,
        ),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BadHost, 400),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BadHost, 400),
    ];
    for (text, error, status) in cases {
        let got = refused(text);
        assert_eq!(got, *error, "{text:?}");
        assert_eq!(got.status(), *status, "{text:?}");
    }
}

#[test]
fn request_line_without_version_is_refused_before_the_head_ends() {
    assert_eq!(refused("GET /\r\n"), HeadError::BadRequestLine);
    assert_eq!(
        refused("GET / HTTP/1.1 x\r\nHost"),
        HeadError::BadRequestLine
    );
    assert!(matches!(
        req("\r\nGET / HTTP/1.1\r\nHost: a\r\n"),
        Ok(Parsed::Incomplete)
    ));
}

#[test]
fn http10_needs_no_host_and_closes_by_default() {
    let p = complete("GET / HTTP/1.0\r\n\r\n");
    assert!(!p.keep_alive);
    let p = complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(p.keep_alive);
}

#[test]
fn connection_tokens_are_collected() {
    let p = complete("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n");
    assert!(!p.keep_alive);
    assert_eq!(
        p.connection_tokens,
        vec![b"x-foo".to_vec().into_boxed_slice()]
    );
}

#[test]
fn absolute_form_sets_the_host() {
    let text = "GET http://b.test:81/p?q HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let p = complete(text);
    let head = p.into_head(bytes::Bytes::from(text));
    assert_eq!(head.host_name(), b"b.test");
    assert_eq!(head.uri(), b"/p?q");
    assert_eq!(head.path(), b"/p");
}

#[test]
fn only_origin_and_http_absolute_forms_are_served() {
    use HeadError::*;
    for (text, error) in [
        ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
        ("GET a.test:80 HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
        (
            "GET http://user@evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n",
            BadAbsolute,
        ),
        ("GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", BadAbsolute),
        ("GET ftp://a.test/ HTTP/1.1\r\nHost: a\r\n\r\n", BadAbsolute),
        (
            "GET file:///etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
            BadAbsolute,
        ),
        ("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", BadHost),
        ("GET http://a\\b/ HTTP/1.1\r\nHost: a\r\n\r\n", BadHost),
        (
            "GET /a?b#c HTTP/1.1\r\nHost: a\r\n\r\n",
            BadPath(PathError::Fragment),
        ),
        (
            "GET /a#c HTTP/1.1\r\nHost: a\r\n\r\n",
            BadPath(PathError::Fragment),
        ),
    ] {
        assert_eq!(refused(text), error, "{text:?}");
        assert_eq!(error.status(), 400);
    }
    let text = "GET HTTPS://B.test?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let head = complete(text).into_head(bytes::Bytes::from(text));
    assert_eq!(head.host_name(), b"B.test");
    assert_eq!(head.path(), b"/");
    assert_eq!(head.uri(), b"/?x=1");
}

#[test]
fn the_path_is_normalised_once_with_the_head() {
    let text = "GET /x/../%61dmin//a%2fb;p=1?c%6fde=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut head = complete(text).into_head(bytes::Bytes::from(text));
    assert_eq!(head.path(), b"/admin/a/b");
    assert_eq!(head.query(), b"c%6fde=1");
    assert_eq!(head.uri(), b"/admin/a%2Fb;p=1?c%6fde=1");
    assert!(!head.forwards_original());
    head.forward_original();
    assert_eq!(head.uri(), b"/x/../%61dmin//a%2fb;p=1?c%6fde=1");
    assert_eq!(
        head.path(),
        b"/admin/a/b",
        "routing still reads the normal form"
    );
    for bad in ["/..", "/admin%00", "/%c0%ae", "/a/..;/b", "/a%zz"] {
        let text = format!("GET {bad} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(matches!(refused(&text), HeadError::BadPath(_)), "{bad}");
    }
}

#[test]
fn limits_give_414_and_431() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    assert_eq!(refused(&long).status(), 414);
    let partial = format!("GET /{}", "a".repeat(9000));
    assert_eq!(refused(&partial).status(), 414);
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        refused(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).status(),
        431
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(33_000)
    );
    assert_eq!(refused(&big).status(), 431);
}

#[test]
fn split_reads_give_the_same_head_at_every_split() {
    let text = b"POST //up/./%6Coad?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc";
    let head_len = text.len() - 3;
    for split in 1..text.len() {
        let mut searched = 0;
        let first = parse_request(&text[..split], searched, &LIMITS).expect("prefix is valid");
        if split < head_len {
            assert!(matches!(first, Parsed::Incomplete), "split {split}");
            searched = split;
        }
        match parse_request(text, searched, &LIMITS) {
            Ok(Parsed::Complete(p, n)) => {
                assert_eq!(n, head_len);
                assert_eq!(p.framing, Framing::Length(3));
                let head = p.into_head(bytes::Bytes::copy_from_slice(&text[..n]));
                assert_eq!(head.path(), b"/up/load");
                assert_eq!(head.uri(), b"/up/load?x=1");
            }
            other => panic!("split {split}: {other:?}"),
        }
    }
}

#[test]
fn response_framing() {
    let r = |t: &str, head: bool| match parse_response(t.as_bytes(), 65536, head) {
        Ok(Parsed::Complete(p, _)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        r("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false).framing,
        Framing::Length(3)
    );
    assert_eq!(
        r("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).framing,
        Framing::None
    );
    assert_eq!(
        r("HTTP/1.1 204 No Content\r\n\r\n", false).framing,
        Framing::None
    );
    assert_eq!(
        r(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            false
        )
        .framing,
        Framing::None
    );
    let chunked = r(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        false,
    );
    assert_eq!(chunked.framing, Framing::Chunked);
    let close = r("HTTP/1.1 200 OK\r\n\r\n", false);
    assert_eq!(close.framing, Framing::UntilClose);
    assert!(!close.keep_alive);
    assert!(!r("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).keep_alive);
}

#[test]
fn chunked_decoding_with_extensions_and_trailers() {
    let body = b"5;ext=1\r\nhello\r\n6 ; e=\"q\"\r\n world\r\n0\r\nX-T: v\r\n\r\nNEXT";
    let mut d = ChunkedDecoder::default();
    let fed = d.feed(body).expect("valid");
    assert!(fed.done);
    assert_eq!(fed.consumed, body.len() - 4);
    let data: Vec<u8> = fed
        .data
        .iter()
        .flat_map(|r| body[r.clone()].to_vec())
        .collect();
    assert_eq!(data, b"hello world");
    assert_eq!(d.data_len, 11);
}

#[test]
fn chunked_split_reads() {
    let body = b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\nX-T: v\r\nHost: no\r\n\r\n";
    for split in 1..body.len() {
        let mut d = ChunkedDecoder::default();
        let a = d.feed(&body[..split]).expect("valid prefix");
        assert!(!a.done);
        // Only a partial trailer line is held back.
        let held = split - a.consumed;
        assert!(held == 0 || split > 23, "split {split} held {held}");
        let b = d.feed(&body[a.consumed..]).expect("valid rest");
        assert!(b.done, "split {split}");
        assert_eq!(a.consumed + b.consumed, body.len());
        assert_eq!(d.data_len, 13);
        // `Host` is never forwarded from trailers, whatever the split.
        let skipped: Vec<&[u8]> = a
            .skip
            .iter()
            .map(|r| &body[r.clone()])
            .chain(
                b.skip
                    .iter()
                    .map(|r| &body[a.consumed + r.start..a.consumed + r.end]),
            )
            .collect();
        assert_eq!(skipped, [&b"Host: no\r\n"[..]], "split {split}");
    }
}

#[test]
fn trailers_are_fields_and_some_are_never_forwarded() {
    let body =
        b"0\r\nGrpc-Status: 0\r\nContent-Length: 99\r\nTransfer-Encoding: x\r\nX-A:\t1\r\n\r\n";
    let mut d = ChunkedDecoder::default();
    let fed = d.feed(body).expect("valid");
    assert!(fed.done);
    let skipped: Vec<&[u8]> = fed.skip.iter().map(|r| &body[r.clone()]).collect();
    assert_eq!(
        skipped,
        [&b"Content-Length: 99\r\n"[..], b"Transfer-Encoding: x\r\n"]
    );
    // A body buffered whole loses them in place; what follows stays.
    let mut buf = bytes::BytesMut::from(&[&body[..], b"NEXT"].concat()[..]);
    let left = fed.drop_skipped(&mut buf);
    assert_eq!(&buf[..left], b"0\r\nGrpc-Status: 0\r\nX-A:\t1\r\n\r\n");
    assert_eq!(&buf[left..], b"NEXT");
}

#[test]
fn chunked_refusals() {
    let bad: &[(&[u8], ChunkError)] = &[
        (b"zz\r\n", ChunkError::BadSize),
        (b"\r\n", ChunkError::BadSize),
        (b"12345678901234567\r\n", ChunkError::SizeOverflow),
        (b"3\r\nabcd\r\n", ChunkError::BadDataEnd),
        (b"3\nabc", ChunkError::BadSize),
        (b"0\r\n bad\r\n\r\n", ChunkError::BadTrailer),
        // The smuggling attempt of issue 12: a request line as a trailer.
        (
            b"0\r\nGET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n",
            ChunkError::BadTrailer,
        ),
        (b"0\r\nno-colon\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\nX : v\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\n: v\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\nX: a\rb\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\nX: v\n\r\n", ChunkError::BadTrailer),
        // Whitespace after a size only before an extension.
        (b"5 \r\nhello\r\n", ChunkError::BadSize),
        (b"5\t\r\nhello\r\n", ChunkError::BadSize),
        (b"5 x\r\n", ChunkError::BadSize),
        (b"5;a\x01\r\n", ChunkError::BadSize),
    ];
    for (input, error) in bad {
        let mut d = ChunkedDecoder::default();
        assert_eq!(
            d.feed(input),
            Err(*error),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

proptest! {
    #[test]
    fn request_parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_request(&input, 0, &LIMITS);
        let _ = parse_response(&input, 65536, false);
    }

    #[test]
    fn chunked_decoder_never_panics_and_never_overreads(input in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut d = ChunkedDecoder::default();
        if let Ok(fed) = d.feed(&input) {
            prop_assert!(fed.consumed <= input.len());
            for r in fed.data.iter().chain(&fed.skip) {
                prop_assert!(r.end <= fed.consumed);
            }
        }
    }

    #[test]
    fn header_like_inputs_never_panic(
        method in "[A-Z]{1,8}",
        path in "/[ -~]{0,40}",
        fields in proptest::collection::vec(("[!-9;-~]{1,12}", "[ -~]{0,30}"), 0..12),
    ) {
        let mut text = format!("{method} {path} HTTP/1.1\r\n");
        for (n, v) in fields {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str("\r\n");
        let _ = parse_request(text.as_bytes(), 0, &LIMITS);
    }
}
