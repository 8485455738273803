//! Who a fleet record answers with, and in what order: no I/O, no clock.
//!
//! [`LiveSet::select`] applies the health rules to what the fleet and the
//! probes say about each member (docs/dns.md, "Health rules"):
//!
//! ```text
//! in      heartbeat fresh, serving (not stopping), not drained, and the
//!         address passes its probe
//! none?   panic: every fresh member that is not drained, health ignored
//! none?   every member known, stale and drained ones too
//! ```
//!
//! so an answer is never empty while any member has an address. Each query
//! then takes at most `max_answers` addresses of its family
//! ([`LiveSet::choose`]): rotated one place further per query (a member of
//! weight `w` leads `w` times as often), or drawn at random by weight; with
//! `geo`, from the client's country, else its continent, else from all.

use std::net::IpAddr;

use levee_config::AnswerOrder;

/// Country and continent codes (ISO, upper case), as the GeoIP database
/// gives them.
pub type Place = (Option<[u8; 2]>, Option<[u8; 2]>);

/// One member as the fleet and the probes see it now.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub instance: &'a str,
    pub fresh: bool,
    /// Not stopping.
    pub serving: bool,
    pub drained: bool,
    pub public: &'a [IpAddr],
    pub weight: u32,
    /// Each public address's probe verdict (`None`: not probed yet).
    pub healthy: Vec<Option<bool>>,
}

/// Which rule decided the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The members that are in.
    #[default]
    In,
    /// None is healthy: every fresh member not drained.
    NoneHealthy,
    /// As `NoneHealthy`, but because no probe has answered yet (a levee
    /// that just started): not a fault.
    Unprobed,
    /// No fresh member is left undrained: every member known.
    NoneFresh,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::In => "in",
            Mode::NoneHealthy => "none healthy: answering every fresh member",
            Mode::Unprobed => "not probed yet: answering every fresh member",
            Mode::NoneFresh => "none fresh: answering every member known",
        }
    }
}

/// Whether a tier admits a member's address (by its index).
type Admits = dyn Fn(&Seen<'_>, usize) -> bool;

/// One address of the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub ip: IpAddr,
    pub weight: u32,
    pub place: Place,
}

/// The addresses a fleet record answers with now, sorted (so two levees
/// that see the same fleet hold equal sets).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveSet {
    pub v4: Vec<Entry>,
    pub v6: Vec<Entry>,
    /// The members in the set, sorted.
    pub members: Vec<String>,
    pub mode: Mode,
}

impl LiveSet {
    /// Applies the health rules; `place` locates an address (for geo).
    pub fn select(seen: &[Seen<'_>], place: &dyn Fn(IpAddr) -> Place) -> LiveSet {
        let tiers: [(Mode, &Admits); 3] = [
            (Mode::In, &|s: &Seen<'_>, i: usize| {
                s.fresh && s.serving && !s.drained && s.healthy.get(i) == Some(&Some(true))
            }),
            (Mode::NoneHealthy, &|s: &Seen<'_>, _| s.fresh && !s.drained),
            (Mode::NoneFresh, &|_: &Seen<'_>, _| true),
        ];
        for (mode, admits) in tiers {
            let mut set = LiveSet {
                mode,
                ..LiveSet::default()
            };
            for s in seen {
                let mut any = false;
                for (i, &ip) in s.public.iter().enumerate() {
                    if !admits(s, i) {
                        continue;
                    }
                    any = true;
                    let e = Entry {
                        ip,
                        weight: s.weight.max(1),
                        place: place(ip),
                    };
                    if ip.is_ipv4() {
                        &mut set.v4
                    } else {
                        &mut set.v6
                    }
                    .push(e);
                }
                if any {
                    set.members.push(s.instance.to_owned());
                }
            }
            if mode == Mode::NoneHealthy
                && !seen
                    .iter()
                    .any(|s| s.fresh && !s.drained && s.healthy.iter().any(Option::is_some))
            {
                set.mode = Mode::Unprobed;
            }
            if !set.members.is_empty() {
                set.v4.sort_by_key(|e| e.ip);
                set.v6.sort_by_key(|e| e.ip);
                set.v4.dedup_by_key(|e| e.ip);
                set.v6.dedup_by_key(|e| e.ip);
                set.members.sort();
                return set;
            }
        }
        LiveSet::default()
    }

    /// The addresses for one query of family `v6`: at most `max`, in
    /// `order`; `turn` is this record's query count (rotation, and the
    /// seed of a weighted draw). With `client` set, the entries nearest it.
    /// Returns whether the client's place narrowed the answer.
    pub fn choose(
        &self,
        v6: bool,
        order: AnswerOrder,
        max: usize,
        turn: u64,
        client: Option<Place>,
        out: &mut Vec<IpAddr>,
    ) -> bool {
        let all = if v6 { &self.v6 } else { &self.v4 };
        // Without geo the set itself is the pool: no copy per query.
        let (pool, narrowed) = match near(all, client) {
            Some(here) => (std::borrow::Cow::Owned(here), true),
            None => (std::borrow::Cow::Borrowed(all.as_slice()), false),
        };
        if pool.is_empty() {
            return narrowed;
        }
        match order {
            AnswerOrder::Rotate => rotate(&pool, max, turn, out),
            AnswerOrder::Weighted => weighted(&pool, max, turn, out),
        }
        narrowed
    }
}

/// The entries in the client's country, else continent; `None`: all.
fn near(all: &[Entry], client: Option<Place>) -> Option<Vec<Entry>> {
    if let Some((country, continent)) = client {
        for (want, of) in [
            (
                country,
                (|e: &Entry| e.place.0) as fn(&Entry) -> Option<[u8; 2]>,
            ),
            (continent, |e: &Entry| e.place.1),
        ] {
            let Some(want) = want else { continue };
            let here: Vec<Entry> = all
                .iter()
                .filter(|e| of(e) == Some(want))
                .copied()
                .collect();
            if !here.is_empty() {
                return Some(here);
            }
        }
    }
    None
}

/// The entry that `point`, taken modulo the weights' sum, falls on when
/// each entry spans as many points as its weight (0 for an empty pool).
fn landing(pool: &[Entry], point: u64) -> usize {
    let total: u64 = pool.iter().map(|e| u64::from(e.weight)).sum();
    let mut at = point % total.max(1);
    pool.iter()
        .position(|e| {
            let w = u64::from(e.weight);
            if at < w {
                true
            } else {
                at -= w;
                false
            }
        })
        .unwrap_or(0)
}

/// Starts where the weighted turn falls and goes round from there.
fn rotate(pool: &[Entry], max: usize, turn: u64, out: &mut Vec<IpAddr>) {
    let start = landing(pool, turn);
    out.extend(
        pool.iter()
            .cycle()
            .skip(start)
            .take(pool.len().min(max))
            .map(|e| e.ip),
    );
}

/// Draws without replacement, each draw in proportion to the weights left.
fn weighted(pool: &[Entry], max: usize, turn: u64, out: &mut Vec<IpAddr>) {
    let mut left: Vec<Entry> = pool.to_vec();
    let mut seed = turn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    while !left.is_empty() && out.len() < max {
        // xorshift64*: the draw needs to be fair, not unpredictable.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let i = landing(&left, r);
        out.push(left.swap_remove(i).ip);
    }
}

#[cfg(test)]
mod tests;
