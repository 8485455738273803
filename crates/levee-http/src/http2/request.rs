//! An HTTP/2 request head as the HTTP/1.1 head the request path reads (no
//! I/O). The `h2` crate has already refused what RFC 9113 §8.2 and §8.3
//! call malformed (connection-specific fields, `te` other than
//! `trailers`, upper-case names, missing or duplicate pseudo-fields) with
//! RST_STREAM PROTOCOL_ERROR; this repeats the checks that matter to
//! HTTP/1 framing so that a change there cannot open a smuggling path.

use http::request::Parts;

/// Why a request cannot be served; the stream is reset with PROTOCOL_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("connection-specific field `{0}`")]
    ConnectionField(&'static str),
    #[error("no :path")]
    NoPath,
}

/// Fields that only mean something to one HTTP/1 connection (§8.2.2).
const CONNECTION_FIELDS: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

/// The request as HTTP/1.1 bytes, and whether its body must be sent
/// chunked (it has one and no `content-length`).
pub fn to_h1(parts: &Parts, has_body: bool) -> Result<(Vec<u8>, bool), Malformed> {
    let path = match (parts.uri.path_and_query(), parts.uri.authority()) {
        (Some(p), _) if !p.as_str().is_empty() => p.as_str(),
        // §8.5: a CONNECT has only `:authority`; the HTTP/1 rules answer
        // it (501), as they do over HTTP/1.1.
        (None, Some(a)) if parts.method == http::Method::CONNECT => a.as_str(),
        _ => return Err(Malformed::NoPath),
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = parts.uri.authority();
    if let Some(a) = authority {
        // §8.3.1: `:authority` wins over a Host field.
        line(&mut out, b"host", a.as_str().as_bytes());
    }
    let mut length = false;
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if let Some(bad) = CONNECTION_FIELDS.iter().find(|c| **c == n) {
            return Err(Malformed::ConnectionField(bad));
        }
        match n {
            "host" if authority.is_some() => continue,
            "te" if value.as_bytes() != b"trailers" => {
                return Err(Malformed::ConnectionField("te"));
            }
            // §8.2.3: HTTP/2 may split cookies; HTTP/1 wants one field.
            "cookie" => {
                cookies.push(value.as_bytes());
                continue;
            }
            "content-length" => length = true,
            _ => {}
        }
        line(&mut out, n.as_bytes(), value.as_bytes());
    }
    if !cookies.is_empty() {
        out.extend_from_slice(b"cookie: ");
        for (i, c) in cookies.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(c);
        }
        out.extend_from_slice(b"\r\n");
    }
    let chunked = has_body && !length;
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok((out, chunked))
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn authority_becomes_host_and_cookies_join() {
        let p = parts(
            http::Request::post("https://example.com/a?b=1")
                .header("cookie", "a=1")
                .header("host", "other")
                .header("cookie", "b=2"),
        );
        let (h, chunked) = to_h1(&p, true).unwrap();
        let h = String::from_utf8(h).unwrap();
        assert_eq!(
            h,
            "POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\ncookie: a=1; b=2\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        assert!(chunked);
    }

    #[test]
    fn a_length_keeps_the_body_unchunked() {
        let p = parts(http::Request::put("https://a/").header("content-length", "3"));
        let (h, chunked) = to_h1(&p, true).unwrap();
        assert!(!chunked);
        assert!(
            String::from_utf8(h)
                .unwrap()
                .contains("content-length: 3\r\n")
        );
    }

    #[test]
    fn connection_fields_are_malformed() {
        for (n, v) in [
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
        ] {
            let p = parts(http::Request::get("https://a/").header(n, v));
            assert!(to_h1(&p, false).is_err(), "{n}");
        }
        let p = parts(http::Request::get("https://a/").header("te", "trailers"));
        assert!(to_h1(&p, false).is_ok());
    }
}
