//! Re-resolving server names. The system resolver (`getaddrinfo`, so
//! `/etc/hosts` and `nsswitch` apply) reports no TTL, so names are resolved
//! again every `resolve_interval` (default 30 s) instead; every A/AAAA
//! record is a server. A change replaces the group's servers at once,
//! without a reload; a failed lookup keeps the last good records.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::sleep;

use crate::{Group, literal};

/// Resolves the names of `group` every `resolve_interval` until dropped.
pub async fn resolve_loop(group: Arc<Group>) {
    if !crate::has_names(&group.config) {
        return;
    }
    loop {
        sleep(group.config.resolve_interval).await;
        if let Some(resolved) = resolve(&group).await {
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
}

/// Every configured server's addresses now; `None` if any name failed (the
/// last good records stay).
async fn resolve(group: &Group) -> Option<Vec<(usize, SocketAddr)>> {
    let mut out = Vec::new();
    for (i, s) in group.config.servers.iter().enumerate() {
        if let Some(a) = literal(&s.address) {
            out.push((i, a));
            continue;
        }
        match tokio::net::lookup_host(s.address.as_str()).await {
            Ok(addrs) => {
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
            }
            Err(e) => {
                tracing::warn!(upstream = %group.name, server = %s.address, error = %e, "cannot resolve; keeping the last records");
                return None;
            }
        }
    }
    Some(out)
}

fn same_set(a: &[(usize, SocketAddr)], b: &[(usize, SocketAddr)]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
