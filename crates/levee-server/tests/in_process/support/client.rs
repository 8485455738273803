//! A blocking HTTP/1.1 client that tells a whole response from a cut one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::DEADLINE;

/// A response as the client received it, up to the connection's close.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    /// The body, de-chunked if it came chunked.
    pub body: Vec<u8>,
    /// Whether the body ended as its framing said (all of `Content-Length`,
    /// or the last chunk), not by the connection closing before.
    pub complete: bool,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection to levee with `request` written on it.
pub fn send(addr: SocketAddr, request: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).expect("connect to levee");
    conn.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    conn.write_all(request.as_bytes()).expect("write request");
    conn
}

/// `GET path` on a connection of its own, read until levee closes it.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, "")
}

/// `method path` with `body` on a connection of its own.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let conn = send(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: fake.test\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    read_response(conn)
}

/// Reads one response from `conn` until it closes (the request said
/// `Connection: close`).
pub fn read_response(conn: TcpStream) -> Response {
    finish(conn, Vec::new())
}

/// Reads from `conn` into `raw` until `needle` is in it; false if the
/// connection ended first.
pub fn read_until(conn: &mut TcpStream, raw: &mut Vec<u8>, needle: &[u8]) -> bool {
    let mut chunk = [0u8; 4096];
    while !raw.windows(needle.len()).any(|w| w == needle) {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// The response of which `raw` is the start, read on until `conn` closes.
pub fn finish(mut conn: TcpStream, mut raw: Vec<u8>) -> Response {
    // A reset after part of the response still leaves that part to check.
    let _ = conn.read_to_end(&mut raw);
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response {
            status: 0,
            head: String::from_utf8_lossy(raw).into_owned(),
            body: Vec::new(),
            complete: false,
        };
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let rest = &raw[end + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let field = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let (body, complete) = if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)
    } else if let Some(len) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        (rest[..len.min(rest.len())].to_vec(), rest.len() >= len)
    } else {
        (rest.to_vec(), true)
    };
    Response {
        status,
        head,
        body,
        complete,
    }
}

/// The chunks' data, and whether the last chunk came.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else {
            return (body, false);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..size.min(rest.len())]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
