//! The HTTP/1.1 work of one proxied exchange, with no I/O: the request head
//! rewritten for the upstream (the fields `levee proxy` adds, captured from a
//! real levee request) and the response head rewritten for the client (its
//! hop-by-hop fields dropped, as levee does). Only Content-Length framing:
//! a chunked or close-delimited message is refused, 501 for a request and 502
//! for a response, which is enough for the benchmark and says so.

/// Longest head accepted from either side.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_FIELDS: usize = 64;

pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
pub const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
pub const NOT_IMPLEMENTED: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
pub const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A request head, forwarded.
pub struct Request {
    pub head_len: usize,
    pub body_len: u64,
    /// The client asked to close after this exchange.
    pub close: bool,
    pub head_method: bool,
}

/// A response head, relayed.
pub struct Response {
    pub head_len: usize,
    pub body_len: u64,
    /// The upstream will close after this response: do not pool it.
    pub close: bool,
}

/// Fields that describe one hop and are not forwarded either way.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Fields the proxy writes itself; a client's own values are dropped so that
/// it cannot pose as another address.
fn ours(name: &str) -> bool {
    [
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-proto",
        "x-forwarded-host",
        "via",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether a Connection field of a message in HTTP/1.`minor` ends the
/// connection after it.
fn closes(connection: &[u8], minor: u8) -> bool {
    has_token(connection, "close") || (minor == 0 && !has_token(connection, "keep-alive"))
}

fn content_length(value: &[u8], seen: Option<u64>) -> Option<u64> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    match seen {
        Some(s) if s != n => None,
        _ => Some(n),
    }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Parses a request head at the start of `buf` and appends its upstream form
/// to `out`. `Ok(None)`: the head is not complete yet. `Err`: the reply to
/// send before closing.
pub fn forward_request(
    buf: &[u8],
    peer: &[u8],
    out: &mut Vec<u8>,
) -> Result<Option<Request>, &'static [u8]> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(TOO_LARGE),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(TOO_LARGE),
        Err(_) => return Err(BAD_REQUEST),
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(BAD_REQUEST);
    };
    let mut close = minor == 0;
    let mut body_len = None;
    let mut host = None;
    let start = out.len();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for f in req.headers.iter() {
        if f.name.eq_ignore_ascii_case("connection") {
            close = closes(f.value, minor);
            continue;
        }
        if f.name.eq_ignore_ascii_case("transfer-encoding") {
            out.truncate(start);
            return Err(NOT_IMPLEMENTED);
        }
        if f.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(content_length(f.value, body_len).ok_or(BAD_REQUEST)?);
        } else if f.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                out.truncate(start);
                return Err(BAD_REQUEST);
            }
            host = Some(f.value);
        }
        if hop_by_hop(f.name) || ours(f.name) {
            continue;
        }
        field(out, f.name.as_bytes(), f.value);
    }
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        out.truncate(start);
        return Err(BAD_REQUEST);
    };
    field(out, b"X-Forwarded-For", peer);
    field(out, b"X-Real-IP", peer);
    out.extend_from_slice(b"X-Forwarded-Proto: http\r\n");
    field(out, b"X-Forwarded-Host", host);
    out.extend_from_slice(b"Via: 1.1 levee\r\n\r\n");
    Ok(Some(Request {
        head_len,
        body_len: body_len.unwrap_or(0),
        close,
        head_method: method == "HEAD",
    }))
}

/// Parses a response head at the start of `buf` and appends its client form
/// to `out`. `Ok(None)`: not complete yet. `Err`: the reply to send the client
/// instead (the upstream connection is then closed).
pub fn relay_response(
    buf: &[u8],
    req: &Request,
    out: &mut Vec<u8>,
) -> Result<Option<Response>, &'static [u8]> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut fields);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(BAD_GATEWAY),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BAD_GATEWAY),
    };
    let (Some(code), Some(minor)) = (resp.code, resp.version) else {
        return Err(BAD_GATEWAY);
    };
    // 1xx interim responses are not relayed by the prototype.
    if !(200..1000).contains(&code) {
        return Err(BAD_GATEWAY);
    }
    let mut close = minor == 0;
    let mut body_len = None;
    let start = out.len();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for f in resp.headers.iter() {
        if f.name.eq_ignore_ascii_case("connection") {
            close = closes(f.value, minor);
            continue;
        }
        if f.name.eq_ignore_ascii_case("transfer-encoding") {
            out.truncate(start);
            return Err(BAD_GATEWAY);
        }
        if f.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = content_length(f.value, body_len) else {
                out.truncate(start);
                return Err(BAD_GATEWAY);
            };
            body_len = Some(n);
        }
        if hop_by_hop(f.name) {
            continue;
        }
        field(out, f.name.as_bytes(), f.value);
    }
    let body_len = if req.head_method || code == 204 || code == 304 {
        0
    } else if let Some(n) = body_len {
        n
    } else {
        // Read-until-close bodies are not relayed by the prototype.
        out.truncate(start);
        return Err(BAD_GATEWAY);
    };
    if req.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Response {
        head_len,
        body_len,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] =
        b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nX-Real-IP: 6.6.6.6\r\n\r\n";

    #[test]
    fn request_split_reads() {
        for cut in 0..REQ.len() {
            let mut out = Vec::new();
            assert!(matches!(
                forward_request(&REQ[..cut], b"1.2.3.4", &mut out),
                Ok(None)
            ));
            assert!(out.is_empty());
        }
        let mut out = Vec::new();
        let r = forward_request(REQ, b"1.2.3.4", &mut out).ok().flatten();
        assert_eq!(r.map(|r| (r.head_len, r.close)), Some((REQ.len(), false)));
        assert_eq!(
            out,
            b"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n\
              X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nVia: 1.1 levee\r\n\r\n"
        );
    }

    #[test]
    fn chunked_request_is_refused() {
        let mut out = Vec::new();
        let req = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            forward_request(req, b"1.2.3.4", &mut out).err(),
            Some(NOT_IMPLEMENTED)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn response_loses_hop_by_hop_fields() {
        let req = Request {
            head_len: 0,
            body_len: 0,
            close: false,
            head_method: false,
        };
        let resp =
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\nhello world\n";
        let mut out = Vec::new();
        let r = relay_response(resp, &req, &mut out).ok().flatten();
        assert_eq!(r.map(|r| (r.body_len, r.close)), Some((12, false)));
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
    }
}
