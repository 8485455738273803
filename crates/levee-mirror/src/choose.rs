//! Which mirror a client is sent to. Every mirror that may serve the file
//! is put in the first tier that fits it:
//!
//! 1. `Network`: one of its `networks` contains the client's address;
//! 2. `Asn`: it is in the client's autonomous system;
//! 3. `Country`, 4. `Continent`: the client's, from GeoIP;
//! 5. `Near`: both locations are known and it is within 1.5 times the
//!    nearest mirror's distance (plus 100 km, so two mirrors in one city
//!    share the load);
//! 6. `Anywhere`: the rest.
//!
//! Tiers are taken in order and, within one, mirrors are drawn at random in
//! proportion to their weights, without replacement: the first is the
//! redirect, the next ones the `Link: rel=duplicate` alternatives and the
//! Metalink's ranked URLs. No I/O, no clock: the random source is passed in.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use crate::geo::{Whereabouts, distance_km};
use crate::mirror::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Network,
    Asn,
    Country,
    Continent,
    Near,
    Anywhere,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Network => "network",
            Tier::Asn => "asn",
            Tier::Country => "country",
            Tier::Continent => "continent",
            Tier::Near => "near",
            Tier::Anywhere => "anywhere",
        }
    }
}

/// The client as the choice sees it.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    pub geo: Whereabouts,
}

/// One chosen mirror: its index among the candidates given, its tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    pub index: usize,
    pub tier: Tier,
    pub distance_km: Option<f64>,
}

/// How much farther than the nearest a mirror may be and still be "near".
const NEAR_FACTOR: f64 = 1.5;
const NEAR_SLACK_KM: f64 = 100.0;

/// The tier of each candidate (already known to have the file and room).
pub fn tiers(candidates: &[&Profile], client: &Client) -> Vec<Ranked> {
    let mut out: Vec<Ranked> = candidates
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let g = &client.geo;
            let distance_km = match (p.config.location, g.location) {
                (Some(a), Some(b)) => Some(distance_km(a, b)),
                _ => None,
            };
            let tier = if p.prefers(client.ip) {
                Tier::Network
            } else if g.asn.is_some_and(|a| p.config.asn.contains(&a)) {
                Tier::Asn
            } else if g.country.is_some() && p.country == g.country {
                Tier::Country
            } else if g.continent.is_some() && p.continent == g.continent {
                Tier::Continent
            } else if distance_km.is_some() {
                Tier::Near
            } else {
                Tier::Anywhere
            };
            Ranked {
                index,
                tier,
                distance_km,
            }
        })
        .collect();
    let nearest = out
        .iter()
        .filter(|r| r.tier == Tier::Near)
        .filter_map(|r| r.distance_km)
        .fold(f64::INFINITY, f64::min);
    for r in &mut out {
        if r.tier == Tier::Near
            && r.distance_km
                .is_some_and(|d| d > nearest * NEAR_FACTOR + NEAR_SLACK_KM)
        {
            r.tier = Tier::Anywhere;
        }
    }
    out
}

/// Up to `limit` candidates, best tier first, weighted random within a tier.
pub fn rank(candidates: &[&Profile], client: &Client, limit: usize, rng: &mut Rng) -> Vec<Ranked> {
    let mut pool = tiers(candidates, client);
    pool.sort_by_key(|r| r.tier);
    let mut out = Vec::with_capacity(limit.min(pool.len()));
    let mut start = 0;
    while start < pool.len() && out.len() < limit {
        let tier = pool[start].tier;
        let end = start + pool[start..].iter().take_while(|r| r.tier == tier).count();
        let group = &mut pool[start..end];
        let mut left = group.len();
        while left > 0 && out.len() < limit {
            let total: u64 = group[..left]
                .iter()
                .map(|r| u64::from(candidates[r.index].config.weight.max(1)))
                .sum();
            let mut pick = rng.below(total);
            let mut at = 0;
            for (i, r) in group[..left].iter().enumerate() {
                let w = u64::from(candidates[r.index].config.weight.max(1));
                if pick < w {
                    at = i;
                    break;
                }
                pick -= w;
            }
            out.push(group[at]);
            group.swap(at, left - 1);
            left -= 1;
        }
        start = end;
    }
    out
}

/// xorshift64*: fast and good enough to spread load; not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Seeded from the process's random hash keys.
    pub fn from_entropy() -> Rng {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Rng::new(h.finish())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(Rng::from_entropy().0);
}

/// Runs `f` with this thread's generator: no lock between workers.
pub fn with_rng<T>(f: impl FnOnce(&mut Rng) -> T) -> T {
    RNG.with(|cell| {
        let mut rng = Rng(cell.get());
        let out = f(&mut rng);
        cell.set(rng.0);
        out
    })
}

#[cfg(test)]
mod tests;
