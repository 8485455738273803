//! Freshness and age (RFC 9111 §4.2), and what a stored response may be
//! used for (§4, §4.2.4, RFC 5861 for the stale-* extensions).
//!
//! All times are seconds since the Unix epoch, given by the caller.

use crate::directives::{Request, Response};
use crate::targeted::Control;
use crate::{Field, first};

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

/// The `Age` field's value: its first member (a list-valued `Age` keeps
/// the first, RFC 9111 §5.1); 0 when absent or not a non-negative integer,
/// which the cache ignores. Past 2^31 it is capped there (§1.2.2).
pub fn age_field(fields: &[Field<'_>]) -> u64 {
    let Some(value) = first(fields, "age") else {
        return 0;
    };
    let member = value.split(|&b| b == b',').next().unwrap_or_default();
    let member = member.trim_ascii();
    if member.is_empty() || !member.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    std::str::from_utf8(member)
        .ok()
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(u64::MAX)
        .min(1 << 31)
}

/// `secs` since the epoch as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn fmt_http_date(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

impl Stored {
    /// What is recorded about a response with `fields` when it is stored:
    /// `control` says which directives govern it, and when a targeted
    /// field does, `Expires` is ignored (RFC 9213 §2.2).
    pub fn new(
        status: u16,
        request_time: u64,
        response_time: u64,
        fields: &[Field<'_>],
        control: Control,
    ) -> Stored {
        let expires = if control.targeted {
            None
        } else {
            http_date(first(fields, "expires")).map(|d| d.map_or(Expires::Invalid, Expires::At))
        };
        Stored {
            status,
            request_time,
            response_time,
            date: http_date(first(fields, "date")).flatten(),
            age: age_field(fields),
            expires,
            last_modified: http_date(first(fields, "last-modified")).flatten(),
            directives: control.directives,
        }
    }

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

    /// Directives that forbid serving it stale (RFC 9111 §4.2.4): `no-cache`,
    /// `must-revalidate`, and for a shared cache `proxy-revalidate` and
    /// `s-maxage` (which carries proxy-revalidate's meaning, §5.2.2.10).
    pub fn forbids_stale(&self) -> bool {
        self.forbids_granted_stale() || self.directives.s_maxage.is_some()
    }

    /// Directives that forbid even the stale use the response grants
    /// itself (`stale-while-revalidate`, `stale-if-error`, RFC 5861):
    /// `no-cache`, `must-revalidate`, `proxy-revalidate`. `s-maxage` is
    /// not among them: it forbids stale use only by implication (it
    /// carries proxy-revalidate's meaning), and an origin that sends
    /// `s-maxage=1, stale-while-revalidate=59` in one field (the common
    /// pattern of frameworks such as Next.js) grants exactly that stale
    /// use, as CDNs read it. A client's `max-stale` and the route's
    /// `stale_if_down` are not the origin's grant: `s-maxage` forbids them.
    pub fn forbids_granted_stale(&self) -> bool {
        let d = &self.directives;
        d.no_cache || d.must_revalidate || d.proxy_revalidate
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
///
/// `no-cache="field"` does not force revalidation: the fields it names are
/// never stored (`policy::stored_head`), so the stored response already
/// excludes them, as RFC 9111 §5.2.2.4 allows.
pub fn decide(stored: &Stored, request: &Request, now: u64, heuristic: Heuristic) -> Use {
    if request.no_cache || stored.directives.no_cache {
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
    if stored.forbids_granted_stale() {
        return Use::Revalidate;
    }
    let staleness = age.saturating_sub(lifetime);
    if !stored.forbids_stale()
        && request.max_stale.is_some_and(|max| staleness <= max)
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

/// Why a stale response may stand in for a failed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// Within the response's `stale-if-error` (RFC 5861).
    StaleIfError,
    /// Within the route's allowance while the upstream cannot be reached
    /// (`[cache] stale_if_down`: RFC 9111 §4.2.4's disconnected cache,
    /// by configuration).
    Down,
}

impl StaleReason {
    /// The RFC 9211 `Cache-Status` detail naming it.
    pub fn detail(self) -> &'static str {
        match self {
            StaleReason::StaleIfError => "stale-if-error",
            StaleReason::Down => "stale-if-down",
        }
    }
}

/// Whether a stale response may stand in when the origin fails, and why:
/// within stale-if-error, or within `route_max` (the route's allowance for
/// an unreachable upstream, 0 for none); never when its directives forbid
/// serving it stale (`no-cache`, `must-revalidate`, `proxy-revalidate`;
/// `s-maxage` forbids the route's allowance, not the response's own
/// stale-if-error: [`Stored::forbids_granted_stale`]).
pub fn stale_on_error(
    stored: &Stored,
    now: u64,
    heuristic: Heuristic,
    route_max: u64,
) -> Option<StaleReason> {
    if stored.forbids_granted_stale() {
        return None;
    }
    let staleness = stored.staleness(now, heuristic);
    if stored
        .directives
        .stale_if_error
        .is_some_and(|w| staleness <= w)
    {
        Some(StaleReason::StaleIfError)
    } else if !stored.forbids_stale() && staleness <= route_max {
        Some(StaleReason::Down)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
