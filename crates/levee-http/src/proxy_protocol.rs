//! The PROXY protocol header (v1 text and v2 binary), as a load balancer in
//! front of levee sends it to pass on the client's address, and as levee
//! sends it to servers that ask for it (`upstream.NAME.proxy_protocol`).
//! No I/O: the caller feeds the bytes it has peeked and reads the header's
//! length once it is complete (conn/start.rs), or writes what [`encode`]
//! returns.
//!
//! Only a listener's trusted sources may send one; from anyone else the
//! bytes are HTTP and a `PROXY` line is a bad request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature (spec §2.2).
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 line, CRLF included (spec §2.1).
const V1_MAX: usize = 107;
/// Longest v2 header levee takes, TLVs included; real senders stay far below.
pub const V2_MAX: usize = 1024;

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bytes the header takes; what follows is the client's.
    pub len: usize,
    /// The client's address; `None` for a `LOCAL` (health check) or
    /// `UNKNOWN` connection, which keeps the connection's own address.
    pub source: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    Complete(Header),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("no PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol v1 line")]
    BadV1,
    #[error("malformed PROXY protocol v2 header")]
    BadV2,
    #[error("PROXY protocol v2 header longer than {V2_MAX} bytes")]
    TooLong,
}

/// Parses the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if starts_like(buf, V2_SIGNATURE) {
        return if buf.len() < V2_SIGNATURE.len() {
            Ok(Parsed::Incomplete)
        } else {
            parse_v2(buf)
        };
    }
    if starts_like(buf, b"PROXY ") {
        return parse_v1(buf);
    }
    Err(ProxyHeaderError::Missing)
}

/// `buf` and `prefix` agree on their common length.
fn starts_like(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf.get(..n) == prefix.get(..n)
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let window = buf.get(..buf.len().min(V1_MAX)).unwrap_or_default();
    let Some(end) = memchr::memmem::find(window, b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyHeaderError::BadV1)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = std::str::from_utf8(window.get(..end).unwrap_or_default())
        .map_err(|_| ProxyHeaderError::BadV1)?;
    let mut parts = line.split(' ');
    let _proxy = parts.next();
    let source = match parts.next() {
        // The rest of an UNKNOWN line is to be ignored (spec §2.1).
        Some("UNKNOWN") => None,
        Some(family @ ("TCP4" | "TCP6")) => {
            let fields: Vec<&str> = parts.collect();
            let [src, dst, sport, dport] = fields[..] else {
                return Err(ProxyHeaderError::BadV1);
            };
            let ip = |s: &str| -> Result<IpAddr, ProxyHeaderError> {
                let ip: IpAddr = s.parse().map_err(|_| ProxyHeaderError::BadV1)?;
                if ip.is_ipv4() != (family == "TCP4") {
                    return Err(ProxyHeaderError::BadV1);
                }
                Ok(ip)
            };
            let port = |s: &str| -> Result<u16, ProxyHeaderError> {
                // Decimal without a sign or leading zeros beyond "0".
                if s.is_empty()
                    || !s.bytes().all(|b| b.is_ascii_digit())
                    || (s.len() > 1 && s.starts_with('0'))
                {
                    return Err(ProxyHeaderError::BadV1);
                }
                s.parse().map_err(|_| ProxyHeaderError::BadV1)
            };
            let source = SocketAddr::new(ip(src)?, port(sport)?);
            ip(dst)?;
            port(dport)?;
            Some(source)
        }
        _ => return Err(ProxyHeaderError::BadV1),
    };
    Ok(Parsed::Complete(Header {
        len: end + 2,
        source,
    }))
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let Some(&[ver_cmd, family, hi, lo]) = buf.get(12..16) else {
        return Ok(Parsed::Incomplete);
    };
    let body_len = usize::from(u16::from_be_bytes([hi, lo]));
    let len = 16 + body_len;
    if ver_cmd >> 4 != 2 {
        return Err(ProxyHeaderError::BadV2);
    }
    if len > V2_MAX {
        return Err(ProxyHeaderError::TooLong);
    }
    let Some(body) = buf.get(16..len) else {
        return Ok(Parsed::Incomplete);
    };
    let source = match ver_cmd & 0x0f {
        // LOCAL: the sender's own connection (a health check).
        0 => None,
        1 => v2_source(family, body)?,
        _ => return Err(ProxyHeaderError::BadV2),
    };
    Ok(Parsed::Complete(Header { len, source }))
}

/// The source address of a v2 `PROXY` command; `None` for families that
/// carry no IP (UNSPEC, UNIX), which keep the connection's address.
fn v2_source(family: u8, body: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    // Address blocks (spec §2.2): src, dst, sport, dport; the whole block
    // must be there, destination included.
    let (ip, port): (IpAddr, [u8; 2]) = match family >> 4 {
        1 if body.len() >= 12 => (Ipv4Addr::from(bytes::<4>(body, 0)?).into(), bytes(body, 8)?),
        2 if body.len() >= 36 => (
            Ipv6Addr::from(bytes::<16>(body, 0)?).into(),
            bytes(body, 32)?,
        ),
        0 | 3 => return Ok(None),
        _ => return Err(ProxyHeaderError::BadV2),
    };
    Ok(Some(SocketAddr::new(ip, u16::from_be_bytes(port))))
}

fn bytes<const N: usize>(body: &[u8], at: usize) -> Result<[u8; N], ProxyHeaderError> {
    body.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ProxyHeaderError::BadV2)
}

/// The header for a connection from `src` to `dst`, version 1 or 2. A
/// mixed IPv4/IPv6 pair is sent as IPv6, IPv4 addresses mapped.
pub fn encode(version: u8, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src_ip, dst_ip) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (IpAddr::V4(a), IpAddr::V4(b)),
        (a, b) => (IpAddr::V6(v6(a)), IpAddr::V6(v6(b))),
    };
    if version == 1 {
        let family = if src_ip.is_ipv4() { "TCP4" } else { "TCP6" };
        let line = format!(
            "PROXY {family} {src_ip} {dst_ip} {} {}\r\n",
            src.port(),
            dst.port()
        );
        return line.into_bytes();
    }
    let mut out = V2_SIGNATURE.to_vec();
    match (src_ip, dst_ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            out.extend_from_slice(&[0x21, 0x11, 0, 12]);
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&b.octets());
        }
        (a, b) => {
            out.extend_from_slice(&[0x21, 0x21, 0, 36]);
            out.extend_from_slice(&v6(a).octets());
            out.extend_from_slice(&v6(b).octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

#[cfg(test)]
mod tests;
