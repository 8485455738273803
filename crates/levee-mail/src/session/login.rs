//! A login attempt (steps 2 and 3 of a session's life), the same for every
//! protocol, as named steps:
//!
//! ```text
//! admit (the guard: a reservation, or blocked / busy)
//!   ─▶ decide (auth_http or the user map)
//!   ─▶ a place in max_sessions_per_user
//!   ─▶ the backend's login (as the master user, if configured)
//! ```
//!
//! A refusal answers after the address's delay, grown by each failure (or
//! the auth service's `Auth-Wait`), but never past the session's pre-auth
//! deadline: an auth service that asks for a wait of years cannot hold a
//! session (and its client) open.

use std::time::Duration;

use tokio::time::Instant;

use super::{Ctx, PreAuth};
use crate::auth::{Attempt, Decision, Route};
use crate::backend::{self, Backend, BackendError, Greet};
use crate::guard::{self, Refusal, Ticket};
use crate::metrics::{self, Login};
use crate::sasl::Credentials;

/// Why a login attempt did not get the session to its backend, for the
/// protocol to answer.
pub(crate) enum Denied {
    /// The user has `max_sessions_per_user` sessions already.
    TooMany,
    /// Bad credentials (after the delay): the auth service's text, if any.
    Refused {
        message: Option<String>,
        smtp_code: Option<String>,
    },
    /// The auth service or the backend is unavailable.
    Unavailable,
}

/// The text a refusal shows the client: the auth service's or `default`,
/// limited to printable ASCII so it cannot break the reply line.
pub(crate) fn refusal_text(message: &Option<String>, default: &str) -> String {
    match message {
        Some(m)
            if !m.is_empty() && m.len() <= 200 && m.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
        {
            m.clone()
        }
        _ => default.to_owned(),
    }
}

type GuardTicket<'g> = Ticket<'g, guard::Shared>;

impl Ctx {
    /// Decides `credentials` and, if accepted, logs in to the backend: the
    /// pre-auth stage ends there, the session relaying to it. A refusal is
    /// answered after its delay, cut short at `deadline` (the pre-auth one).
    pub(crate) async fn login(
        &mut self,
        credentials: &Credentials,
        greet: Greet<'_>,
        deadline: Instant,
    ) -> Result<PreAuth, Denied> {
        self.attempts += 1;
        let protocol = self.state.config.protocol;
        let base = self.state.config.auth_fail_delay;
        // Reserved before the auth service is asked, so concurrent attempts
        // are counted exactly (guard.rs).
        let ticket = match self.admit(credentials, deadline).await {
            Ok(ticket) => ticket,
            Err(denied) => return Err(denied),
        };
        let grown = guard::delay(base, ticket.address_failures + 1);
        let mut route = match self.decide(credentials, &greet).await {
            Decision::Accept(route) => route,
            Decision::Refuse {
                message,
                wait,
                smtp_code,
            } => {
                metrics::login(protocol, Login::Refused);
                let wait = wait.max(grown);
                return Err(refuse(ticket, until(wait, deadline), message, smtp_code).await);
            }
            Decision::Unavailable(why) => {
                tracing::warn!(peer = %self.peer, reason = %why, "mail auth unavailable");
                metrics::login(protocol, Login::Unavailable);
                return Err(Denied::Unavailable);
            }
        };
        let Some(slot) = self
            .front
            .guard
            .open_session(&credentials.user, self.state.config.max_sessions_per_user)
        else {
            ticket.settle(guard::Outcome::Succeeded);
            metrics::login(protocol, Login::TooMany);
            return Err(Denied::TooMany);
        };
        self.as_master(&mut route);
        match self.backend_login(&route, greet).await {
            Ok(b) => {
                ticket.settle(guard::Outcome::Succeeded);
                metrics::login(protocol, Login::Ok);
                if let Some(offered) = &b.smtp_extensions {
                    self.front.learn_smtp(offered);
                }
                Ok(PreAuth::Proxy {
                    backend: b,
                    user: String::from_utf8_lossy(&credentials.user).into_owned(),
                    slot,
                })
            }
            Err(BackendError::Refused(text)) => {
                tracing::info!(peer = %self.peer, backend = %route.backend, "backend refused the login");
                metrics::login(protocol, Login::Refused);
                let at = until(base.max(grown), deadline);
                Err(refuse(ticket, at, Some(text), None).await)
            }
            Err(e) => {
                self.backend_unavailable(&route, &e);
                Err(Denied::Unavailable)
            }
        }
    }

