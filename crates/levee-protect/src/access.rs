//! IP allow/deny lists. IPv4 addresses and IPv4-mapped IPv6 addresses
//! (`::ffff:192.0.2.1`) are the same client, so both are compared in one
//! 128-bit space where IPv4 sits at `::ffff:0:0/96`.

use std::net::IpAddr;

use levee_config::{AccessList, IpNet};

/// A compiled [`AccessList`]: a match in `deny` refuses; otherwise a
/// non-empty `allow` must match.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    allow: Vec<(u128, u128)>,
    deny: Vec<(u128, u128)>,
}

/// The address as 128 bits, IPv4 mapped into IPv6.
pub fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_u128 << 32 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The mask of a prefix of `ip`'s own family, in the 128-bit space.
pub fn mask(ip: IpAddr, prefix: u8) -> u128 {
    let len = match ip {
        IpAddr::V4(_) => 96 + u32::from(prefix.min(32)),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => 96 + u32::from(prefix.min(32)),
        IpAddr::V6(_) => u32::from(prefix.min(128)),
    };
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

fn compile(nets: &[IpNet]) -> Vec<(u128, u128)> {
    nets.iter()
        .map(|n| {
            let m = mask(n.addr, n.prefix);
            (bits(n.addr) & m, m)
        })
        .collect()
}

impl Acl {
    pub fn new(list: &AccessList) -> Acl {
        Acl {
            allow: compile(&list.allow),
            deny: compile(&list.deny),
        }
    }

    /// Matches exactly `nets` (an allow list and nothing else): the
    /// sources trusted for forwarded fields. Like any allow list, an empty
    /// one matches everyone: callers trust no one instead.
    pub fn networks(nets: &[IpNet]) -> Acl {
        Acl {
            allow: compile(nets),
            deny: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = bits(ip.to_canonical());
        let hit = |list: &[(u128, u128)]| list.iter().any(|&(net, m)| ip & m == net);
        !hit(&self.deny) && (self.allow.is_empty() || hit(&self.allow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(allow: &[&str], deny: &[&str]) -> Acl {
        let parse = |l: &[&str]| l.iter().map(|s| s.parse().expect("net")).collect();
        Acl::new(&AccessList {
            allow: parse(allow),
            deny: parse(deny),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn deny_wins_and_allow_restricts() {
        let a = acl(&["10.0.0.0/8", "2001:db8::/32"], &["10.1.0.0/16"]);
        assert!(a.permits(ip("10.2.3.4")));
        assert!(!a.permits(ip("10.1.3.4")));
        assert!(!a.permits(ip("11.0.0.1")));
        assert!(a.permits(ip("2001:db8:1::5")));
        assert!(!a.permits(ip("2001:db9::5")));
        // The same client written as an IPv4-mapped IPv6 address.
        assert!(!a.permits(ip("::ffff:10.1.0.9")));
        assert!(a.permits(ip("::ffff:10.9.0.9")));
    }

    #[test]
    fn empty_allows_everyone_and_zero_prefix_matches_all_of_a_family() {
        assert!(acl(&[], &[]).permits(ip("192.0.2.1")));
        let a = acl(&[], &["0.0.0.0/0"]);
        assert!(!a.permits(ip("192.0.2.1")));
        assert!(a.permits(ip("::1")));
        let a = acl(&[], &["::/0"]);
        assert!(!a.permits(ip("::1")));
        let host = acl(&["127.0.0.1"], &[]);
        assert!(host.permits(ip("127.0.0.1")) && !host.permits(ip("127.0.0.2")));
    }
}
