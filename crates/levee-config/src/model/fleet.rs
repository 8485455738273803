//! `[fleet]`: many levees sharing state through Redis (docs/fleet.md). The
//! model names where Redis is and how to log in to it; `levee-fleet` opens
//! the connection and reads the credentials, so parsing stays free of I/O.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::FileRef;

/// Default `timeout`: no request waits longer than this on Redis.
pub const DEFAULT_FLEET_TIMEOUT: Duration = Duration::from_millis(20);
/// Default `heartbeat`: how often a member records itself.
pub const DEFAULT_FLEET_HEARTBEAT: Duration = Duration::from_secs(1);
/// Default `heartbeat_ttl`: a member not heard from for this long is stale.
pub const DEFAULT_FLEET_HEARTBEAT_TTL: Duration = Duration::from_secs(5);
/// Default `weight` of a member in the fleet's DNS answers.
pub const DEFAULT_FLEET_WEIGHT: u32 = 1;
/// Port of a Redis address written without one.
pub const REDIS_PORT: u16 = 6379;
/// Port of a Sentinel address written without one.
pub const SENTINEL_PORT: u16 = 26379;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The fleet's name: the prefix of every key, so fleets can share a Redis.
    pub name: String,
    /// This member's name; `None` means the host name (resolved at start).
    pub instance: Option<String>,
    pub redis: RedisTarget,
    /// Username and password, read at start and on reload; `None`: no AUTH.
    pub credentials: Option<Credentials>,
    /// PEM CA certificates for `rediss://`; the system's roots when `None`.
    pub ca_file: Option<FileRef>,
    /// The longest any request waits on Redis.
    pub timeout: Duration,
    pub heartbeat: Duration,
    pub heartbeat_ttl: Duration,
    /// This member's public addresses: what the fleet's DNS records answer
    /// for it (docs/dns.md); empty: it is in no answer.
    pub public_addresses: Vec<IpAddr>,
    /// This member's share of DNS answers against the others' (1-1000).
    pub weight: u32,
}

/// Where the fleet's Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis = "redis://host:port/db"`).
    Single(RedisAddr),
    /// The master of `master`, as the sentinels say.
    Sentinel {
        master: String,
        sentinels: Vec<RedisAddr>,
    },
    /// A Redis Cluster reached through any of its `seeds`.
    Cluster(Vec<RedisAddr>),
}

impl RedisTarget {
    /// Every address written, for TLS checks and messages.
    pub fn addresses(&self) -> &[RedisAddr] {
        match self {
            RedisTarget::Single(a) => std::slice::from_ref(a),
            RedisTarget::Sentinel { sentinels, .. } => sentinels,
            RedisTarget::Cluster(seeds) => seeds,
        }
    }

    /// Whether the connections use TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.addresses().first().is_some_and(|a| a.tls)
    }
}

/// `redis://host:port[/db]` or `rediss://…` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAddr {
    /// A DNS name or an IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The database number (`SELECT`); 0 unless written.
    pub db: u16,
}

impl fmt::Display for RedisAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{scheme}://{host}:{}", self.port)?;
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

/// Where the Redis username and password come from: never the config
/// itself. The value is `PASSWORD` or `USERNAME:PASSWORD`.
#[derive(Debug, Clone, Eq)]
pub struct Credentials {
    pub source: CredentialSource,
    /// The key path, line and column, for a message when it cannot be read.
    pub at: FileRef,
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Credentials) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    File(PathBuf),
    /// An environment variable's name.
    Env(String),
}

/// Whose traffic a rate-limit rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// This process's (the default).
    #[default]
    Local,
    /// The whole fleet's, through Redis (`[fleet]` must be set).
    Fleet,
}
