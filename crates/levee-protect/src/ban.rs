//! The runtime ban list: addresses and networks banned by an operator
//! (`levee ctl ban`, the dashboard), each with an optional expiry, checked
//! at accept (every listener, HTTP and mail) and per request next to the
//! route's allow/deny list, so a keep-alive connection opened before the
//! ban ends too.
//!
//! The list is not config: it lives in memory, survives reloads, and ends
//! with the process. It sits behind the small [`BanStore`] trait, so a fleet
//! can later keep it in a shared store (Redis) and every member checks the
//! same list; [`Local`] is the in-process store.
//!
//! The check on the hot path is one relaxed load while nothing is banned;
//! with bans it is a read lock and a scan of the (short) list. The clock is
//! read only when an entry matches, to see whether it has expired.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use levee_config::IpNet;

use crate::access::{bits, mask};

/// Most entries the local list holds: a ban list is for a handful of
/// abusers; thousands belong in a firewall.
pub const MAX_BANS: usize = 4096;

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The address (`/32` or `/128`) or network banned.
    pub net: IpNet,
    /// When it was added, seconds since the Unix epoch.
    pub since: u64,
    /// When it ends, seconds since the Unix epoch; `None`: until lifted.
    pub until: Option<u64>,
}

/// Why a ban could not be added or lifted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanError {
    #[error("the ban list is full ({MAX_BANS} entries); lift some first")]
    Full,
    #[error("`{0}` is not an address or a CIDR network")]
    Address(String),
}

/// Where bans are kept. Everything but the hot-path check goes through
/// this, so a shared store can replace [`Local`] without touching callers.
pub trait BanStore: Send + Sync + std::fmt::Debug {
    /// Adds or replaces the ban of `ban.net`.
    fn add(&self, ban: Ban) -> Result<(), BanError>;
    /// Lifts the ban of exactly `net`; whether there was one.
    fn remove(&self, net: &IpNet) -> bool;
    /// The bans in force at `now` (seconds since the Unix epoch).
    fn list(&self, now: u64) -> Vec<Ban>;
    /// Whether `ip` is banned at `now`.
    fn contains(&self, ip: IpAddr, now: u64) -> bool;
}

/// The in-process ban list.
#[derive(Debug, Default)]
pub struct Local {
    /// Compiled as `(network bits, mask, ban)`.
    entries: RwLock<Vec<(u128, u128, Ban)>>,
    /// Entries held, read without the lock on the hot path.
    len: AtomicUsize,
}

fn compile(net: &IpNet) -> (u128, u128) {
    let ip = net.addr.to_canonical();
    let m = mask(ip, net.prefix);
    (bits(ip) & m, m)
}

impl Local {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(u128, u128, Ban)>> {
        // Every update is one call that leaves the list whole: go on after
        // a panic elsewhere.
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(u128, u128, Ban)>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anything is listed (expired entries included until pruned).
    fn is_empty(&self) -> bool {
        self.len.load(Relaxed) == 0
    }

    fn prune(list: &mut Vec<(u128, u128, Ban)>, now: u64) {
        list.retain(|(_, _, b)| b.until.is_none_or(|u| u > now));
    }
}

impl BanStore for Local {
    fn add(&self, ban: Ban) -> Result<(), BanError> {
        let (net, m) = compile(&ban.net);
        let mut list = self.write();
        Self::prune(&mut list, ban.since);
        let full = list.len() >= MAX_BANS;
        match list.iter_mut().find(|(n, mm, _)| *n == net && *mm == m) {
            Some(entry) => entry.2 = ban,
            None if full => return Err(BanError::Full),
            None => list.push((net, m, ban)),
        }
        self.len.store(list.len(), Relaxed);
        Ok(())
    }

    fn remove(&self, net: &IpNet) -> bool {
        let (n, m) = compile(net);
        let mut list = self.write();
        let before = list.len();
        list.retain(|(nn, mm, _)| !(*nn == n && *mm == m));
        self.len.store(list.len(), Relaxed);
        list.len() != before
    }

    fn list(&self, now: u64) -> Vec<Ban> {
        let mut list = self.write();
        Self::prune(&mut list, now);
        self.len.store(list.len(), Relaxed);
        list.iter().map(|(_, _, b)| b.clone()).collect()
    }

    fn contains(&self, ip: IpAddr, now: u64) -> bool {
        let b = bits(ip.to_canonical());
        self.read()
            .iter()
            .any(|(n, m, ban)| b & m == *n && ban.until.is_none_or(|u| u > now))
    }
}

/// The process's ban list.
pub fn store() -> &'static Local {
    static STORE: OnceLock<Local> = OnceLock::new();
    STORE.get_or_init(Local::default)
}

/// Connections and requests refused because of a ban (`levee_banned_total`).
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The hot-path check: whether `ip` is banned now, counted when it is.
pub fn banned(ip: IpAddr) -> bool {
    let store = store();
    if store.is_empty() {
        return false;
    }
    let hit = store.contains(ip, unix_now());
    if hit {
        REFUSED.fetch_add(1, Relaxed);
    }
    hit
}

/// Parses `ADDR` or `ADDR/PREFIX` (a bare address is `/32` or `/128`).
pub fn parse_net(text: &str) -> Result<IpNet, BanError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .map_err(|_| BanError::Address(text.to_owned()))
}

/// Bans `net` from `now` for `duration` (`None`: until lifted).
pub fn ban(net: IpNet, duration: Option<Duration>) -> Result<Ban, BanError> {
    let since = unix_now();
    let ban = Ban {
        net,
        since,
        until: duration.map(|d| since.saturating_add(d.as_secs().max(1))),
    };
    store().add(ban.clone())?;
    Ok(ban)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn addresses_networks_and_expiry() {
        let l = Local::default();
        let net = parse_net("192.0.2.0/24").expect("net");
        l.add(Ban {
            net,
            since: 100,
            until: Some(200),
        })
        .expect("added");
        l.add(Ban {
            net: parse_net("2001:db8::1").expect("v6"),
            since: 100,
            until: None,
        })
        .expect("added");
        assert!(l.contains(ip("192.0.2.77"), 150));
        assert!(
            l.contains(ip("::ffff:192.0.2.77"), 150),
            "mapped IPv4 is the same client"
        );
        assert!(!l.contains(ip("192.0.3.1"), 150));
        assert!(!l.contains(ip("192.0.2.77"), 200), "expired");
        assert!(l.contains(ip("2001:db8::1"), 10_000));
        assert!(!l.contains(ip("2001:db8::2"), 10_000));
        assert_eq!(l.list(250).len(), 1, "the expired ban is pruned");
        assert!(l.remove(&parse_net("2001:db8::1/128").expect("v6")));
        assert!(!l.remove(&parse_net("2001:db8::1/128").expect("v6")));
        assert!(l.is_empty());
    }

    #[test]
    fn a_second_ban_of_the_same_net_replaces_the_first() {
        let l = Local::default();
        let net = parse_net("198.51.100.9").expect("ip");
        for until in [Some(50), None] {
            l.add(Ban {
                net,
                since: 1,
                until,
            })
            .expect("added");
        }
        assert_eq!(
            l.list(100),
            vec![Ban {
                net,
                since: 1,
                until: None
            }]
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert!(parse_net("example.com").is_err());
        assert!(parse_net("192.0.2.0/33").is_err());
        assert!(parse_net("<script>").is_err());
    }
}
