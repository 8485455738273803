//! Protection settings: rate limits, connection limits, allow/deny lists,
//! Basic auth and the slow-client and overload knobs. `docs/protection.md`
//! explains how they act; `docs/config.md` lists the keys. Defaults live here
//! as constants.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An IP network in CIDR form: `10.0.0.0/8`, `2001:db8::/32`; a bare address
/// is a host (`/32` or `/128`). Host bits are kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<IpNet, String> {
        let bad = |why: &str| format!("invalid network `{text}`: {why}");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("expected an IP address or CIDR such as \"10.0.0.0/8\""))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(bad(&format!("the prefix length must be 0..={max}"))),
                }
            }
            Some(_) => return Err(bad("the prefix length must be a number")),
        };
        Ok(IpNet { addr, prefix })
    }
}

/// Who may connect or ask. Empty `allow` allows everyone not denied; a
/// match in `deny` always refuses, whatever `allow` says.
/// The proxies in front of a listener whose forwarded fields say who the
/// client is (`trusted_proxies`, `forwarded_header`; docs/http1.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustedProxies {
    /// Peers trusted to name the client; empty for none.
    pub networks: Vec<IpNet>,
    /// The field they name it in.
    pub header: ForwardedHeader,
}

/// Where a trusted proxy names the client and the scheme it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` and `X-Forwarded-Proto`, as most load balancers write them.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239): its `for=` and `proto=` parameters.
    Forwarded,
}

impl ForwardedHeader {
    /// The value as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessList {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl AccessList {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// Per-listener protections, applied right after accept, before any byte is
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerProtect {
    pub access: AccessList,
    /// Open connections on this listener, all workers together; 0: no limit.
    pub max_connections: u32,
    /// Open connections from one client address; 0: no limit.
    pub max_connections_per_ip: u32,
    /// Open connections from one client network (`client_prefix_v4`/`_v6`); 0: no limit.
    pub max_connections_per_prefix: u32,
    pub client_prefix_v4: u8,
    pub client_prefix_v6: u8,
}

pub const DEFAULT_CLIENT_PREFIX_V4: u8 = 24;
pub const DEFAULT_CLIENT_PREFIX_V6: u8 = 64;

impl Default for ListenerProtect {
    fn default() -> Self {
        ListenerProtect {
            access: AccessList::default(),
            max_connections: 0,
            max_connections_per_ip: 0,
            max_connections_per_prefix: 0,
            client_prefix_v4: DEFAULT_CLIENT_PREFIX_V4,
            client_prefix_v6: DEFAULT_CLIENT_PREFIX_V6,
        }
    }
}

/// Per-route protections, checked in this order once the route is chosen
/// and before its action runs: access list, Basic auth, rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteProtect {
    pub access: AccessList,
    pub auth: Option<BasicAuth>,
    /// Names of `[rate_limit.NAME]` rules; all must admit the request.
    pub rate_limits: Vec<String>,
}

/// HTTP Basic authentication against an htpasswd-style file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// `user:hash` lines; bcrypt hashes (`$2y$`, `$2b$`, `$2a$`).
    pub file: PathBuf,
    pub realm: String,
}

pub const DEFAULT_AUTH_REALM: &str = "levee";

/// One part of a rate-limit key. Parts combine: every part must be present
/// for the rule to apply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client address, cut to a prefix (`client_ip`, `client_ip/24`,
    /// `client_ip/24/48`: IPv4 prefix, then IPv6 prefix).
    ClientIp { v4: u8, v6: u8 },
    /// A request header, name in lower case (`header:x-api-key`).
    Header(String),
    /// A cookie by name (`cookie:session`).
    Cookie(String),
    /// A query parameter by name, value percent-decoded (`query:code`).
    Query(String),
    /// The request path without the query (`path`).
    Path,
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPart::ClientIp { v4: 32, v6: 128 } => f.write_str("client_ip"),
            KeyPart::ClientIp { v4, v6 } => write!(f, "client_ip/{v4}/{v6}"),
            KeyPart::Header(h) => write!(f, "header:{h}"),
            KeyPart::Cookie(c) => write!(f, "cookie:{c}"),
            KeyPart::Query(q) => write!(f, "query:{q}"),
            KeyPart::Path => f.write_str("path"),
        }
    }
}

/// A `[rate_limit.NAME]` rule. Its state is shared by every route that
/// names it and by all workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub name: String,
    pub key: Vec<KeyPart>,
    /// `requests` per `per`.
    pub requests: u32,
    pub per: Duration,
    /// Requests admitted at once by a key at rest (at least 1).
    pub burst: u32,
    /// Admit within the burst at once (`true`), or space requests out at the
    /// rate by delaying them (`false`).
    pub nodelay: bool,
    /// Count and log what would be refused, refuse nothing.
    pub dry_run: bool,
    /// Most keys remembered; idle ones are forgotten first.
    pub max_keys: u32,
    /// Status of a refused request (429 unless set).
    pub status: u16,
    /// This process's traffic, or the fleet's (`scope = "fleet"`).
    pub scope: super::Scope,
}

pub const DEFAULT_RATE_BURST: u32 = 1;
pub const DEFAULT_RATE_MAX_KEYS: u32 = 100_000;
pub const DEFAULT_RATE_STATUS: u16 = 429;

/// Process-wide protection settings (`[protect]`) and the rate-limit rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protect {
    /// Least bytes a client must send (request body) or take (response)
    /// within each `progress_window` of levee waiting on it; 0: no minimum.
    pub min_progress: u64,
    pub progress_window: Duration,
    /// Percentage of the descriptor limit at which idle keep-alive
    /// connections are closed, oldest first, to make room.
    pub shed_idle_at: u8,
    /// `[rate_limit.NAME]` rules in file order.
    pub rate_limits: Vec<RateLimit>,
}

pub const DEFAULT_MIN_PROGRESS: u64 = 1024;
pub const DEFAULT_PROGRESS_WINDOW: Duration = Duration::from_secs(10);
pub const DEFAULT_SHED_IDLE_AT: u8 = 90;

impl Default for Protect {
    fn default() -> Self {
        Protect {
            min_progress: DEFAULT_MIN_PROGRESS,
            progress_window: DEFAULT_PROGRESS_WINDOW,
            shed_idle_at: DEFAULT_SHED_IDLE_AT,
            rate_limits: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse() {
        let n: IpNet = "10.1.0.0/16".parse().expect("valid");
        assert_eq!(n.prefix, 16);
        let n: IpNet = "::1".parse().expect("valid");
        assert_eq!(n.prefix, 128);
        let n: IpNet = "192.0.2.7".parse().expect("valid");
        assert_eq!(n.to_string(), "192.0.2.7/32");
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "1.2.3.4/+1",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }
}
