//! Upstreams: named groups of servers, the choice of a server for each
//! request, their health, the upstream error model with the retry policy
//! and budget, and the per-worker connections to servers (HTTP/1 and
//! HTTP/2).
//!
//! ```text
//! config ─▶ Group::build (resolve names, states from the Registry)
//!   request ─▶ Group::pick (balance over usable servers; backups last;
//!                           none usable: panic mode, every routable server)
//!           ─▶ pool (a connection: pooled, shared HTTP/2, or connect.rs)
//!           ─▶ Lease (in flight) ─▶ Group::observe_response / observe_fault
//!                                   (metrics; passive health, bounded ejection)
//!           ─▶ a Fault (error.rs) ─▶ retry::after_fault: fresh connection,
//!                                   another server (retry budget), or stop
//!   control thread ─▶ health::check_group (active checks)
//!                  ─▶ dns::resolve_loop (records become servers, no reload)
//! ```

pub mod balance;
pub mod budget;
pub mod connect;
pub mod dns;
pub mod error;
pub mod health;
pub mod passive;
pub mod pool;
pub mod registry;
pub mod retry;
pub mod state;
pub mod stats;
pub mod stream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use levee_config::{Resolver, Upstream};
use tokio::time::Instant;

/// A map keyed by addresses from the config (servers, listeners), never by
/// what a client sent: hashed with foldhash, as SipHash's resistance to
/// chosen keys buys nothing here. A proxied request looks up three such
/// keys (its route's listener, the pool's take and put), and SipHash cost
/// about 700 instructions of them (bench/README.md).
pub type AddrMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub use balance::Affinity;
pub use budget::RetryBudget;
pub use connect::Dest;
pub use error::{Cause, Fault};
pub use registry::Registry;
pub use state::{AdminState, Lease, ServerState, Status};
pub use stream::UpstreamStream;

/// Why an upstream could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TLS error's message is in this one (and not a `source`, so a
    /// chain printer does not repeat it).
    #[error("upstream {upstream}: TLS: {error}")]
    Tls {
        upstream: String,
        error: levee_tls::TlsError,
    },
}

/// How a group talks TLS to its servers (`[upstream.NAME.tls]`).
#[derive(Debug)]
pub struct GroupTls {
    pub connector: levee_tls::Connector,
    /// The configured `server_name`; each server's host when `None`.
    pub server_name: Option<String>,
}

impl GroupTls {
    /// Loads the CA and client certificate files `cfg` names (`levee
    /// check` calls this too, so it refuses what start-up would).
    pub fn build(
        cfg: &levee_config::UpstreamTls,
        protocol: levee_config::UpstreamProtocol,
    ) -> Result<GroupTls, levee_tls::TlsError> {
        let client_cert = match (&cfg.client_cert, &cfg.client_key) {
            (Some(c), Some(k)) => Some((c.path.clone(), k.path.clone())),
            _ => None,
        };
        let connector = levee_tls::Connector::new(&levee_tls::ClientSettings {
            ca: cfg.ca.as_ref().map(|f| f.path.clone()),
            client_cert,
            // Offer only what levee will speak on the connection.
            alpn: vec![
                if protocol.is_http2() {
                    "h2"
                } else {
                    "http/1.1"
                }
                .into(),
            ],
        })?;
        Ok(GroupTls {
            connector,
            server_name: cfg.server_name.clone(),
        })
    }

    /// The name to send and verify for a server written as `configured`
    /// (`host:port`, `[v6]:port`).
    pub fn name_for<'a>(&'a self, configured: &'a str) -> &'a str {
        if let Some(name) = &self.server_name {
            return name;
        }
        let host = configured
            .rsplit_once(':')
            .map_or(configured, |(host, _port)| host);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// One server of a group: one address (a DNS name with several records
/// becomes several servers).
#[derive(Debug, Clone)]
pub struct Member {
    pub addr: SocketAddr,
    /// The address as the config wrote it.
    pub configured: String,
    /// The configured weight (an operator's override is in `state`).
    pub weight: u32,
    pub backup: bool,
    /// What a sticky cookie holds to name this server.
    pub cookie: u64,
    pub state: Arc<ServerState>,
}

/// The servers of a group at one moment. Replaced whole when DNS records
/// change; a request keeps the snapshot it picked from.
#[derive(Debug)]
pub struct Members {
    /// Unique per snapshot: keys per-worker balancing state.
    id: u64,
    pub list: Vec<Member>,
    ring: balance::hash::Ring,
    has_backups: bool,
}

impl Members {
    fn new(list: Vec<Member>) -> Members {
        static IDS: AtomicU64 = AtomicU64::new(1);
        Members {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            ring: balance::hash::Ring::build(&list),
            has_backups: list.iter().any(|m| m.backup),
            list,
        }
    }

    pub fn get(&self, i: usize) -> Option<&Member> {
        self.list.get(i)
    }
}

/// A named group of servers, shared by every worker.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub config: Upstream,
    /// Idle connections kept per worker per server.
    pub keepalive: usize,
    pub keepalive_timeout: Duration,
    members: ArcSwap<Members>,
    pub budget: RetryBudget,
    /// The `[resolver]` names are followed with; `None`: the system resolver.
    pub resolver: Option<Resolver>,
    /// Set when the servers speak TLS.
    pub tls: Option<GroupTls>,
    /// Per upstream counters and the ejection lock, kept across reloads.
    pub stats: Arc<stats::GroupStats>,
    registry: Arc<Registry>,
}

/// The address when `host` is an IP literal (no DNS needed).
fn literal(address: &str) -> Option<SocketAddr> {
    address.parse().ok()
}

/// Whether any server is named by DNS (and so is resolved again over time).
pub fn has_names(cfg: &Upstream) -> bool {
    cfg.servers.iter().any(|s| literal(&s.address).is_none())
}

impl Group {
    /// Builds a group, resolving DNS names with the system resolver.
    pub fn build(cfg: &Upstream, registry: &Arc<Registry>) -> Result<Group, UpstreamError> {
        Group::build_with(cfg, None, registry)
    }

