//! How an upstream spreads, checks and retries requests. Defaults are
//! documented in `docs/config.md` and live here as constants.

use std::time::Duration;

use super::CookieAttributes;

/// How a server is chosen for each request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    /// Smooth weighted round robin (`"round_robin"`, the default).
    #[default]
    RoundRobin,
    /// Fewest requests in flight relative to weight (`"least_conn"`).
    LeastConn,
    /// Power of two random choices on a latency EWMA (`"latency"`).
    Latency,
    /// Consistent hashing on a request key (`"hash"` with `hash_key`).
    Hash(HashKey),
    /// A cookie names the server that served the client before (`"sticky"`).
    Sticky {
        cookie: String,
        /// `sticky_cookie_secure`, `_same_site`, `_max_age` (model/shape.rs).
        attributes: CookieAttributes,
    },
}

/// What a `hash` upstream hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    /// Path and query.
    Uri,
    /// A request header, name in lower case.
    Header(String),
    /// A cookie by name.
    Cookie(String),
}

/// What an upstream's servers speak (`protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (`"http1"`, the default), over TLS with `[upstream.NAME.tls]`.
    #[default]
    Http1,
    /// HTTP/2 in cleartext with prior knowledge (`"h2c"`).
    H2c,
    /// HTTP/2 over TLS, ALPN `h2` (`"h2"`; needs `[upstream.NAME.tls]`).
    H2,
}

impl UpstreamProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::H2c => "h2c",
            UpstreamProtocol::H2 => "h2",
        }
    }

    /// The servers speak HTTP/2.
    pub fn is_http2(self) -> bool {
        self != UpstreamProtocol::Http1
    }
}

/// Passive health: ejection after consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Consecutive failures (connect failures, resets before a response,
    /// timeouts, and the statuses in `on_status`) that eject a server; 0
    /// disables.
    pub max_fails: u32,
    /// The first ejection; each further one in a row doubles it.
    pub fail_timeout: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// Response statuses that count as failures (`eject_on_status`); none by
    /// default, since an application's own 5xx for one URL says nothing
    /// about the server.
    pub on_status: StatusSet,
    /// The largest share of a group, in percent, that may be out of
    /// rotation for health at once (`max_ejected_percent`).
    pub max_ejected_percent: u32,
}

/// A set of 5xx statuses, one bit each: `Copy`, and a lookup per response
/// costs a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusSet(u128);

impl StatusSet {
    /// The empty set.
    pub const NONE: StatusSet = StatusSet(0);

    /// `statuses` outside 500–599 are left out.
    pub fn of(statuses: &[u16]) -> StatusSet {
        let mut set = StatusSet::NONE;
        for &s in statuses {
            set.insert(s);
        }
        set
    }

    pub fn insert(&mut self, status: u16) {
        if let Some(bit) = status.checked_sub(500).filter(|b| *b < 100) {
            self.0 |= 1u128 << bit;
        }
    }

    #[inline]
    pub fn contains(self, status: u16) -> bool {
        status
            .checked_sub(500)
            .filter(|b| *b < 100)
            .is_some_and(|bit| self.0 & (1u128 << bit) != 0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The statuses in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        (500u16..600).filter(move |&s| self.contains(s))
    }
}

/// Active health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive passes that bring a down server up.
    pub rise: u32,
    /// Consecutive failures that take an up server down.
    pub fall: u32,
    /// Each wait is the interval plus up to this percentage of it, at random.
    pub jitter_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// The server accepts a TCP connection.
    Tcp,
    Http(HttpCheck),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub method: String,
    /// Path and query sent, starting with `/`.
    pub path: String,
    /// Inclusive range of passing statuses.
    pub status: (u16, u16),
    /// A substring the body must contain (read up to 64 KiB).
    pub body: Option<String>,
}

/// When a failed request moves to another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further servers tried after the first, per request.
    pub retries: u32,
    /// Upstream statuses on which an idempotent request is retried.
    pub on_status: Vec<u16>,
    /// Retries allowed as a percentage of requests over the last 10 s.
    pub budget_percent: u32,
}

pub const DEFAULT_STICKY_COOKIE: &str = "levee_server";
pub const DEFAULT_MAX_FAILS: u32 = 3;
pub const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(300);
/// Envoy's outlier detection default: at most half a group ejected.
pub const DEFAULT_MAX_EJECTED_PERCENT: u32 = 50;
pub const DEFAULT_SLOW_START: Duration = Duration::from_secs(10);
pub const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_RESOLVER_TIMEOUT: Duration = Duration::from_secs(5);

/// `[resolver]`: DNS servers asked directly, so upstream names follow their
/// records' TTL. Without it the system resolver is used every
/// `resolve_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    pub servers: Vec<std::net::SocketAddr>,
    /// Re-resolve this often instead of on the records' TTL (nginx's `valid=`).
    pub valid: Option<Duration>,
    /// How long one lookup may take before it counts as failed.
    pub timeout: Duration,
}
pub const DEFAULT_RETRIES: u32 = 2;
pub const DEFAULT_RETRY_ON_STATUS: &[u16] = &[502, 503, 504];
pub const DEFAULT_RETRY_BUDGET_PERCENT: u32 = 20;
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_CHECK_RISE: u32 = 2;
pub const DEFAULT_CHECK_FALL: u32 = 3;
pub const DEFAULT_CHECK_JITTER_PERCENT: u32 = 10;
pub const DEFAULT_CHECK_STATUS: (u16, u16) = (200, 399);

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            max_fails: DEFAULT_MAX_FAILS,
            fail_timeout: DEFAULT_FAIL_TIMEOUT,
            max_ejection: DEFAULT_MAX_EJECTION,
            on_status: StatusSet::NONE,
            max_ejected_percent: DEFAULT_MAX_EJECTED_PERCENT,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: DEFAULT_RETRIES,
            on_status: DEFAULT_RETRY_ON_STATUS.to_vec(),
            budget_percent: DEFAULT_RETRY_BUDGET_PERCENT,
        }
    }
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            method: "GET".to_owned(),
            path: "/".to_owned(),
            status: DEFAULT_CHECK_STATUS,
            body: None,
        }
    }
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: CheckKind::Http(HttpCheck::default()),
            interval: DEFAULT_CHECK_INTERVAL,
            timeout: DEFAULT_CHECK_TIMEOUT,
            rise: DEFAULT_CHECK_RISE,
            fall: DEFAULT_CHECK_FALL,
            jitter_percent: DEFAULT_CHECK_JITTER_PERCENT,
        }
    }
}
