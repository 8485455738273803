//! Upstreams: named groups of servers, the choice of a server for each
//! request, and the per-worker pool of idle upstream connections.

pub mod balance;
pub mod pool;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use balance::SmoothWeighted;

/// Why an upstream could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {upstream}: server {server}: cannot resolve: {source}")]
    Resolve {
        upstream: String,
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {upstream}: server {server} resolves to no address")]
    NoAddress { upstream: String, server: String },
}

/// One server of a group: one address (a DNS name with several records
/// becomes several servers).
#[derive(Debug, Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub weight: u32,
    /// The address as the config wrote it.
    pub configured: String,
}

/// A named group of servers, shared by every worker.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub servers: Vec<Server>,
    /// Idle connections kept per worker per server.
    pub keepalive: usize,
    pub keepalive_timeout: Duration,
    balance: SmoothWeighted,
}

impl Group {
    /// Builds a group, resolving DNS names (blocking; done off the data path).
    pub fn build(cfg: &levee_config::Upstream) -> Result<Group, UpstreamError> {
        let mut servers = Vec::new();
        for s in &cfg.servers {
            let addrs = s
                .address
                .to_socket_addrs()
                .map_err(|source| UpstreamError::Resolve {
                    upstream: cfg.name.clone(),
                    server: s.address.clone(),
                    source,
                })?;
            let before = servers.len();
            for addr in addrs {
                servers.push(Server {
                    addr,
                    weight: s.weight,
                    configured: s.address.clone(),
                });
            }
            if servers.len() == before {
                return Err(UpstreamError::NoAddress {
                    upstream: cfg.name.clone(),
                    server: s.address.clone(),
                });
            }
        }
        let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
        Ok(Group {
            name: cfg.name.clone(),
            servers,
            keepalive: cfg.keepalive,
            keepalive_timeout: cfg.keepalive_timeout,
            balance: SmoothWeighted::new(&weights),
        })
    }

    /// The server for the next request.
    pub fn pick(&self) -> Option<&Server> {
        match self.servers.len() {
            0 => None,
            1 => self.servers.first(),
            _ => self.servers.get(self.balance.next()),
        }
    }

    /// The server after `addr` in order, for moving a failed request along.
    pub fn next_after(&self, addr: SocketAddr) -> Option<&Server> {
        let n = self.servers.len();
        if n < 2 {
            return None;
        }
        let i = self.servers.iter().position(|s| s.addr == addr)?;
        self.servers.get((i + 1) % n)
    }
}
