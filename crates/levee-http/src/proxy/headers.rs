//! What levee sends a server: the upstream request head (HTTP/1) and the
//! forwarded fields (HTTP/1 and HTTP/2 alike). The client's response head
//! is `h1::head`'s (HTTP/1) and `exchange/h2.rs`'s (HTTP/2).
//!
//! Policy (docs/http1.md): hop-by-hop fields and the fields named in
//! `Connection` are dropped both ways. Upstream, `Host` is kept by default,
//! `Via` is appended to, and the framing fields are rewritten to match how
//! levee sends the body. The fields that say who the client is and how it
//! came are levee's to set (origin.rs): passed on and appended to from a
//! trusted proxy, replaced (or dropped) from anyone else:
//!
//! | field | from a trusted proxy | from anyone else |
//! |---|---|---|
//! | `X-Forwarded-For` | its values (else the client's), then the proxy's address | the client's address alone |
//! | `X-Forwarded-Proto` | the scheme it named (else levee's) | levee's listener's scheme |
//! | `X-Forwarded-Host` | its value (else `Host`) | the request's `Host` |
//! | `X-Real-IP` | the client's address | the client's address |
//! | `Forwarded` | its elements, then `for=` the proxy | dropped |

use std::net::IpAddr;

use crate::h1::write::{field, push_u64};
use crate::message::{Framing, RequestHead, Version, is_hop_by_hop, listed};
use crate::origin::Origin;
use crate::shape::{Rules, Upward};

/// How the request is addressed upstream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding<'a> {
    /// Who the request is for (origin.rs).
    pub origin: Origin,
    pub preserve_host: bool,
    /// `host:port` of the server as configured, for `Host` when not preserved.
    pub server_authority: &'a str,
    /// The protocol a WebSocket handshake asks for (proxy/upgrade.rs).
    pub upgrade: Option<&'a [u8]>,
    /// The route's request rules and the request id (shape.rs).
    pub up: Upward<'a>,
}

/// A [`FieldOut`] that leaves out the fields the route's rules drop.
struct Shaped<'o, O> {
    out: &'o mut O,
    rules: &'o Rules,
}

impl<O: FieldOut> FieldOut for Shaped<'_, O> {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        if !self.rules.drops(name) {
            self.out.field(name, value);
        }
    }

    fn list<'v>(&mut self, name: &[u8], prior: impl Iterator<Item = &'v [u8]>, last: &[u8]) {
        if !self.rules.drops(name) {
            self.out.list(name, prior, last);
        }
    }
}

/// Where the forwarded request fields go: an HTTP/1.1 head, or an HTTP/2
/// header map (proxy/h2.rs), so both protocols forward alike.
pub(crate) trait FieldOut {
    fn field(&mut self, name: &[u8], value: &[u8]);
    /// A list field: the values in `prior`, then `last`, joined by ", ".
    fn list<'v>(&mut self, name: &[u8], prior: impl Iterator<Item = &'v [u8]>, last: &[u8]);
}

impl FieldOut for Vec<u8> {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        field(self, name, value);
    }

    fn list<'v>(&mut self, name: &[u8], prior: impl Iterator<Item = &'v [u8]>, last: &[u8]) {
        self.extend_from_slice(name);
        self.extend_from_slice(b": ");
        for v in prior {
            self.extend_from_slice(v);
            self.extend_from_slice(b", ");
        }
        self.extend_from_slice(last);
        self.extend_from_slice(b"\r\n");
    }
}

