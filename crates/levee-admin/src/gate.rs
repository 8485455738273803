//! The admin listener's state and the steps every request goes through:
//!
//! ```text
//! admit (Host 421, Origin 403, JSON content type 415)
//!   ─▶ GET the dashboard page or assets  (dash.rs: hold no data, no credentials)
//!   ─▶ POST /login                       (login.rs: no credentials needed yet)
//!   ─▶ /healthz, /readyz, /version        (probes.rs: no credentials needed)
//!   ─▶ authenticate: bearer token | session cookie (+ X-CSRF-Token to change state) | open
//!   ─▶ /logout, /session, /reload, /api/dashboard/… (dash.rs), or the API (api.rs)
//!   ─▶ audit line for every state-changing request, whatever the outcome
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use levee_http::Shared;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::access::{Access, changes_state};
use crate::audit::{self, Who};
use crate::control::Reloader;
use crate::server::{Reply, Request};
use crate::session::{self, Found, Sessions};

/// Password checks running at once: each is tens of milliseconds of CPU by
/// design, so a flood of logins costs a bounded share of the control
/// thread's blocking pool.
const LOGIN_SLOTS: usize = 2;

/// What the admin listener shares across its connections and reloads.
#[derive(Debug)]
pub struct Admin {
    pub(crate) shared: Arc<Shared>,
    access: Mutex<Arc<Access>>,
    /// Shared with the dashboard's event streams, which end with their session.
    pub(crate) sessions: Arc<Mutex<Sessions>>,
    reloader: Option<Reloader>,
    pub(crate) logins: Semaphore,
    pub(crate) dash: crate::dash::Dash,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic in another
    // connection's task (every update is one call), so go on with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Admin {
    /// `reloader` is how `POST /reload` reaches the control thread; `None`
    /// answers it with 503.
    pub fn new(shared: Arc<Shared>, access: Access, reloader: Option<Reloader>) -> Arc<Admin> {
        Arc::new(Admin {
            shared,
            access: Mutex::new(Arc::new(access)),
            sessions: Arc::default(),
            reloader,
            logins: Semaphore::new(LOGIN_SLOTS),
            dash: crate::dash::Dash::default(),
        })
    }

    /// New rules after a reload. Changed credentials end every session, so
    /// a rotated token or a removed user locks out what they opened.
    pub fn update(&self, access: Access) {
        let mut current = lock(&self.access);
        if current.credentials != access.credentials {
            lock(&self.sessions).clear();
        }
        *current = Arc::new(access);
    }

    /// The dashboard's state (its history, the running config).
    pub fn dash(&self) -> &crate::dash::Dash {
        &self.dash
    }

    pub(crate) fn access(&self) -> Arc<Access> {
        lock(&self.access).clone()
    }

