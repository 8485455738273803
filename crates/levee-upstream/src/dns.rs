//! Resolving server names, at start and again over time; every A/AAAA
//! record is a server. A change replaces the group's servers at once,
//! without a reload; a failed lookup keeps the last good records.
//!
//! With a `[resolver]`, levee asks those DNS servers itself (hickory) and
//! re-resolves when the records' TTL runs out (or every `valid`), as nginx
//! does with `resolver`. Without one it uses the system resolver
//! (`getaddrinfo`, so `/etc/hosts` and nsswitch apply), which reports no TTL,
//! so names are resolved again every `resolve_interval`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveErrorKind, TokioResolver};
use levee_config::Resolver;
use tokio::time::{Instant, sleep};

use crate::{Group, literal};

/// Names are never re-resolved more often than this, whatever the TTL.
const MIN_TTL: Duration = Duration::from_secs(1);

/// How names are looked up.
enum Lookup {
    System,
    Dns {
        // Boxed: the resolver is large, and most groups use the system one.
        resolver: Box<TokioResolver>,
        valid: Option<Duration>,
    },
}

impl Lookup {
    fn new(cfg: Option<&Resolver>) -> Lookup {
        let Some(cfg) = cfg else {
            return Lookup::System;
        };
        let mut servers = NameServerConfigGroup::new();
        for addr in &cfg.servers {
            servers.push(NameServerConfig::new(*addr, Protocol::Udp));
            servers.push(NameServerConfig::new(*addr, Protocol::Tcp));
        }
        let config = ResolverConfig::from_parts(None, vec![], servers);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        let opts = builder.options_mut();
        opts.timeout = cfg.timeout;
        opts.attempts = 1;
        Lookup::Dns {
            resolver: Box::new(builder.build()),
            valid: cfg.valid,
        }
    }

    /// The addresses of `address` (`host:port`), and when to ask again.
    async fn addrs(&self, address: &str) -> io::Result<(Vec<SocketAddr>, Option<Duration>)> {
        match self {
            Lookup::System => Ok((tokio::net::lookup_host(address).await?.collect(), None)),
            Lookup::Dns { resolver, valid } => {
                let (host, port) = split(address)?;
                // A trailing dot makes the name absolute: no search domains.
                let fqdn = if host.ends_with('.') {
                    host.to_owned()
                } else {
                    format!("{host}.")
                };
                let found = resolver.lookup_ip(fqdn).await.map_err(|e| match e.kind() {
                    ResolveErrorKind::Proto(_) => io::Error::other(e.to_string()),
                    _ => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
                })?;
                let ttl = found
                    .valid_until()
                    .saturating_duration_since(std::time::Instant::now());
                let addrs = found.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                Ok((addrs, Some(valid.unwrap_or(ttl))))
            }
        }
    }
}

/// `host:port` (`[v6]:port` for literals, which never get here).
fn split(address: &str) -> io::Result<(&str, u16)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "expected host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    Ok((host, port.parse().map_err(|_| bad())?))
}

/// Resolves `address` once, blocking the calling thread: at start and on
/// reload, never on the data path. With a `[resolver]` the lookup runs on a
/// short-lived thread of its own, since the caller may be inside a runtime.
pub(crate) fn resolve_blocking(
    resolver: Option<&Resolver>,
    address: &str,
) -> io::Result<Vec<SocketAddr>> {
    let Some(cfg) = resolver else {
        return Ok(address.to_socket_addrs()?.collect());
    };
    let cfg = cfg.clone();
    let address = address.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async { Lookup::new(Some(&cfg)).addrs(&address).await })
            .map(|(addrs, _)| addrs)
    })
    .join()
    .map_err(|_| io::Error::other("resolver thread failed"))?
}

/// Resolves the names of `group` again and again until dropped: on the
/// records' TTL with a `[resolver]`, every `resolve_interval` without.
pub async fn resolve_loop(group: Arc<Group>) {
    if !crate::has_names(&group.config) {
        return;
    }
    let lookup = Lookup::new(group.resolver.as_ref());
    // The TTL of the records found at start is not known here; look again
    // soon after, then follow the TTL.
    let mut wait = match &lookup {
        Lookup::System => group.config.resolve_interval,
        Lookup::Dns { valid, .. } => valid.unwrap_or(MIN_TTL),
    };
    loop {
        sleep(wait).await;
        let Some((resolved, next)) = resolve(&group, &lookup).await else {
            wait = match &lookup {
                Lookup::System => group.config.resolve_interval,
                Lookup::Dns { .. } => MIN_TTL,
            };
            continue;
        };
        wait = next.unwrap_or(group.config.resolve_interval).max(MIN_TTL);
        let current: Vec<(usize, SocketAddr)> = {
            let members = group.members();
            members
                .list
                .iter()
                .filter_map(|m| {
                    let i = group
                        .config
                        .servers
                        .iter()
                        .position(|s| s.address == m.configured)?;
                    Some((i, m.addr))
                })
                .collect()
        };
        if !same_set(&current, &resolved) {
            tracing::info!(
                upstream = %group.name,
                servers = resolved.len(),
                "DNS records changed; servers updated"
            );
            group.set_addresses(&resolved);
        }
    }
}

/// Every configured server's addresses now, and the earliest time to ask
/// again; `None` if any name failed (the last good records stay).
async fn resolve(
    group: &Group,
    lookup: &Lookup,
) -> Option<(Vec<(usize, SocketAddr)>, Option<Duration>)> {
    let mut out = Vec::new();
    let mut next: Option<Duration> = None;
    let started = Instant::now();
    for (i, s) in group.config.servers.iter().enumerate() {
        if let Some(a) = literal(&s.address) {
            out.push((i, a));
            continue;
        }
        match lookup.addrs(&s.address).await {
            Ok((addrs, ttl)) => {
                let before = out.len();
                for a in addrs {
                    if !out.contains(&(i, a)) {
                        out.push((i, a));
                    }
                }
                if out.len() == before {
                    tracing::warn!(upstream = %group.name, server = %s.address, "name has no records; keeping the last ones");
                    return None;
                }
                if let Some(ttl) = ttl {
                    let ttl = ttl.saturating_sub(started.elapsed());
                    next = Some(next.map_or(ttl, |n| n.min(ttl)));
                }
            }
            Err(e) => {
                tracing::warn!(upstream = %group.name, server = %s.address, error = %e, "cannot resolve; keeping the last records");
                return None;
            }
        }
    }
    Some((out, next))
}

fn same_set(a: &[(usize, SocketAddr)], b: &[(usize, SocketAddr)]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
