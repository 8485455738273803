//! Resolving server names, at start and again over time; every A/AAAA
//! record is a server. A change replaces the group's servers at once,
//! without a reload; a failed lookup keeps that name's last good records.
//! A name that has none yet (it did not resolve at start) is asked again
//! after 1 s, then less and less often, up to the usual interval: the
//! server takes requests as soon as its name resolves.
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

/// A configured server whose name did not resolve.
#[derive(Debug)]
pub struct Unresolved {
    /// Its index in the upstream's `servers`.
    pub index: usize,
    /// The address as configured (`host:port`).
    pub address: String,
    pub error: io::Error,
}

/// Every configured server's addresses (index of the server, address), and
/// the servers whose names found none. Blocking, like [`resolve_blocking`]:
/// at start, on reload and in `levee check`.
pub fn resolve_servers(
    cfg: &levee_config::Upstream,
    resolver: Option<&Resolver>,
) -> (Vec<(usize, SocketAddr)>, Vec<Unresolved>) {
    let mut resolved = Vec::new();
    let mut unresolved = Vec::new();
    for (index, s) in cfg.servers.iter().enumerate() {
        let found = match literal(&s.address) {
            Some(a) => Ok(vec![a]),
            None => resolve_blocking(resolver, &s.address),
        };
        match found {
            Ok(addrs) if !addrs.is_empty() => {
                resolved.extend(addrs.into_iter().map(|a| (index, a)));
            }
            Ok(_) => unresolved.push(Unresolved {
                index,
                address: s.address.clone(),
                error: io::Error::new(io::ErrorKind::NotFound, "the name has no address records"),
            }),
            Err(error) => unresolved.push(Unresolved {
                index,
                address: s.address.clone(),
                error,
            }),
        }
    }
    (resolved, unresolved)
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
/// records' TTL with a `[resolver]`, every `resolve_interval` without, and
/// sooner while a name has no address yet.
pub async fn resolve_loop(group: Arc<Group>) {
    if !crate::has_names(&group.config) {
        return;
    }
    let lookup = Lookup::new(group.resolver.as_ref());
    let interval = group.config.resolve_interval;
    // Without a `[resolver]` nothing reports a TTL; after a failure a DNS
    // server is asked again soon, the system resolver at the interval.
    let (usual, after_failure) = match &lookup {
        Lookup::System => (interval, interval),
        Lookup::Dns { valid, .. } => (valid.unwrap_or(MIN_TTL), MIN_TTL),
    };
    // The TTL of the records found at start is not known here; look again
    // soon after, then follow the TTL.
    let mut current = addresses(&group);
    let mut missing = Backoff::new(usual);
    let mut wait = missing.next(&group.config, &current).unwrap_or(usual);
    loop {
        sleep(wait).await;
        current = addresses(&group);
        let round = resolve(&group, &lookup, &current).await;
        wait = round.next.unwrap_or(interval).max(MIN_TTL);
        if round.failed {
            wait = wait.min(after_failure);
        }
        if let Some(soon) = missing.next(&group.config, &round.resolved) {
            wait = wait.min(soon);
        }
        if !same_set(&current, &round.resolved) {
            tracing::info!(
                upstream = %group.name,
                servers = round.resolved.len(),
                "DNS records changed; servers updated"
            );
            group.set_addresses(&round.resolved);
        }
    }
}

/// The group's servers now, as (index of the configured server, address).
fn addresses(group: &Group) -> Vec<(usize, SocketAddr)> {
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
}

/// How soon to ask again while a configured server has no address: 1 s,
/// doubling up to the usual wait, and back to 1 s once all have one.
struct Backoff {
    step: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(cap: Duration) -> Backoff {
        Backoff {
            step: MIN_TTL,
            cap: cap.max(MIN_TTL),
        }
    }

    /// `None` when every server of `cfg` has an address in `resolved`.
    fn next(
        &mut self,
        cfg: &levee_config::Upstream,
        resolved: &[(usize, SocketAddr)],
    ) -> Option<Duration> {
        let missing = (0..cfg.servers.len()).any(|i| !resolved.iter().any(|(j, _)| *j == i));
        if !missing {
            self.step = MIN_TTL;
            return None;
        }
        let wait = self.step;
        self.step = (self.step * 2).min(self.cap);
        Some(wait)
    }
}

/// One round of lookups.
struct Round {
    /// Every configured server's addresses: what a name resolved to now,
    /// or, when its lookup failed, what it had before (perhaps nothing).
    resolved: Vec<(usize, SocketAddr)>,
    /// The earliest time to ask again, from the records' TTLs.
    next: Option<Duration>,
    /// Some lookup failed.
    failed: bool,
}

/// Looks every configured name up again. A name whose lookup fails keeps
/// its addresses in `current`, so one failing name does not hold back the
/// others' changes.
async fn resolve(group: &Group, lookup: &Lookup, current: &[(usize, SocketAddr)]) -> Round {
    let mut round = Round {
        resolved: Vec::new(),
        next: None,
        failed: false,
    };
    let started = Instant::now();
    for (i, s) in group.config.servers.iter().enumerate() {
        if let Some(a) = literal(&s.address) {
            round.resolved.push((i, a));
            continue;
        }
        let found = match lookup.addrs(&s.address).await {
            Ok((addrs, _)) if addrs.is_empty() => {
                tracing::warn!(upstream = %group.name, server = %s.address, "name has no records; keeping the last ones");
                None
            }
            Ok(found) => Some(found),
            Err(e) => {
                tracing::warn!(upstream = %group.name, server = %s.address, error = %e, "cannot resolve; keeping the last records");
                None
            }
        };
        let Some((addrs, ttl)) = found else {
            round.failed = true;
            round
                .resolved
                .extend(current.iter().filter(|(j, _)| *j == i).copied());
            continue;
        };
        for a in addrs {
            if !round.resolved.contains(&(i, a)) {
                round.resolved.push((i, a));
            }
        }
        if let Some(ttl) = ttl {
            let ttl = ttl.saturating_sub(started.elapsed());
            round.next = Some(round.next.map_or(ttl, |n| n.min(ttl)));
        }
    }
    round
}

fn same_set(a: &[(usize, SocketAddr)], b: &[(usize, SocketAddr)]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_config::{Server, Upstream};

    fn upstream(servers: &[&str]) -> Upstream {
        Upstream::new("app", servers.iter().map(|s| Server::new(*s)).collect())
    }

    /// A DNS server that is not there (a closed loopback port): every
    /// lookup fails within the timeout, whatever the machine's own DNS.
    fn nowhere() -> Resolver {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port");
        Resolver {
            servers: vec![closed],
            valid: None,
            timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn a_name_that_does_not_resolve_is_reported_not_fatal() {
        let cfg = upstream(&["127.0.0.1:81", "nothere.invalid:80"]);
        let (resolved, unresolved) = resolve_servers(&cfg, Some(&nowhere()));
        assert_eq!(resolved, [(0, "127.0.0.1:81".parse().expect("addr"))]);
        assert_eq!(unresolved.len(), 1);
        assert_eq!(unresolved[0].index, 1);
        assert_eq!(unresolved[0].address, "nothere.invalid:80");
        // The group starts with the servers that resolved.
        let registry = crate::Registry::new();
        let group = Group::build_with(&cfg, Some(&nowhere()), &registry).expect("builds");
        assert_eq!(group.members().list.len(), 1);
    }

    #[test]
    fn a_group_whose_only_name_does_not_resolve_picks_nothing() {
        let cfg = upstream(&["nothere.invalid:80"]);
        let registry = crate::Registry::new();
        let group = Group::build_with(&cfg, Some(&nowhere()), &registry).expect("builds");
        let members = group.members();
        assert!(members.list.is_empty());
        let pick = group.pick(&members, crate::Affinity::None, &[], Instant::now());
        assert_eq!(pick, None);
    }

    #[test]
    fn missing_names_are_asked_again_sooner_and_sooner_less() {
        let cfg = upstream(&["127.0.0.1:81", "app.test:80"]);
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let one: Vec<(usize, SocketAddr)> = vec![(0, "127.0.0.1:81".parse().expect("addr"))];
        let waits: Vec<Option<Duration>> = (0..5).map(|_| backoff.next(&cfg, &one)).collect();
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(waits, [s(1), s(2), s(4), s(5), s(5)]);
        // Every server has an address: the usual wait, and the next miss starts over.
        let both = [one[0], (1, "127.0.0.2:80".parse().expect("addr"))];
        assert_eq!(backoff.next(&cfg, &both), None);
        assert_eq!(backoff.next(&cfg, &one), s(1));
    }
}
