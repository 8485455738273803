//! An HTTP/2 request's head, built from its decoded fields (no I/O), with
//! the same limits and checks as an HTTP/1 head.
//!
//! The `h2` crate has already refused what RFC 9113 §8.2 and §8.3 call
//! malformed (connection-specific fields, `te` other than `trailers`,
//! upper-case names, missing or duplicate pseudo-fields) with RST_STREAM
//! PROTOCOL_ERROR; this repeats the checks that matter to HTTP/1 framing
//! (the head may go to an HTTP/1 server), so that a change there cannot
//! open a smuggling path. The head's bytes are laid out as the HTTP/1.1
//! head a server would be sent (`:authority` as `Host`, split cookies
//! joined, `transfer-encoding: chunked` for a body without a length), and
//! the positions of its parts are taken as it is written; what follows is
//! `h1::parse`'s own (`request_parts`): size limits, CONNECT, the target's
//! form and normalisation, framing and Host.

use bytes::Bytes;
use http::request::Parts;

use crate::h1::HeadLimits;
use crate::h1::parse::{HeadError, check_size, is_target_byte, request_parts, trim};
use crate::message::{Field, RequestHead, Span, Version};

/// Why a request cannot be served as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Malformed: the stream is reset with PROTOCOL_ERROR.
    #[error("connection-specific field `{0}`")]
    ConnectionField(&'static str),
    #[error("no :path")]
    NoPath,
    /// Refused by the head rules: answered with the error's status.
    #[error(transparent)]
    Head(#[from] HeadError),
}

/// Fields that only mean something to one HTTP/1 connection (§8.2.2).
const CONNECTION_FIELDS: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

/// The head's bytes as they are written, with the fields' positions.
struct Text {
    out: Vec<u8>,
    fields: Vec<Field>,
}

impl Text {
    fn line(&mut self, name: &[u8], value: &[u8]) {
        let start = self.out.len();
        self.out.extend_from_slice(name);
        let name = Span::new(start, self.out.len());
        self.out.extend_from_slice(b": ");
        let at = self.out.len();
        self.out.extend_from_slice(value);
        // Trimmed as HTTP/1 field values are.
        let trimmed = trim(value);
        let lead = trimmed.as_ptr() as usize - value.as_ptr() as usize;
        let value = Span::new(at + lead, at + lead + trimmed.len());
        self.out.extend_from_slice(b"\r\n");
        self.fields.push(Field { name, value });
    }
}

/// The request head of `parts` (the body to follow unless `end_of_stream`)
/// under `limits`, marked HTTP/2 for the log.
pub(crate) fn head(
    parts: &Parts,
    end_of_stream: bool,
    limits: &HeadLimits,
) -> Result<RequestHead, Refusal> {
    let target = match (parts.uri.path_and_query(), parts.uri.authority()) {
        (Some(p), _) if !p.as_str().is_empty() => p.as_str(),
        // §8.5: a CONNECT has only `:authority`; the head rules answer it
        // (501), as they do over HTTP/1.1.
        (None, Some(a)) if parts.method == http::Method::CONNECT => a.as_str(),
        _ => return Err(Refusal::NoPath),
    };
    let mut text = Text {
        out: Vec::with_capacity(256),
        fields: Vec::with_capacity(parts.headers.len() + 2),
    };
    let method = parts.method.as_str().as_bytes();
    text.out.extend_from_slice(method);
    let method = Span::new(0, method.len());
    text.out.push(b' ');
    let at = text.out.len();
    text.out.extend_from_slice(target.as_bytes());
    let target = Span::new(at, text.out.len());
    text.out.extend_from_slice(b" HTTP/1.1\r\n");
    // As HTTP/1 counts it: up to the line's LF, its CR included.
    let line_len = text.out.len() - 1;
    let authority = parts.uri.authority();
    if let Some(a) = authority {
        // §8.3.1: `:authority` wins over a Host field.
        text.line(b"host", a.as_str().as_bytes());
    }
    let mut length = false;
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if let Some(bad) = CONNECTION_FIELDS.iter().find(|c| **c == n) {
            return Err(Refusal::ConnectionField(bad));
        }
        match n {
            "host" if authority.is_some() => continue,
            "te" if value.as_bytes() != b"trailers" => {
                return Err(Refusal::ConnectionField("te"));
            }
            // §8.2.3: HTTP/2 may split cookies; HTTP/1 wants one field.
            "cookie" => {
                cookies.push(value.as_bytes());
                continue;
            }
            "content-length" => length = true,
            _ => {}
        }
        text.line(n.as_bytes(), value.as_bytes());
    }
    if !cookies.is_empty() {
        let joined = cookies.join(&b"; "[..]);
        text.line(b"cookie", &joined);
    }
    let chunked = !end_of_stream && !length;
    if chunked {
        text.line(b"transfer-encoding", b"chunked");
    }
    text.out.extend_from_slice(b"\r\n");
    check_size(line_len, text.out.len(), limits)?;
    if !target.of(&text.out).iter().all(|&b| is_target_byte(b)) {
        return Err(HeadError::BadRequestLine.into());
    }
    if text.fields.len() > limits.max_headers {
        return Err(HeadError::TooManyFields.into());
    }
    // Judged as the HTTP/1.1 head it would be sent as.
    let mut parsed = request_parts(&text.out, method, target, Version::Http11, text.fields)?;
    parsed.version = Version::Http2;
    Ok(parsed.into_head(Bytes::from(text.out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Framing;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    const LIMITS: HeadLimits = HeadLimits {
        max_request_line: 8192,
        max_header_bytes: 32 * 1024,
        max_headers: 100,
    };

    fn text(head: &RequestHead) -> String {
        String::from_utf8(head.fields.raw().to_vec()).unwrap()
    }

    #[test]
    fn authority_becomes_host_and_cookies_join() {
        let p = parts(
            http::Request::post("https://example.com/a?b=1")
                .header("cookie", "a=1")
                .header("host", "other")
                .header("cookie", "b=2"),
        );
        let h = head(&p, false, &LIMITS).unwrap();
        assert_eq!(
            text(&h),
            "POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\ncookie: a=1; b=2\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert_eq!(h.version, Version::Http2);
        assert_eq!(h.host_name(), b"example.com");
        assert_eq!(h.fields.get("cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(h.method(), b"POST");
        assert_eq!(h.uri(), b"/a?b=1");
    }

    #[test]
    fn a_length_keeps_the_body_unchunked() {
        let p = parts(http::Request::put("https://a/").header("content-length", "3"));
        let h = head(&p, false, &LIMITS).unwrap();
        assert_eq!(h.framing, Framing::Length(3));
        assert!(text(&h).contains("content-length: 3\r\n"));
    }

    #[test]
    fn connection_fields_are_malformed() {
        for (n, v) in [
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
        ] {
            let p = parts(http::Request::get("https://a/").header(n, v));
            assert!(
                matches!(head(&p, true, &LIMITS), Err(Refusal::ConnectionField(_))),
                "{n}"
            );
        }
        let p = parts(http::Request::get("https://a/").header("te", "trailers"));
        assert!(head(&p, true, &LIMITS).is_ok());
    }

    #[test]
    fn the_http1_head_rules_apply() {
        let status = |p: &Parts, limits: &HeadLimits| match head(p, true, limits) {
            Err(Refusal::Head(e)) => e.status(),
            other => panic!("{other:?}"),
        };
        // A path that normalises out of the root, a bad authority, a bad
        // or conflicting length: as over HTTP/1.1.
        let p = parts(http::Request::get("https://a/x/../../etc"));
        assert_eq!(status(&p, &LIMITS), 400);
        let p = parts(http::Request::get("https://a/").header("content-length", "1, 2"));
        assert_eq!(status(&p, &LIMITS), 400);
        let long = format!("https://a/{}", "x".repeat(100));
        let p = parts(http::Request::get(long.as_str()));
        let short = HeadLimits {
            max_request_line: 64,
            ..LIMITS
        };
        assert_eq!(status(&p, &short), 414);
        let mut many = http::Request::get("https://a/");
        for i in 0..5 {
            many = many.header(format!("x-{i}"), "1");
        }
        let few = HeadLimits {
            max_headers: 4,
            ..LIMITS
        };
        assert_eq!(status(&parts(many), &few), 431);
        let p = parts(http::Request::get("https://a/").header("x", "y".repeat(200)));
        let small = HeadLimits {
            max_header_bytes: 128,
            ..LIMITS
        };
        assert_eq!(status(&p, &small), 431);
        // Without `:authority` and `host` there is no Host.
        let p = parts(http::Request::get("/only-a-path"));
        assert_eq!(status(&p, &LIMITS), 400);
        // The path, normalised once, as over HTTP/1.
        let p = parts(http::Request::get("https://a/b/%2e/c"));
        let h = head(&p, true, &LIMITS).unwrap();
        assert_eq!(h.path(), b"/b/c");
        assert_eq!(h.framing, Framing::None);
    }
}