    /// Builds a group, resolving DNS names with `resolver` (the system
    /// resolver when `None`). Blocking: done at start and reload, off the
    /// data path. A name that does not resolve is logged and left out: the
    /// group starts without that server, and [`dns::resolve_loop`] keeps
    /// asking until it resolves (as nginx does with a `resolver`), rather
    /// than a DNS hiccup stopping a start or a reload.
    pub fn build_with(
        cfg: &Upstream,
        resolver: Option<&Resolver>,
        registry: &Arc<Registry>,
    ) -> Result<Group, UpstreamError> {
        let (resolved, unresolved) = dns::resolve_servers(cfg, resolver);
        for u in &unresolved {
            tracing::warn!(
                upstream = %cfg.name,
                server = %u.address,
                error = %u.error,
                "cannot resolve; the server takes no requests until its name resolves"
            );
        }
        let tls = match &cfg.tls {
            Some(t) => {
                Some(
                    GroupTls::build(t, cfg.protocol).map_err(|error| UpstreamError::Tls {
                        upstream: cfg.name.clone(),
                        error,
                    })?,
                )
            }
            None => None,
        };
        let now = Instant::now();
        let members = members_of(cfg, registry, &resolved, now);
        Ok(Group {
            tls,
            name: cfg.name.clone(),
            keepalive: cfg.keepalive,
            keepalive_timeout: cfg.keepalive_timeout,
            members: ArcSwap::from_pointee(members),
            budget: RetryBudget::new(cfg.retry.budget_percent, now),
            config: cfg.clone(),
            resolver: resolver.cloned(),
            stats: registry.group_stats(&cfg.name, now),
            registry: registry.clone(),
        })
    }

    /// The current servers.
    pub fn members(&self) -> Arc<Members> {
        self.members.load_full()
    }

    /// Replaces the servers with `resolved` (index of the configured server,
    /// address) after a DNS change. Servers no longer present are retired:
    /// they take no new requests and their idle connections close.
    pub fn set_addresses(&self, resolved: &[(usize, SocketAddr)]) {
        let members = members_of(&self.config, &self.registry, resolved, Instant::now());
        let old = self.members.load();
        for m in &old.list {
            if !members.list.iter().any(|n| Arc::ptr_eq(&n.state, &m.state)) {
                m.state.set_retired(true);
            }
        }
        self.members.store(Arc::new(members));
    }

    /// The server for the next request among `members`, skipping the
    /// indices in `tried`. Backups are considered only when no primary is
    /// usable; when no server at all is usable, panic mode picks among the
    /// servers that are neither drained nor disabled, health ignored.
    /// `None`: no server can take it.
    #[inline]
    pub fn pick(
        &self,
        members: &Members,
        affinity: Affinity,
        tried: &[usize],
        now: Instant,
    ) -> Option<usize> {
        balance::pick(self, members, affinity, tried, now)
    }

    /// Whether any server of `members` may take a request by its health
    /// and state (no panic mode needed). Stops at the first usable one.
    pub fn any_usable(&self, members: &Members, now: Instant) -> bool {
        members.list.iter().any(|m| m.state.usable(now))
    }

    /// Finds servers by address text: a configured `host:port` (every
    /// record of it) or one resolved `ip:port`.
    pub fn find(&self, address: &str) -> Vec<Member> {
        let members = self.members();
        let by_addr: Option<SocketAddr> = address.parse().ok();
        members
            .list
            .iter()
            .filter(|m| m.configured.eq_ignore_ascii_case(address) || Some(m.addr) == by_addr)
            .cloned()
            .collect()
    }
}

fn members_of(
    cfg: &Upstream,
    registry: &Registry,
    resolved: &[(usize, SocketAddr)],
    now: Instant,
) -> Members {
    let list = resolved
        .iter()
        .filter_map(|&(i, addr)| {
            let s = cfg.servers.get(i)?;
            Some(Member {
                addr,
                configured: s.address.clone(),
                weight: s.weight,
                backup: s.backup,
                cookie: balance::hash::cookie_id(addr),
                state: registry.state(&cfg.name, s, addr, now),
            })
        })
        .collect();
    Members::new(list)
}
