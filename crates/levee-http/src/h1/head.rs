//! The response head an HTTP/1 client gets for a server's response: the
//! server's fields less hop-by-hop ones and those its `Connection` names,
//! the framing levee relays the body with, and whether the connection
//! stays open (no I/O). The head is dressed as it is written (shape.rs:
//! fields hidden or dropped, the rules' lines and the request id added,
//! HSTS), in the same pass over the server's fields.

use crate::h1::write::{field, push_u64, reason};
use crate::message::{Framing, RequestHead, ResponseHead, Version, is_hop_by_hop, listed};
use crate::shape::Dress;

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

/// The response head levee sends the client, dressed by `d`; `extra` holds
/// whole header lines levee adds (a sticky `Set-Cookie`), usually none.
pub(crate) fn client_response(
    resp: &ResponseHead,
    req: &RequestHead,
    framing: ClientFraming,
    extra: &[u8],
    d: &Dress<'_>,
) -> Vec<u8> {
    client_head(resp, req, framing, extra, None, d)
}

/// [`client_response`] for a body compressed to `coding` on its way
/// (compress.rs changes the fields that describe the body).
pub(crate) fn client_head(
    resp: &ResponseHead,
    req: &RequestHead,
    framing: ClientFraming,
    extra: &[u8],
    coding: Option<levee_config::Coding>,
    d: &Dress<'_>,
) -> Vec<u8> {
    let raw = resp.fields.raw();
    let rules = d.rules();
    let mut out = crate::reuse::head(raw.len() + 128);
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
    d.hsts_line(&mut out);
    let chunked_upstream = resp.framing == Framing::Chunked;
    let fields = resp.fields.iter().filter(|(name, _)| {
        !(is_hop_by_hop(name)
            || listed(&resp.connection_tokens, name)
            || (chunked_upstream && name.eq_ignore_ascii_case(b"content-length")))
    });
    let mut dressed = |name: &[u8], value: &[u8]| {
        if d.drops(name, rules) {
            return;
        }
        match name.eq_ignore_ascii_case(b"etag") {
            true => match crate::compress::etag_for_304(req, resp.status, value) {
                Some(weak) => field(&mut out, name, &weak),
                None => field(&mut out, name, value),
            },
            false => field(&mut out, name, value),
        }
    };
    match coding {
        None => fields.for_each(|(name, value)| dressed(name, value)),
        Some(c) => crate::compress::edit_fields(fields, c, dressed),
    }
    d.lines(&mut out, extra, rules);
    if framing.chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if !framing.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if req.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    d.tail(&mut out, rules);
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