    /// The guard's reservation for this attempt, or what to answer instead:
    /// a refusal (after the address's delay) for a pair past its limit, an
    /// "unavailable" for a user whose slow lane is full.
    async fn admit(
        &self,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<GuardTicket<'_>, Denied> {
        let config = &self.state.config;
        let rules = guard::Rules {
            pair_limit: config.max_auth_failures,
            user_ceiling: config.max_user_auth_failures,
            window: config.auth_failure_window,
        };
        let admitted = self
            .front
            .guard
            .admit(self.peer.ip(), &credentials.user, rules)
            .await;
        match admitted {
            Ok(ticket) => {
                if !ticket.waited.is_zero() {
                    tracing::info!(peer = %self.peer, waited_ms = ticket.waited.as_millis() as u64, "mail login slowed: too many failures for this user");
                }
                Ok(ticket)
            }
            Err(Refusal::Blocked { address_failures }) => {
                tracing::info!(peer = %self.peer, "mail login refused: too many failures for this user from this address");
                metrics::login(config.protocol, Login::Blocked);
                let delay = guard::delay(config.auth_fail_delay, address_failures);
                tokio::time::sleep_until(until(delay, deadline)).await;
                Err(Denied::Refused {
                    message: None,
                    smtp_code: None,
                })
            }
            Err(Refusal::Busy) => {
                tracing::info!(peer = %self.peer, "mail login deferred: too many failures for this user");
                metrics::login(config.protocol, Login::Blocked);
                Err(Denied::Unavailable)
            }
        }
    }

    /// What `auth_http` or the user map says of `credentials`.
    async fn decide(&self, credentials: &Credentials, greet: &Greet<'_>) -> Decision {
        let smtp_helo = match greet {
            Greet::Smtp { helo } => Some(*helo),
            _ => None,
        };
        let attempt = Attempt {
            protocol: self.state.config.protocol,
            credentials,
            number: self.attempts,
            peer: self.peer,
            smtp_helo,
            ssl: self.tls.info.as_deref(),
        };
        crate::auth::decide(&self.front, &self.state, &attempt).await
    }

    /// With a master user configured, the backend is logged in to as the
    /// user, the separator and the master's name, with the master's password.
    fn as_master(&self, route: &mut Route) {
        if let Some(master) = &self.state.config.master {
            route.user.extend_from_slice(master.separator.as_bytes());
            route.user.extend_from_slice(master.user.as_bytes());
            route.pass = master.password.as_bytes().to_vec();
        }
    }

    /// Logs in to `route`'s backend, telling it the client's address if
    /// the listener says so (XCLIENT/ID, or a PROXY header).
    async fn backend_login(
        &self,
        route: &Route,
        greet: Greet<'_>,
    ) -> Result<Backend, BackendError> {
        let config = &self.state.config;
        let timeouts = backend::Timeouts {
            connect: config.backend_connect_timeout,
            login: config.backend_login_timeout,
        };
        let forward = config
            .forward_client_address
            .then_some((self.peer, self.local));
        let proxy_header = config
            .backend_proxy_protocol
            .then(|| crate::proxy_protocol::v2(self.peer, self.local));
        backend::login(route, greet, forward, proxy_header, timeouts).await
    }

    /// Logs and counts a backend that failed other than by refusing.
    fn backend_unavailable(&self, route: &Route, e: &BackendError) {
        let protocol = self.state.config.protocol;
        tracing::warn!(peer = %self.peer, backend = %route.backend, error = %e, "mail backend unavailable");
        let kind = match e {
            BackendError::Connect(_) => metrics::BackendError::Connect,
            BackendError::ConnectTimeout | BackendError::LoginTimeout => {
                metrics::BackendError::Timeout
            }
            _ => metrics::BackendError::Protocol,
        };
        metrics::backend_error(protocol, kind);
        metrics::login(protocol, Login::Unavailable);
    }
}

/// When a refusal delayed by `wait` is answered: then, or at `deadline` if sooner.
fn until(wait: Duration, deadline: Instant) -> Instant {
    Instant::now()
        .checked_add(wait)
        .map_or(deadline, |at| at.min(deadline))
}

/// A refused login: settled as a failure, answered at `at`.
async fn refuse(
    ticket: GuardTicket<'_>,
    at: Instant,
    message: Option<String>,
    smtp_code: Option<String>,
) -> Denied {
    ticket.settle(guard::Outcome::Failed);
    tokio::time::sleep_until(at).await;
    Denied::Refused { message, smtp_code }
}