    pub(crate) fn sessions(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.sessions)
    }

    /// Answers `req`, writing an audit line if it could change state.
    pub async fn respond(&self, req: &Request) -> Reply {
        let v = self.decide(req).await;
        if changes_state(&req.method) {
            let peer = req
                .peer
                .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
            audit::record(&audit::Line {
                who: &v.who,
                via: v.via,
                peer,
                method: &req.method,
                path: &req.path,
                target: &v.target,
                status: v.reply.status,
            });
        }
        v.reply
    }

    async fn decide(&self, req: &Request) -> Verdict {
        let access = self.access();
        let local = req
            .local
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let admitted = access.admit(
            local,
            &req.method,
            req.host.as_deref(),
            req.origin.as_deref(),
            req.content_type.as_deref(),
        );
        if let Err(refusal) = admitted {
            return Verdict::refused(Reply::error(refusal.status(), refusal.message()));
        }
        if let Some(page) = crate::dash::public(req) {
            // Read-only and data-free, so it is never audited: who asked
            // is not looked at.
            return Verdict::refused(page);
        }
        if req.path == "/login" {
            return crate::login::login(self, &access, req).await;
        }
        // Probes carry no credentials (probes.rs says why).
        if let Some(reply) = crate::probes::answer(&self.shared, &req.method, &req.path) {
            return Verdict {
                who: Who::Unknown,
                via: "probe",
                target: String::new(),
                reply,
            };
        }
        let auth = match self.authenticate(&access, req) {
            Ok(auth) => auth,
            Err(reply) => return Verdict::refused(reply),
        };
        let (who, via, session) = match &auth {
            Auth::Open => (Who::Open, "open", None),
            Auth::Token => (Who::Token, "bearer", None),
            Auth::Session(found) => (found.who.clone(), "session", Some(found)),
        };
        if let Some(found) = session
            && changes_state(&req.method)
            && !found.csrf_ok
        {
            let reply = Reply::error(
                403,
                "a state-changing request with a session cookie must carry the session's X-CSRF-Token",
            );
            return Verdict {
                who,
                via,
                target: String::new(),
                reply,
            };
        }
        let target = match req.path.as_str() {
            "/fleet/push" => crate::push::audit_target(&req.body),
            _ => audit::body_target(&req.body),
        };
        let reply = match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/logout") => crate::login::logout(self, req, session),
            ("GET" | "HEAD", "/session") => crate::login::session(&who, session),
            (_, "/logout") => Reply::error(405, "use POST"),
            (_, "/session") => Reply::error(405, "use GET"),
            ("POST", "/reload") => crate::control::reload(self.reloader.as_ref()).await,
            ("POST", "/fleet/push") => crate::push::handle(&req.body).await,
            (method, path) if crate::fleet_act::wanted(method, path, &req.body) => {
                crate::fleet_act::handle(path, &req.body).await
            }
            (_, "/reload") => Reply::error(405, "use POST"),
            // Waits for the CA, so not in the synchronous api::handle.
            ("POST", path) if certs_renew(path).is_some() => {
                crate::api::certs::renew(certs_renew(path).unwrap_or_default()).await
            }
            (_, path) if path.starts_with("/api/dashboard/") => {
                crate::dash::api(self, req, session)
            }
            _ => crate::api::handle(&self.shared, &req.method, &req.target, &req.body),
        };
        Verdict {
            who,
            via,
            target,
            reply,
        }
    }

    /// Who the request is from, or the 401 to answer.
    fn authenticate(&self, access: &Access, req: &Request) -> Result<Auth, Reply> {
        if !access.requires_login() {
            return Ok(Auth::Open);
        }
        if let Some(value) = &req.authorization {
            let token = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            return match (token, &access.token) {
                (Some(given), Some(token)) if token.matches(given.as_bytes()) => Ok(Auth::Token),
                _ => Err(unauthorized("wrong token")),
            };
        }
        let Some(id) = req.cookie.as_deref().and_then(session::cookie_value) else {
            return Err(unauthorized(
                "authentication required: send Authorization: Bearer TOKEN, or log in (POST /login)",
            ));
        };
        match self
            .sessions()
            .find(id, req.csrf.as_deref(), Instant::now())
        {
            Some(found) => Ok(Auth::Session(found)),
            None => Err(
                unauthorized("the session has expired or ended; log in again")
                    .with_header("Set-Cookie", session::clear_cookie()),
            ),
        }
    }
}

/// A request's answer and what its audit line says.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub who: Who,
    /// How the request proved who it is: `bearer`, `session`, `login`,
    /// `open`, `probe` (no credentials asked), or `-` when refused before that.
    pub via: &'static str,
    pub target: String,
    pub reply: Reply,
}

impl Verdict {
    pub(crate) fn refused(reply: Reply) -> Verdict {
        Verdict {
            who: Who::Unknown,
            via: "-",
            target: String::new(),
            reply,
        }
    }
}

/// How a request was authenticated.
#[derive(Debug)]
enum Auth {
    /// No credentials are configured.
    Open,
    Token,
    Session(Found),
}

fn unauthorized(message: &str) -> Reply {
    Reply::error(401, message).with_header(
        "WWW-Authenticate",
        "Bearer realm=\"levee admin\"".to_owned(),
    )
}

#[cfg(test)]
mod tests;

/// NAME in `/certs/NAME/renew`.
fn certs_renew(path: &str) -> Option<&str> {
    path.strip_prefix("/certs/")?
        .strip_suffix("/renew")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}
