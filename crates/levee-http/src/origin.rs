//! Who a request is for: the client's address and the scheme it used, as
//! limits, allow/deny lists, Basic auth, the access log and the forwarded
//! fields all see them (docs/http1.md, "Trusted proxies").
//!
//! The connection's peer (after any PROXY header) is the client, unless it
//! is one of its listener's `trusted_proxies`. A trusted proxy names the
//! client in one field, chosen by `forwarded_header`:
//!
//! - `X-Forwarded-For`: read right to left, as nginx's `real_ip` does with
//!   `real_ip_recursive on`: each address that is itself a trusted proxy is
//!   passed over, and the first one that is not is the client. An address
//!   that does not parse ends the walk at the last good one (so a client
//!   cannot slip garbage in to hide behind). The scheme is the last value
//!   of `X-Forwarded-Proto`, `http` or `https`.
//! - `Forwarded` (RFC 7239): the same walk over its elements' `for=`
//!   parameters (an `unknown` or obfuscated node, or an element without
//!   `for`, ends it); the scheme is the `proto=` of the element chosen.
//!
//! Only one of the two is read, so a trusted proxy that writes one and
//! passes the other on from its own clients cannot be fooled through it.
//! Everything here is pure: no I/O, no allocation.

use std::net::{IpAddr, Ipv6Addr};

use levee_config::{ForwardedHeader, TrustedProxies};
use levee_protect::Acl;

use crate::message::RequestHead;

/// The client a request is served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The client's address: the peer's, or the one a trusted proxy named.
    pub ip: IpAddr,
    /// The client reached the edge over TLS: levee's own listener, or what
    /// a trusted proxy said.
    pub https: bool,
    /// The trusted proxy the request came through; `None` when the client
    /// is the peer. Forwarded fields are passed on (and appended to) only
    /// from a trusted proxy, and replaced otherwise.
    pub proxy: Option<IpAddr>,
}

impl Origin {
    /// A client that connected to levee itself.
    pub fn direct(ip: IpAddr, https: bool) -> Origin {
        Origin {
            ip,
            https,
            proxy: None,
        }
    }
}

/// A listener's trusted proxies, compiled.
#[derive(Debug)]
pub struct Trust {
    acl: Acl,
    header: ForwardedHeader,
}

impl Trust {
    /// `None` when the listener trusts no one.
    pub fn new(t: &TrustedProxies) -> Option<Trust> {
        (!t.networks.is_empty()).then(|| Trust {
            acl: Acl::networks(&t.networks),
            header: t.header,
        })
    }
}

/// The origin of `head`, received from `peer` over a connection that is
/// TLS when `https`, on a listener that trusts `trust`.
pub(crate) fn resolve(
    head: &RequestHead,
    peer: IpAddr,
    https: bool,
    trust: Option<&Trust>,
) -> Origin {
    let Some(trust) = trust.filter(|t| t.acl.permits(peer)) else {
        return Origin::direct(peer, https);
    };
    let (ip, scheme) = match trust.header {
        ForwardedHeader::XForwardedFor => {
            let hops = values(head, b"x-forwarded-for")
                .flat_map(|v| v.split(|&b| b == b','))
                .map(|t| address(t.trim_ascii()).map(|ip| Hop { ip, https: None }));
            let named = client(hops, &trust.acl).map(|hop| hop.ip);
            (named, forwarded_proto(head))
        }
        ForwardedHeader::Forwarded => {
            let hops = values(head, b"forwarded")
                .flat_map(|v| split(v, b','))
                .map(element);
            let named = client(hops, &trust.acl);
            (named.map(|hop| hop.ip), named.and_then(|hop| hop.https))
        }
    };
    Origin {
        ip: ip.unwrap_or(peer),
        https: scheme.unwrap_or(https),
        proxy: Some(peer),
    }
}

/// One address a forwarded field names, with the scheme it used if said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    ip: IpAddr,
    https: Option<bool>,
}

/// The client among `hops` (left to right, `None` for one that does not
/// parse), the peer being a trusted proxy: walking from the right, the
/// first hop that is not trusted; the last good hop when the walk hits a
/// bad one; the leftmost when all are trusted. `None`: the peer itself.
///
/// Done left to right without storing the list: `found` is the answer
/// were the list to end here. A bad hop empties it (the answer becomes
/// whatever good hop comes next, or the peer); an untrusted hop is the
/// answer until another untrusted or bad one comes; a trusted hop only
/// fills an empty answer.
fn client(hops: impl Iterator<Item = Option<Hop>>, trusted: &Acl) -> Option<Hop> {
    let mut found = None;
    for hop in hops {
        match hop {
            None => found = None,
            Some(h) if !trusted.permits(h.ip) => found = Some(h),
            Some(h) => {
                if found.is_none() {
                    found = Some(h);
                }
            }
        }
    }
    found
}

/// The values of every field called `name`, in order.
fn values<'h>(head: &'h RequestHead, name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> + 'h {
    head.fields
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The last `X-Forwarded-Proto` value: `Some(true)` for https.
fn forwarded_proto(head: &RequestHead) -> Option<bool> {
    let last = values(head, b"x-forwarded-proto")
        .flat_map(|v| v.split(|&b| b == b','))
        .last()?;
    scheme(last.trim_ascii())
}

fn scheme(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"https") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"http") {
        Some(false)
    } else {
        None
    }
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:8080`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:8080`.
fn address(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || port(after.strip_prefix(':')?)) {
            return None;
        }
        return v6
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| IpAddr::V6(a).to_canonical());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (v4, p) = text.split_once(':')?;
    port(p).then(|| v4.parse().ok()).flatten()
}

fn port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// One `Forwarded` element: its `for=` node and `proto=`; `None` when it
/// names no address (no `for`, `unknown`, an obfuscated node, a bad one).
fn element(e: &[u8]) -> Option<Hop> {
    let mut ip = None;
    let mut https = None;
    for pair in split(e, b';') {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (
            pair[..eq].trim_ascii(),
            unquote(pair[eq + 1..].trim_ascii())?,
        );
        if name.eq_ignore_ascii_case(b"for") {
            ip = Some(address(value)?);
        } else if name.eq_ignore_ascii_case(b"proto") {
            https = scheme(value);
        }
    }
    Some(Hop { ip: ip?, https })
}

/// A token or a quoted string; `None` for a quoted string with escapes
/// (no address needs one).
fn unquote(v: &[u8]) -> Option<&[u8]> {
    match v.strip_prefix(b"\"") {
        None => Some(v),
        Some(rest) => {
            let inner = rest.strip_suffix(b"\"")?;
            (!inner.contains(&b'\\') && !inner.contains(&b'"')).then_some(inner)
        }
    }
}

/// `v` split at `sep` outside quoted strings.
fn split(v: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    let mut escaped = false;
    v.split(move |&b| {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            return true;
        }
        false
    })
}

#[cfg(test)]
mod tests;
