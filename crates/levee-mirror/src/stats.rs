//! Download counts with bounded cardinality: per mirror (in each mirror's
//! `Live`), per file (in the tree, reported as the top N), and here per
//! country (one counter per two-letter code) and per day (the last 32).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

use levee_config::units::civil_from_days;

const DAYS: usize = 32;
/// 26 × 26 codes, then one for "unknown".
const COUNTRIES: usize = 26 * 26 + 1;

#[derive(Debug)]
pub struct Stats {
    countries: Box<[AtomicU64]>,
    days: [(AtomicU32, AtomicU64); DAYS],
    /// Downloads served locally (small, excluded, on no mirror).
    pub local: AtomicU64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            countries: (0..COUNTRIES).map(|_| AtomicU64::new(0)).collect(),
            days: std::array::from_fn(|_| (AtomicU32::new(0), AtomicU64::new(0))),
            local: AtomicU64::new(0),
        }
    }
}

fn slot(country: Option<[u8; 2]>) -> usize {
    match country {
        Some([a, b]) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
            usize::from(a - b'A') * 26 + usize::from(b - b'A')
        }
        _ => COUNTRIES - 1,
    }
}

fn day_of(now: SystemTime) -> u32 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as u32)
}

impl Stats {
    /// Counts one download by a client from `country` at `now`.
    pub fn count(&self, country: Option<[u8; 2]>, now: SystemTime) {
        self.countries[slot(country)].fetch_add(1, Ordering::Relaxed);
        let today = day_of(now);
        let (day, count) = &self.days[today as usize % DAYS];
        // The first download of a day resets its slot; a download racing
        // with that reset at midnight may be lost, which a daily count bears.
        if day.load(Ordering::Relaxed) != today && day.swap(today, Ordering::Relaxed) != today {
            count.store(0, Ordering::Relaxed);
        }
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Countries with downloads (`"--"` for unknown), most first.
    pub fn countries(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .countries
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then(|| {
                    let code = if i == COUNTRIES - 1 {
                        "--".to_owned()
                    } else {
                        let a = char::from(b'A' + (i / 26) as u8);
                        let b = char::from(b'A' + (i % 26) as u8);
                        format!("{a}{b}")
                    };
                    (code, n)
                })
            })
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Downloads per day (`YYYY-MM-DD`) for the last days, oldest first.
    pub fn days(&self, now: SystemTime) -> Vec<(String, u64)> {
        let today = day_of(now);
        let mut out: Vec<(u32, u64)> = self
            .days
            .iter()
            .map(|(d, c)| (d.load(Ordering::Relaxed), c.load(Ordering::Relaxed)))
            .filter(|(d, c)| *c > 0 && *d + DAYS as u32 > today)
            .collect();
        out.sort();
        out.into_iter()
            .map(|(d, c)| {
                let (y, m, dd) = civil_from_days(i64::from(d));
                (format!("{y:04}-{m:02}-{dd:02}"), c)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn countries_and_days() {
        let s = Stats::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_598_001);
        s.count(Some(*b"DE"), t);
        s.count(Some(*b"DE"), t);
        s.count(None, t + Duration::from_secs(86_400));
        assert_eq!(s.countries(), [("DE".to_owned(), 2), ("--".to_owned(), 1)]);
        assert_eq!(
            s.days(t + Duration::from_secs(86_400)),
            [("2026-12-06".to_owned(), 2), ("2026-12-07".to_owned(), 1)]
        );
        // 32 days later the slot of the first day is reused, not added to.
        let later = t + Duration::from_secs(32 * 86_400);
        s.count(None, later);
        assert_eq!(
            s.days(later),
            [("2026-12-07".to_owned(), 1), ("2027-01-07".to_owned(), 1)]
        );
    }
}
