//! On-demand TLS's gate: whether a name a client sent in its SNI may have a
//! certificate ordered now. A name passes when it is a DNS name, the
//! allow-list or the ask service says yes, and neither rate limit is hit:
//! one order per name per `per_name`, and `max_per_hour` orders in all.
//!
//! Refusals are remembered for `per_name` too (up to [`MAX_REMEMBERED`]
//! names), so a flood of SNI names costs the ask service one question per
//! name, and at most [`MAX_ASKING`] questions run at once; past that a
//! handshake is refused without asking.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use levee_config::OnDemand;

use crate::settings::is_dns_name;

pub const MAX_REMEMBERED: usize = 10_000;
pub const MAX_ASKING: usize = 8;
const HOUR: Duration = Duration::from_secs(3600);

/// What the gate says about a name, before any question is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The allow-list covers it.
    Allowed,
    /// Ask the service.
    Ask(String),
    /// No, and why (for the log and the counter).
    Refused(&'static str),
}

#[derive(Debug, Default)]
pub struct Gate {
    /// When each name was last ordered or refused, and whether it was refused.
    seen: HashMap<String, (Instant, bool)>,
    /// Orders in the last hour, oldest first.
    orders: VecDeque<Instant>,
    asking: AtomicUsize,
}

impl Gate {
    /// The first look at `name` (lower case) at `now`.
    pub fn check(&mut self, policy: &OnDemand, name: &str, now: Instant) -> Verdict {
        if !is_dns_name(name) || name.starts_with("*.") {
            return Verdict::Refused("not a DNS name");
        }
        if let Some((at, refused)) = self.seen.get(name)
            && now.duration_since(*at) < policy.per_name
        {
            return Verdict::Refused(if *refused {
                "refused recently"
            } else {
                "ordered recently (per_name)"
            });
        }
        let mut listed = levee_tls::sni::Names::default();
        for pattern in &policy.allow {
            listed.insert(pattern, ());
        }
        if listed.get(name).is_some() {
            return Verdict::Allowed;
        }
        match &policy.ask {
            Some(url) => Verdict::Ask(url.clone()),
            None => {
                self.remember(name, now, true, policy.per_name);
                Verdict::Refused("not in the allow-list")
            }
        }
    }

    /// Takes a slot to ask the service; `false` when [`MAX_ASKING`] run.
    pub fn start_asking(&self) -> bool {
        self.asking
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_ASKING).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn done_asking(&self) {
        self.asking.fetch_sub(1, Ordering::AcqRel);
    }

    /// After the service said no (or did not answer).
    pub fn refuse(&mut self, policy: &OnDemand, name: &str, now: Instant) {
        self.remember(name, now, true, policy.per_name);
    }

    /// Takes an order slot for `name`: `false` when the hourly budget is spent.
    pub fn take_order(&mut self, policy: &OnDemand, name: &str, now: Instant) -> bool {
        while self
            .orders
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            self.orders.pop_front();
        }
        if self.orders.len() >= policy.max_per_hour as usize {
            return false;
        }
        self.orders.push_back(now);
        self.remember(name, now, false, policy.per_name);
        true
    }

    fn remember(&mut self, name: &str, now: Instant, refused: bool, keep: Duration) {
        if self.seen.len() >= MAX_REMEMBERED {
            self.seen
                .retain(|_, (at, _)| now.duration_since(*at) < keep);
            if self.seen.len() >= MAX_REMEMBERED {
                // Still full of fresh names: a flood. Forget the refusals
                // first; a forgotten name costs one more question.
                self.seen.retain(|_, (_, refused)| !*refused);
            }
        }
        self.seen.insert(name.to_owned(), (now, refused));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ask: Option<&str>, allow: &[&str]) -> OnDemand {
        OnDemand {
            ask: ask.map(str::to_owned),
            ask_timeout: Duration::from_secs(1),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            per_name: Duration::from_secs(60),
            max_per_hour: 2,
        }
    }

    #[test]
    fn allow_list_then_ask_then_refuse() {
        let mut g = Gate::default();
        let now = Instant::now();
        let p = policy(None, &["*.ok.test"]);
        assert_eq!(g.check(&p, "a.ok.test", now), Verdict::Allowed);
        assert!(matches!(g.check(&p, "b.no.test", now), Verdict::Refused(_)));
        let p = policy(Some("http://127.0.0.1:1/ask"), &[]);
        assert!(matches!(g.check(&p, "c.test", now), Verdict::Ask(_)));
        g.refuse(&p, "c.test", now);
        // Refused names are not asked about again for `per_name`.
        assert!(matches!(g.check(&p, "c.test", now), Verdict::Refused(_)));
        assert!(matches!(
            g.check(&p, "c.test", now + Duration::from_secs(61)),
            Verdict::Ask(_)
        ));
    }

    #[test]
    fn garbage_names_are_refused_without_asking() {
        let mut g = Gate::default();
        let p = policy(Some("http://127.0.0.1:1/ask"), &[]);
        for bad in [
            "",
            "localhost",
            "127.0.0.1",
            "a b.test",
            "a..test",
            "*.x.test",
            "x/y.test",
        ] {
            assert!(
                matches!(g.check(&p, bad, Instant::now()), Verdict::Refused(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn orders_are_limited_per_name_and_per_hour() {
        let mut g = Gate::default();
        let now = Instant::now();
        let p = policy(None, &["*.ok.test"]);
        assert!(g.take_order(&p, "a.ok.test", now));
        assert!(matches!(g.check(&p, "a.ok.test", now), Verdict::Refused(_)));
        assert!(g.take_order(&p, "b.ok.test", now));
        assert!(!g.take_order(&p, "c.ok.test", now), "hourly budget of 2");
        assert!(g.take_order(&p, "c.ok.test", now + HOUR));
    }

    #[test]
    fn a_flood_of_names_stays_bounded() {
        let mut g = Gate::default();
        let now = Instant::now();
        let p = policy(Some("http://127.0.0.1:1/ask"), &[]);
        for i in 0..(MAX_REMEMBERED * 2) {
            g.refuse(&p, &format!("n{i}.test"), now);
        }
        assert!(g.seen.len() <= MAX_REMEMBERED);
        let taken: usize = (0..20).filter(|_| g.start_asking()).count();
        assert_eq!(taken, MAX_ASKING);
    }
}
