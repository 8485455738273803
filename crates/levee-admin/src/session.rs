//! Login sessions of the admin listener: kept in memory, bounded in number,
//! each ending a fixed time after its login.
//!
//! A session is named by a random id that travels only in an `HttpOnly`,
//! `SameSite=Strict` cookie, and carries a second random value, the CSRF
//! token, that the page must echo in `X-CSRF-Token` on every
//! state-changing request: a cross-site page cannot read it, so it cannot
//! forge such a request even if a browser attached the cookie. Sessions are
//! found by the SHA-256 of the id, so a lookup's timing says nothing about
//! the ids held. Time is passed in, so tests need no clock.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::audit::Who;
use crate::secret::{Secret, random, sha256};

/// The session cookie's name.
pub const COOKIE: &str = "levee_admin";

#[derive(Debug)]
struct Session {
    who: Who,
    csrf: Secret,
    created: Instant,
    expires: Instant,
}

/// What a request's session cookie found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Who logged in: `token` or `user:NAME`.
    pub who: Who,
    /// Whether the request's `X-CSRF-Token` matches the session's.
    pub csrf_ok: bool,
    pub csrf: String,
    pub expires_in: Duration,
}

/// A new session: the cookie value and the CSRF token, both for the client.
#[derive(Debug)]
pub struct Created {
    pub id: Secret,
    pub csrf: Secret,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_digest: HashMap<[u8; 32], Session>,
}

impl Sessions {
    /// Starts a session for `who`; at `max` sessions the oldest ends first.
    /// `None` if the random source failed.
    pub fn create(
        &mut self,
        who: &Who,
        now: Instant,
        lifetime: Duration,
        max: usize,
    ) -> Option<Created> {
        self.by_digest.retain(|_, s| s.expires > now);
        while self.by_digest.len() >= max.max(1) {
            let oldest = self
                .by_digest
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)?;
            self.by_digest.remove(&oldest);
        }
        let id = random()?;
        let csrf = random()?;
        self.by_digest.insert(
            id.digest(),
            Session {
                who: who.clone(),
                csrf: csrf.clone(),
                created: now,
                expires: now + lifetime,
            },
        );
        Some(Created { id, csrf })
    }

    /// The live session named by cookie value `id`, with `csrf` (the
    /// request's `X-CSRF-Token`) checked against it in constant time.
    pub fn find(&mut self, id: &str, csrf: Option<&str>, now: Instant) -> Option<Found> {
        let key = sha256(id.as_bytes());
        let session = self.by_digest.get(&key)?;
        if session.expires <= now {
            self.by_digest.remove(&key);
            return None;
        }
        Some(Found {
            who: session.who.clone(),
            csrf_ok: csrf.is_some_and(|c| session.csrf.matches(c.as_bytes())),
            csrf: session.csrf.reveal().to_owned(),
            expires_in: session.expires - now,
        })
    }

    /// Ends the session named by `id`; whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        self.by_digest.remove(&sha256(id.as_bytes())).is_some()
    }

    pub fn clear(&mut self) {
        self.by_digest.clear();
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then_some(value.trim())
    })
}

/// `Set-Cookie` for a new session. `secure` when the login came through
/// TLS (an `https://` origin), so the browser never sends it in clear.
pub fn set_cookie(id: &Secret, lifetime: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        id.reveal(),
        lifetime.as_secs().max(1),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that makes the browser drop the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_session_is_found_until_it_expires() {
        let now = Instant::now();
        let mut s = Sessions::default();
        let ops = Who::User("ops".into());
        let c = s.create(&ops, now, HOUR, 4).expect("created");
        let found = s
            .find(c.id.reveal(), Some(c.csrf.reveal()), now)
            .expect("found");
        assert_eq!(found.who, ops);
        assert!(found.csrf_ok);
        assert_eq!(found.expires_in, HOUR);
        let wrong = s.find(c.id.reveal(), Some("nope"), now).expect("found");
        assert!(!wrong.csrf_ok);
        assert!(!s.find(c.id.reveal(), None, now).expect("found").csrf_ok);
        assert_eq!(s.find("not-an-id", None, now), None);
        assert!(s.find(c.id.reveal(), None, now + HOUR).is_none());
        assert!(s.is_empty(), "an expired session is dropped when seen");
    }

    #[test]
    fn the_oldest_session_ends_at_the_bound() {
        let now = Instant::now();
        let mut s = Sessions::default();
        let first = s.create(&Who::Token, now, HOUR, 2).expect("created");
        let second = s
            .create(&Who::Token, now + Duration::from_secs(1), HOUR, 2)
            .expect("created");
        let third = s
            .create(&Who::Token, now + Duration::from_secs(2), HOUR, 2)
            .expect("created");
        assert_eq!(s.len(), 2);
        let at = now + Duration::from_secs(3);
        assert!(s.find(first.id.reveal(), None, at).is_none());
        assert!(s.find(second.id.reveal(), None, at).is_some());
        assert!(s.find(third.id.reveal(), None, at).is_some());
        assert!(s.remove(third.id.reveal()));
        assert!(!s.remove(third.id.reveal()));
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie_value("a=1; levee_admin=xyz; b=2"), Some("xyz"));
        assert_eq!(cookie_value("levee_admin_x=1"), None);
        let id = Secret::new("abc".into());
        assert_eq!(
            set_cookie(&id, HOUR, false),
            "levee_admin=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie(&id, HOUR, true).ends_with("; Secure"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