/// The request head levee sends upstream (always HTTP/1.1, keep-alive).
pub(crate) fn upstream_request(req: &RequestHead, fwd: &Forwarding<'_>) -> Vec<u8> {
    let raw = req.fields.raw();
    let mut out = crate::reuse::head(raw.len() + 160);
    out.extend_from_slice(req.method());
    out.push(b' ');
    out.extend_from_slice(req.uri());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    forwarded_fields(req, fwd, &mut out);
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

/// The request's end-to-end fields, then `Host` and the fields levee sets
/// (`X-Forwarded-*`, `X-Real-IP`, `Via`, see the module's table), then the
/// route's request rules (which may replace or drop any of them) and the
/// request id; framing fields are left to the caller. A route without
/// rules costs one branch; the id one name comparison per field.
pub(crate) fn forwarded_fields(req: &RequestHead, fwd: &Forwarding<'_>, out: &mut impl FieldOut) {
    match fwd.up.rules {
        None => end_to_end(req, fwd, out),
        Some(rules) => {
            end_to_end(req, fwd, &mut Shaped { out, rules });
            rules.each(&fwd.up.vars, |name, value| out.field(&name.written, value));
        }
    }
    if let Some((field, id)) = fwd.up.id {
        out.field(&field.name.written, id);
    }
}

fn end_to_end(req: &RequestHead, fwd: &Forwarding<'_>, out: &mut impl FieldOut) {
    let trusted = fwd.origin.proxy.is_some();
    let mut xff: Option<&[u8]> = None;
    // Vectors allocate only when a second field (or any `Forwarded`) comes.
    let mut xff_more: Vec<&[u8]> = Vec::new();
    let mut forwarded: Vec<&[u8]> = Vec::new();
    let mut xfh: Option<&[u8]> = None;
    let mut via: Vec<&[u8]> = Vec::new();
    for (name, value) in req.fields.iter() {
        if is_hop_by_hop(name) || listed(&req.connection_tokens, name) {
            continue;
        }
        // The client's id is replaced by the request's (the same when trusted).
        if fwd.up.id.is_some_and(|(f, _)| f.name.is(name)) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            match xff {
                _ if !trusted => {}
                None => xff = Some(value),
                Some(_) => xff_more.push(value),
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"forwarded") {
            if trusted {
                forwarded.push(value);
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-host") {
            if trusted && xfh.is_none() {
                xfh = Some(value);
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
            || name.eq_ignore_ascii_case(b"x-real-ip")
        {
            continue;
        }
        out.field(name, value);
    }

    let host = req.host.map(|h| req.fields.span_of(h));
    match host {
        Some(h) if fwd.preserve_host => out.field(b"Host", h),
        _ => out.field(b"Host", fwd.server_authority.as_bytes()),
    }
    let mut ip = [0u8; 48];
    let client = ip_text(&mut ip, fwd.origin.ip);
    match fwd.origin.proxy {
        Some(proxy) => {
            let mut p = [0u8; 48];
            let p = ip_text(&mut p, proxy);
            // A proxy that named the client elsewhere (`Forwarded`) wrote
            // no chain: it starts with the client, as if it had.
            let named = (xff.is_none() && fwd.origin.ip != proxy).then_some(client);
            let prior = named.into_iter().chain(xff).chain(xff_more);
            out.list(b"X-Forwarded-For", prior, p);
            if !forwarded.is_empty() {
                let mut node = [0u8; 56];
                out.list(
                    b"Forwarded",
                    forwarded.into_iter(),
                    for_node(&mut node, proxy),
                );
            }
        }
        None => out.field(b"X-Forwarded-For", client),
    }
    out.field(b"X-Real-IP", client);
    out.field(
        b"X-Forwarded-Proto",
        if fwd.origin.https { b"https" } else { b"http" },
    );
    if let Some(h) = xfh.or(host) {
        out.field(b"X-Forwarded-Host", h);
    }
    let version: &[u8] = match req.version {
        Version::Http10 => b"1.0 levee",
        _ => b"1.1 levee",
    };
    out.list(b"Via", via.into_iter(), version);
}

/// `for=192.0.2.1` or `for="[2001:db8::1]"`, the `Forwarded` element levee
/// appends for the proxy it received the request from (RFC 7239 §6).
fn for_node(buf: &mut [u8; 56], ip: IpAddr) -> &[u8] {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // At most 4 + 2 + 45 + 2 bytes: the write cannot fail.
    let _ = match ip {
        IpAddr::V4(v4) => write!(cursor, "for={v4}"),
        IpAddr::V6(v6) => write!(cursor, "for=\"[{v6}]\""),
    };
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    buf.get(..len).unwrap_or_default()
}

/// `ip` as text in `buf`, without allocating. An IPv4 address (the common
/// client) is written digit by digit: `Display` through `fmt` cost about
/// 1,000 instructions of the 23,000 a proxied request took (bench/README.md).
pub(crate) fn ip_text(buf: &mut [u8; 48], ip: IpAddr) -> &[u8] {
    use std::io::Write;
    if let IpAddr::V4(v4) = ip {
        let mut len = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[len] = b'.';
                len += 1;
            }
            len += octet_text(&mut buf[len..len + 3], octet);
        }
        return &buf[..len];
    }
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // An IPv6 address is at most 45 characters: the write cannot fail.
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    buf.get(..len).unwrap_or_default()
}

/// `octet` in decimal at the start of `out`; the digits written.
fn octet_text(out: &mut [u8], octet: u8) -> usize {
    let digits = [octet / 100, octet / 10 % 10, octet % 10];
    let skip = match octet {
        100.. => 0,
        10.. => 1,
        _ => 2,
    };
    for (o, d) in out.iter_mut().zip(&digits[skip..]) {
        *o = b'0' + d;
    }
    3 - skip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_is_display() {
        let ips = [
            "0.0.0.0",
            "9.10.99.100",
            "127.0.0.1",
            "192.168.1.254",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ];
        for ip in ips {
            let ip: IpAddr = ip.parse().expect("an address");
            let mut buf = [0u8; 48];
            assert_eq!(ip_text(&mut buf, ip), ip.to_string().as_bytes());
        }
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 0, 255, octet]);
            let mut buf = [0u8; 48];
            assert_eq!(ip_text(&mut buf, ip), ip.to_string().as_bytes());
        }
    }
}
