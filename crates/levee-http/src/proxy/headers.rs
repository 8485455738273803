//! What crosses levee in each direction: the upstream request head and the
//! client response head.
//!
//! Policy (docs/http1.md): hop-by-hop fields and the fields named in
//! `Connection` are dropped both ways. Upstream, `Host` is kept by default,
//! `X-Forwarded-For` and `Via` are appended to, `X-Forwarded-Proto` and
//! `X-Forwarded-Host` are replaced (levee is the edge that knows them), and
//! the framing fields are rewritten to match how levee sends the body.

use std::net::IpAddr;

use crate::h1::write::{field, push_u64, reason};
use crate::message::{Framing, RequestHead, ResponseHead, Version, is_hop_by_hop};

fn listed(tokens: &[Box<[u8]>], name: &[u8]) -> bool {
    tokens.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// How the request is addressed upstream.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    pub client_ip: IpAddr,
    pub preserve_host: bool,
    /// `host:port` of the server as configured, for `Host` when not preserved.
    pub server_authority: &'a str,
    /// The client came over TLS: `X-Forwarded-Proto: https`.
    pub tls: bool,
    /// The protocol a WebSocket handshake asks for (proxy/upgrade.rs).
    pub upgrade: Option<&'a [u8]>,
}

/// The request head levee sends upstream (always HTTP/1.1, keep-alive).
pub fn upstream_request(req: &RequestHead, fwd: &Forwarding<'_>) -> Vec<u8> {
    let raw = req.fields.raw();
    let mut out = Vec::with_capacity(raw.len() + 160);
    out.extend_from_slice(req.method());
    out.push(b' ');
    out.extend_from_slice(req.uri());
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let mut xff: Option<&[u8]> = None;
    let mut xff_more: Vec<&[u8]> = Vec::new();
    let mut via: Vec<&[u8]> = Vec::new();
    for (name, value) in req.fields.iter() {
        if is_hop_by_hop(name) || listed(&req.connection_tokens, name) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            match xff {
                None => xff = Some(value),
                Some(_) => xff_more.push(value),
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"via") {
            via.push(value);
            continue;
        }
        if name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"x-forwarded-proto")
            || name.eq_ignore_ascii_case(b"x-forwarded-host")
        {
            continue;
        }
        field(&mut out, name, value);
    }

    let host = req.host.map(|h| req.fields.span_of(h));
    out.extend_from_slice(b"Host: ");
    match host {
        Some(h) if fwd.preserve_host => out.extend_from_slice(h),
        _ => out.extend_from_slice(fwd.server_authority.as_bytes()),
    }
    out.extend_from_slice(b"\r\nX-Forwarded-For: ");
    for v in xff.into_iter().chain(xff_more) {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    push_ip(&mut out, fwd.client_ip);
    out.extend_from_slice(if fwd.tls {
        b"\r\nX-Forwarded-Proto: https\r\n"
    } else {
        b"\r\nX-Forwarded-Proto: http\r\n"
    });
    if let Some(h) = host {
        field(&mut out, b"X-Forwarded-Host", h);
    }
    out.extend_from_slice(b"Via: ");
    for v in via {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(match req.version {
        Version::Http10 => b"1.0 levee\r\n",
        _ => b"1.1 levee\r\n",
    });
    match req.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(&mut out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {
            if req.fields.get("content-length").is_some() {
                out.extend_from_slice(b"Content-Length: 0\r\n");
            }
        }
    }
    if let Some(protocol) = fwd.upgrade {
        super::upgrade::request_fields(&mut out, protocol);
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    use std::io::Write;
    let _ = write!(out, "{ip}");
}

/// How the response body reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFraming {
    /// Relay the upstream's chunked coding as it is (else send only the data).
    pub chunked: bool,
    /// The client connection stays open after this response.
    pub keep_alive: bool,
}

/// Decides framing towards the client from the upstream response and the request.
pub fn client_framing(resp: &ResponseHead, req: &RequestHead, keep_alive: bool) -> ClientFraming {
    match resp.framing {
        Framing::Chunked if req.version == Version::Http10 => ClientFraming {
            chunked: false,
            keep_alive: false,
        },
        Framing::Chunked => ClientFraming {
            chunked: true,
            keep_alive,
        },
        Framing::UntilClose => ClientFraming {
            chunked: false,
            keep_alive: false,
        },
        Framing::None | Framing::Length(_) => ClientFraming {
            chunked: false,
            keep_alive,
        },
    }
}

/// The response head levee sends the client; `extra` holds whole header
/// lines levee adds (a sticky `Set-Cookie`), usually none.
pub fn client_response(
    resp: &ResponseHead,
    req: &RequestHead,
    framing: ClientFraming,
    extra: &[u8],
) -> Vec<u8> {
    let raw = resp.fields.raw();
    let mut out = Vec::with_capacity(raw.len() + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(&mut out, u64::from(resp.status));
    out.push(b' ');
    let upstream_reason = resp.fields.span_of(resp.reason);
    if upstream_reason.is_empty() {
        out.extend_from_slice(reason(resp.status).as_bytes());
    } else {
        out.extend_from_slice(upstream_reason);
    }
    out.extend_from_slice(b"\r\n");
    let chunked_upstream = resp.framing == Framing::Chunked;
    for (name, value) in resp.fields.iter() {
        if is_hop_by_hop(name) || listed(&resp.connection_tokens, name) {
            continue;
        }
        if chunked_upstream && name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        field(&mut out, name, value);
    }
    out.extend_from_slice(extra);
    if framing.chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if !framing.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if req.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An interim (1xx) response relayed to an HTTP/1.1 client.
pub fn interim(resp: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(resp.fields.raw().len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(&mut out, u64::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(reason(resp.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in resp.fields.iter() {
        if !is_hop_by_hop(name) {
            field(&mut out, name, value);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}
