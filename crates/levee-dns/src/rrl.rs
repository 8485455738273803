//! Response-rate limiting per client prefix (`[dns] rrl_*`), against
//! reflection: a flood of queries spoofed with a victim's address gets the
//! victim at most `rrl_rate` answers a second. Limited answers are dropped,
//! but every `rrl_slip`th goes out truncated and empty, so a real client
//! behind the prefix retries over TCP (which needs its real address).
//!
//! The arithmetic and its bounded key table are the HTTP rate limits'
//! (`levee_protect::RateLimiter`, GCRA), counted as the rule `dns_rrl`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use levee_config::{RateLimit, Scope};
use levee_protect::{Decision, RateLimiter};

/// What happens to one UDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Sent truncated (TC set, no records).
    Slip,
    Drop,
}

#[derive(Debug)]
pub struct Rrl {
    limiter: RateLimiter,
    slip: u64,
    prefix_v4: u8,
    prefix_v6: u8,
    limited: AtomicU64,
}

impl Rrl {
    /// `None` when `rrl_rate = 0`.
    pub fn new(c: &levee_config::Rrl) -> Option<Rrl> {
        if c.rate == 0 {
            return None;
        }
        let rule = RateLimit {
            name: "dns_rrl".to_owned(),
            key: Vec::new(),
            requests: c.rate,
            per: Duration::from_secs(1),
            burst: c.burst.max(1),
            nodelay: true,
            dry_run: false,
            max_keys: c.max_keys,
            status: 429,
            scope: Scope::Local,
        };
        Some(Rrl {
            limiter: RateLimiter::new(&rule, Instant::now()),
            slip: u64::from(c.slip),
            prefix_v4: c.prefix_v4,
            prefix_v6: c.prefix_v6,
            limited: AtomicU64::new(0),
        })
    }

    /// Decides one answer to `ip` at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        match self.limiter.check(self.key(ip), now) {
            Decision::Admit | Decision::Delay(_) => Verdict::Send,
            Decision::Refuse { .. } => {
                let n = self.limited.fetch_add(1, Ordering::Relaxed) + 1;
                if self.slip > 0 && n.is_multiple_of(self.slip) {
                    Verdict::Slip
                } else {
                    Verdict::Drop
                }
            }
        }
    }

    /// The prefix as a key: an IPv4 prefix in the low 32 bits, an IPv6 one
    /// as its top 64 bits (the two meet only on `::/32`, which is no
    /// client's), spread by an odd multiplier (a bijection, so two
    /// prefixes never share a key) for the table's shards.
    fn key(&self, ip: IpAddr) -> u64 {
        let raw = match ip {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                u64::from(bits & (u32::MAX << (32 - u32::from(self.prefix_v4.min(32)))))
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => return self.key(IpAddr::V4(v4)),
                None => {
                    let top = (u128::from(a) >> 64) as u64;
                    top & (u64::MAX << (64 - u32::from(self.prefix_v6.min(64))))
                }
            },
        };
        raw.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, slip: u32) -> Rrl {
        Rrl::new(&levee_config::Rrl {
            rate,
            burst: rate,
            slip,
            ..Default::default()
        })
        .expect("on")
    }

    #[test]
    fn a_prefix_gets_its_rate_and_every_other_refusal_slips() {
        let r = rrl(5, 2);
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let same_24: IpAddr = "192.0.2.200".parse().expect("ip");
        let other: IpAddr = "198.51.100.1".parse().expect("ip");
        let verdicts: Vec<Verdict> = (0..9)
            .map(|i| r.check(if i % 2 == 0 { a } else { same_24 }, t))
            .collect();
        assert_eq!(&verdicts[..5], &[Verdict::Send; 5]);
        assert_eq!(
            &verdicts[5..],
            &[Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        assert_eq!(
            r.check(other, t),
            Verdict::Send,
            "another prefix is untouched"
        );
        assert_eq!(r.check(a, t + Duration::from_secs(1)), Verdict::Send);
        assert!(
            Rrl::new(&levee_config::Rrl {
                rate: 0,
                ..Default::default()
            })
            .is_none()
        );
    }

    #[test]
    fn ipv6_prefixes_are_56_bits_by_default() {
        let r = rrl(1, 0);
        let t = Instant::now();
        let a: IpAddr = "2001:db8:0:1::1".parse().expect("ip");
        let same: IpAddr = "2001:db8:0:ff::2".parse().expect("ip");
        let other: IpAddr = "2001:db8:0:100::1".parse().expect("ip");
        assert_eq!(r.check(a, t), Verdict::Send);
        assert_eq!(r.check(same, t), Verdict::Drop);
        assert_eq!(r.check(other, t), Verdict::Send);
    }
}
