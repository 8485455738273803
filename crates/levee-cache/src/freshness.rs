//! Freshness and age (RFC 9111 §4.2), and what a stored response may be
//! used for (§4, §4.2.4, RFC 5861 for the stale-* extensions).
//!
//! All times are seconds since the Unix epoch, given by the caller.

use crate::directives::{Request, Response};

/// Statuses that are heuristically cacheable (RFC 9110 §15.1).
pub const HEURISTIC_STATUSES: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Heuristic freshness: a fraction of the time since Last-Modified, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heuristic {
    pub fraction: f64,
    pub max: u64,
}

impl Default for Heuristic {
    /// 10% of the Last-Modified age (as RFC 9111 §4.2.2 suggests), at most a day.
    fn default() -> Heuristic {
        Heuristic {
            fraction: 0.1,
            max: 86_400,
        }
    }
}

/// `Expires` as found: a date, or a value that is not a valid date (which
/// means "already expired", RFC 9111 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    At(u64),
    Invalid,
}

/// What is recorded about a response when it is stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stored {
    pub status: u16,
    /// When the request that produced it was sent, and when the response arrived.
    pub request_time: u64,
    pub response_time: u64,
    pub date: Option<u64>,
    /// The `Age` field the upstream sent (0 without one, RFC 9111 §4.2.3).
    pub age: u64,
    pub expires: Option<Expires>,
    pub last_modified: Option<u64>,
    pub directives: Response,
}

/// Parses an HTTP date field; `None` when absent, `Some(None)` when invalid.
pub fn http_date(value: Option<&[u8]>) -> Option<Option<u64>> {
    let v = value?;
    let parsed = std::str::from_utf8(v)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s.trim()).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    Some(parsed)
}

impl Stored {
    /// Freshness lifetime for a shared cache: s-maxage, then max-age, then
    /// Expires, then (for heuristically cacheable statuses) the heuristic.
    pub fn lifetime(&self, heuristic: Heuristic) -> u64 {
        let d = &self.directives;
        if let Some(s) = d.s_maxage {
            return s;
        }
        if let Some(m) = d.max_age {
            return m;
        }
        match self.expires {
            Some(Expires::Invalid) => return 0,
            Some(Expires::At(at)) => {
                return at.saturating_sub(self.date.unwrap_or(self.response_time));
            }
            None => {}
        }
        match self.last_modified {
            Some(lm) if HEURISTIC_STATUSES.contains(&self.status) || d.public => {
                let since = self.date.unwrap_or(self.response_time).saturating_sub(lm);
                ((since as f64 * heuristic.fraction) as u64).min(heuristic.max)
            }
            _ => 0,
        }
    }

    /// Whether the lifetime came from the heuristic (levee then warns nobody: RFC 9111 dropped Warning).
    pub fn has_explicit_lifetime(&self) -> bool {
        let d = &self.directives;
        d.s_maxage.is_some() || d.max_age.is_some() || self.expires.is_some()
    }

    /// The age when it arrived (RFC 9111 §4.2.3 corrected_initial_age).
    pub fn initial_age(&self) -> u64 {
        let apparent = self
            .date
            .map_or(0, |date| self.response_time.saturating_sub(date));
        let delay = self.response_time.saturating_sub(self.request_time);
        let corrected = self.age.saturating_add(delay);
        apparent.max(corrected)
    }

    /// The age now: the value of the `Age` field levee sends.
    pub fn current_age(&self, now: u64) -> u64 {
        self.initial_age()
            .saturating_add(now.saturating_sub(self.response_time))
    }

    /// Seconds past its lifetime (0 while fresh).
    pub fn staleness(&self, now: u64, heuristic: Heuristic) -> u64 {
        self.current_age(now)
            .saturating_sub(self.lifetime(heuristic))
    }

    fn forbids_stale(&self) -> bool {
        self.directives.must_revalidate || self.directives.proxy_revalidate
    }
}

/// What to do with a stored response for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Serve it.
    Fresh,
    /// Serve it although stale (the client allows it with max-stale).
    StaleAllowed,
    /// Serve it and refresh it in the background (stale-while-revalidate).
    StaleWhileRevalidate,
    /// Ask the origin first (conditionally, if it has validators).
    Revalidate,
}

/// Decides how a stored response may answer a request (RFC 9111 §4).
pub fn decide(stored: &Stored, request: &Request, now: u64, heuristic: Heuristic) -> Use {
    if request.no_cache
        || stored.directives.no_cache
        || !stored.directives.no_cache_fields.is_empty()
    {
        return Use::Revalidate;
    }
    let age = stored.current_age(now);
    let lifetime = stored.lifetime(heuristic);
    let mut fresh = age < lifetime;
    if let Some(max_age) = request.max_age
        && age > max_age
    {
        fresh = false;
    }
    if let Some(min_fresh) = request.min_fresh
        && lifetime.saturating_sub(age) < min_fresh
    {
        fresh = false;
    }
    if fresh {
        return Use::Fresh;
    }
    if stored.forbids_stale() {
        return Use::Revalidate;
    }
    let staleness = age.saturating_sub(lifetime);
    if request.max_stale.is_some_and(|max| staleness <= max)
        && request.max_age.is_none_or(|m| age <= m)
    {
        return Use::StaleAllowed;
    }
    if stored
        .directives
        .stale_while_revalidate
        .is_some_and(|w| staleness <= w)
    {
        return Use::StaleWhileRevalidate;
    }
    Use::Revalidate
}

/// Whether a stale response may stand in when the origin fails: within
/// stale-if-error, or within `route_max` (the route's allowance for "every
/// server is down", 0 for none); never with must-revalidate.
pub fn usable_on_error(stored: &Stored, now: u64, heuristic: Heuristic, route_max: u64) -> bool {
    if stored.forbids_stale() {
        return false;
    }
    let staleness = stored.staleness(now, heuristic);
    stored
        .directives
        .stale_if_error
        .is_some_and(|w| staleness <= w)
        || staleness <= route_max
}

#[cfg(test)]
mod tests;
