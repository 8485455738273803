//! Deciding a login: the listener's `auth_http` service or its user map.
//! The answer is a [`Decision`]; the session turns it into its protocol's
//! reply (see `session::reply`).

pub mod http;
pub mod user_map;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use levee_config::model::{MailAuth, MailProtocol};

use crate::front::{FrontState, Frontend};
use crate::sasl::Credentials;

/// Where to log the user in, and as whom.
#[derive(Clone)]
pub struct Route {
    /// `host:port`.
    pub backend: String,
    pub user: Vec<u8>,
    pub pass: Vec<u8>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("backend", &self.backend)
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum Decision {
    Accept(Route),
    /// Bad credentials: answer after `wait`, with `message` where the protocol allows.
    Refuse {
        message: Option<String>,
        wait: Duration,
        /// SMTP reply code from `Auth-Error-Code`.
        smtp_code: Option<String>,
    },
    /// The auth service failed; the client may try again later.
    Unavailable(String),
}

/// What a login attempt tells the deciding side.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub protocol: MailProtocol,
    pub credentials: &'a Credentials,
    /// 1 for the first login on the session.
    pub number: u32,
    pub peer: SocketAddr,
    pub smtp_helo: Option<&'a [u8]>,
    /// Set on a TLS session (`Auth-SSL*` fields).
    pub ssl: Option<&'a crate::auth_http::SslInfo>,
}

pub async fn decide(front: &Frontend, state: &FrontState, attempt: &Attempt<'_>) -> Decision {
    let c = attempt.credentials;
    let config = &state.config;
    let now = Instant::now();
    let negative_ttl = match &config.auth {
        MailAuth::Http(service) => service.negative_ttl,
        MailAuth::UserMap(_) => Duration::ZERO,
    };
    if front.recently_refused(attempt, now, negative_ttl).await {
        return Decision::Refuse {
            message: None,
            wait: config.auth_fail_delay,
            smtp_code: None,
        };
    }
    let decision = match (&config.auth, &state.users) {
        (MailAuth::Http(service), _) => http::ask(service, attempt, config.auth_fail_delay).await,
        (MailAuth::UserMap(_), Some(users)) => users.decide(c, config.auth_fail_delay).await,
        (MailAuth::UserMap(_), None) => Decision::Unavailable("user map not loaded".to_owned()),
    };
    if matches!(decision, Decision::Refuse { .. }) && !negative_ttl.is_zero() {
        front.remember_refusal(attempt, now, negative_ttl);
    }
    decision
}
