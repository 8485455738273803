//! Response heads as HTTP/2 HEADERS (no I/O): a server's HTTP/1 head less
//! the fields HTTP/2 forbids (§8.2.2), and heads of levee's own.

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::message::{Framing, ResponseHead, is_hop_by_hop, listed};

/// An empty response with `status`; `None` for a status HTTP/2 cannot carry.
pub(crate) fn with_status(status: u16) -> Option<Response<()>> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).ok()?;
    Some(response)
}

/// Appends a field; one that HTTP/2 cannot carry is left out rather than
/// failing the response (levee's and a parsed server's fields all convert).
pub(crate) fn append(headers: &mut HeaderMap, name: &[u8], value: &[u8]) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        headers.append(n, v);
    }
}

/// The HTTP/2 head for a server's HTTP/1 response head; `None` for a
/// status HTTP/2 cannot carry.
pub(crate) fn of_upstream(head: &ResponseHead) -> Option<Response<()>> {
    let mut response = with_status(head.status)?;
    let headers = response.headers_mut();
    for (name, value) in head.fields.iter() {
        if is_hop_by_hop(name)
            || listed(&head.connection_tokens, name)
            || (head.framing == Framing::Chunked && name.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        append(headers, name, value);
    }
    Some(response)
}

/// Appends header lines levee wrote (`Name: value\r\n` each: a sticky
/// `Set-Cookie`, `Cache-Status`, a stored response's fields); a
/// hop-by-hop one is left out.
pub(crate) fn append_lines(headers: &mut HeaderMap, lines: &[u8]) {
    for (name, value) in crate::compress::lines(lines) {
        if !is_hop_by_hop(name) {
            append(headers, name, value);
        }
    }
}

/// `Strict-Transport-Security` on a response to a TLS listener with `hsts`.
pub(crate) fn add_hsts(headers: &mut HeaderMap, hsts: Option<u64>) {
    if let Some(max_age) = hsts
        && let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}"))
    {
        headers.insert(http::header::STRICT_TRANSPORT_SECURITY, v);
    }
}

/// `Server: levee` and `Date`, as levee's own HTTP/1 heads start.
pub(crate) fn own(status: u16) -> Option<Response<()>> {
    let mut response = with_status(status)?;
    let mut date = Vec::with_capacity(29);
    crate::h1::write::date(&mut date);
    let headers = response.headers_mut();
    headers.insert(http::header::SERVER, HeaderValue::from_static("levee"));
    append(headers, b"date", &date);
    Some(response)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::h1::{Parsed, parse_response};

    fn head(raw: &[u8]) -> ResponseHead {
        match parse_response(raw, 64 * 1024, false) {
            Ok(Parsed::Complete(p, n)) => p.into_head(Bytes::copy_from_slice(&raw[..n])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_specific_fields_do_not_reach_http2() {
        let h = head(
            b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\
              Transfer-Encoding: chunked\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\n\
              Set-Cookie: b=2\r\n\r\n",
        );
        let r = of_upstream(&h).unwrap();
        assert_eq!(r.status(), 200);
        let names: Vec<&str> = r.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["set-cookie"]);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn levee_lines_become_fields() {
        let mut h = HeaderMap::new();
        append_lines(
            &mut h,
            b"Cache-Status: levee; hit\r\nSet-Cookie: s=1; Path=/\r\nConnection: close\r\n",
        );
        assert_eq!(h["cache-status"], "levee; hit");
        assert_eq!(h["set-cookie"], "s=1; Path=/");
        assert!(h.get("connection").is_none());
        add_hsts(&mut h, Some(60));
        assert_eq!(h["strict-transport-security"], "max-age=60");
    }
}
