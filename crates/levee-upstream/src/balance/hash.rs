//! Consistent hashing: each server owns points on a 64-bit ring in
//! proportion to its weight, and a key goes to the first usable server at or
//! after its hash. Removing one of N servers moves only the keys it owned,
//! about 1/N of them; a server that is down hands its keys to its ring
//! neighbours and gets them back when it returns.
//!
//! The hash is FNV-1a with a final mix, fixed across processes and
//! versions, so several levee instances agree on where a key goes.

use std::net::SocketAddr;

use crate::Member;

/// Ring points per unit of weight.
const POINTS_PER_WEIGHT: u32 = 64;
/// Weights above this get no more points (keeps the ring small).
const MAX_POINTS: u32 = 64 * 64;

/// splitmix64's finaliser: spreads nearby inputs over the whole range.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The hash of a request key (client IP, URI, header or cookie value).
pub fn key(bytes: &[u8]) -> u64 {
    mix(fnv1a(bytes, 0))
}

/// What a sticky cookie holds for the server at `addr`.
pub fn cookie_id(addr: SocketAddr) -> u64 {
    mix(fnv1a(addr.to_string().as_bytes(), 0x5717))
}

#[derive(Debug, Default)]
pub struct Ring {
    /// (point, member index), sorted by point.
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub fn build(members: &[Member]) -> Ring {
        let mut points = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let name = m.addr.to_string();
            let n = (m.weight.max(1) * POINTS_PER_WEIGHT).min(MAX_POINTS);
            for p in 0..n {
                let h = mix(fnv1a(name.as_bytes(), u64::from(p)));
                points.push((h, i as u32));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The first server clockwise from `h` that `ok` accepts.
    pub fn find(&self, h: u64, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.points.len();
        let start = self.points.partition_point(|p| p.0 < h);
        (0..n)
            .filter_map(|k| self.points.get((start + k) % n))
            .map(|&(_, i)| i as usize)
            .find(|&i| ok(i))
    }
}
