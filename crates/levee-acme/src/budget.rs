//! How many orders may reach the CA: at most `per_hour` in any hour, all
//! names together, and `per_name_per_day` for one name in any 24 hours
//! (renewals and `levee ctl certs renew` included). A safety net under the
//! renewal schedule and the backoff: whatever goes wrong (a CA issuing
//! minute-long certificates, a renewal window longer than the lifetime, an
//! operator's loop), levee stays inside the CA's rate limits (Let's
//! Encrypt: 300 new orders per 3 hours, 5 identical certificates a week).
//! Pure bookkeeping: the caller passes `now`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Default)]
pub struct Budget {
    all: VecDeque<Instant>,
    by_name: HashMap<String, VecDeque<Instant>>,
}

fn trim(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

impl Budget {
    /// Takes one order for `name` at `now`, or says when one is next
    /// possible (`Err(wait)`).
    pub fn take(
        &mut self,
        name: &str,
        now: Instant,
        per_hour: u32,
        per_name_per_day: u32,
    ) -> Result<(), Duration> {
        trim(&mut self.all, now, HOUR);
        let mine = self.by_name.entry(name.to_owned()).or_default();
        trim(mine, now, DAY);
        let mut wait = Duration::ZERO;
        if self.all.len() >= per_hour as usize
            && let Some(first) = self.all.front()
        {
            wait = wait.max(HOUR - now.duration_since(*first));
        }
        if mine.len() >= per_name_per_day as usize
            && let Some(first) = mine.front()
        {
            wait = wait.max(DAY - now.duration_since(*first));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        self.all.push_back(now);
        mine.push_back(now);
        // Names with nothing in their window are forgotten.
        if self.by_name.len() > 4 * per_hour as usize {
            self.by_name.retain(|_, q| {
                trim(q, now, DAY);
                !q.is_empty()
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_name_and_in_total() {
        let mut b = Budget::default();
        let t = Instant::now();
        let s = Duration::from_secs;
        assert!(b.take("a", t, 3, 2).is_ok());
        assert!(b.take("a", t, 3, 2).is_ok());
        assert!(b.take("b", t + s(1), 3, 2).is_ok());
        // Three in the hour: `c` waits for the first to leave it.
        assert_eq!(b.take("c", t + s(600), 3, 2), Err(HOUR - s(600)));
        // `a` has had its two today: it waits a day from its first.
        assert_eq!(b.take("a", t + s(600), 3, 2), Err(DAY - s(600)));
        assert!(b.take("c", t + HOUR + s(1), 3, 2).is_ok());
        assert_eq!(b.take("a", t + HOUR + s(2), 3, 2), Err(DAY - HOUR - s(2)));
        assert!(b.take("a", t + DAY, 3, 2).is_ok());
    }
}
