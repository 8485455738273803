//! `POST /login`, `POST /logout` and `GET /session`: the login scheme of
//! the dashboard (`docs/api.md`, "Sessions").
//!
//! A login proves a credential once, with the token or a user's password,
//! and gets a session cookie and a CSRF token. Passwords are checked on
//! the blocking pool, a bounded number at a time; an unknown user costs a
//! hash check too, so the timing does not tell which users exist.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::access::Access;
use crate::audit::Who;
use crate::gate::{Admin, Verdict};
use crate::server::{Reply, Request};
use crate::session::{self, Found};

/// A login waits this long for a password-check slot before answering 503.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// What a login body carries.
enum Credential {
    Token(String),
    Password { user: String, password: String },
}

fn credential(body: &[u8]) -> Option<Credential> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    match (text("token"), text("user"), text("password")) {
        (Some(t), None, None) => Some(Credential::Token(t)),
        (None, Some(user), Some(password)) => Some(Credential::Password { user, password }),
        _ => None,
    }
}

/// `POST /login` with `{"token": T}` or `{"user": U, "password": P}`.
/// Returns who tried (for the audit line), the audit target and the reply;
/// the session is named after who logged in (`token` or `user:NAME`).
pub(crate) async fn login(admin: &Admin, access: &Access, req: &Request) -> Verdict {
    if req.method != "POST" {
        return Verdict::refused(Reply::error(405, "use POST"));
    }
    if !access.requires_login() {
        return Verdict::refused(Reply::error(
            404,
            "login is off: the admin listener has no token_file, token_env or password_file",
        ));
    }
    let Some(credential) = credential(&req.body) else {
        return Verdict::refused(Reply::error(
            400,
            "expected a JSON body {\"token\": \"…\"} or {\"user\": \"…\", \"password\": \"…\"}",
        ));
    };
    let (who, ok) = match credential {
        Credential::Token(given) => {
            let ok = access
                .token
                .as_ref()
                .is_some_and(|t| t.matches(given.as_bytes()));
            (Who::Token, ok)
        }
        Credential::Password { user, password } => {
            let ok = match check_password(admin, access, &user, password).await {
                Ok(ok) => ok,
                Err(reply) => return verdict(Who::User(user), reply),
            };
            (Who::User(user), ok)
        }
    };
    if !ok {
        return verdict(who, Reply::error(401, "wrong credentials"));
    }
    let created = admin.sessions().create(
        &who,
        Instant::now(),
        access.session_lifetime,
        access.max_sessions,
    );
    let Some(created) = created else {
        return verdict(who, Reply::error(500, "no random source for a session"));
    };
    // A browser on an https:// page reached levee through TLS (a TLS
    // listener in front): the cookie must then never travel in clear.
    let secure = req
        .origin
        .as_deref()
        .is_some_and(|o| o.to_ascii_lowercase().starts_with("https://"));
    let reply = Reply::json(
        200,
        &json!({
            "user": who.to_string(),
            "csrf_token": created.csrf.reveal(),
            "expires_in": access.session_lifetime.as_secs(),
        }),
    )
    .with_header(
        "Set-Cookie",
        session::set_cookie(&created.id, access.session_lifetime, secure),
    );
    verdict(who, reply)
}

/// A login's audit line names who tried, never the credential.
fn verdict(who: Who, reply: Reply) -> Verdict {
    Verdict {
        who,
        via: "login",
        target: String::new(),
        reply,
    }
}

/// Checks `user`'s password on the blocking pool. An unknown user is
/// checked against another user's hash and refused whatever the result.
async fn check_password(
    admin: &Admin,
    access: &Access,
    user: &str,
    password: String,
) -> Result<bool, Reply> {
    let known = access.users.get(user);
    let Some(hash) = known.or_else(|| access.users.values().next()).cloned() else {
        return Ok(false);
    };
    let slot = tokio::time::timeout(SLOT_WAIT, admin.logins.acquire()).await;
    let Ok(Ok(_slot)) = slot else {
        return Err(Reply::error(503, "too many logins at once; try again"));
    };
    let matched = tokio::task::spawn_blocking(move || {
        levee_mail::auth::user_map::verify(password.as_bytes(), &hash)
    })
    .await
    .unwrap_or(false);
    Ok(matched && known.is_some())
}

/// `POST /logout`: ends the request's session and clears its cookie.
pub(crate) fn logout(admin: &Admin, req: &Request, session: Option<&Found>) -> Reply {
    if session.is_none() {
        return Reply::error(400, "no session to end: log out with the session cookie");
    }
    if let Some(id) = req.cookie.as_deref().and_then(session::cookie_value) {
        admin.sessions().remove(id);
    }
    Reply::json(200, &json!({ "logged_out": true }))
        .with_header("Set-Cookie", session::clear_cookie())
}

/// `GET /session`: who the request is from; with a session, its CSRF token
/// (so a reloaded page can act again without logging in) and its time left.
pub(crate) fn session(who: &Who, session: Option<&Found>) -> Reply {
    match session {
        Some(found) => Reply::json(
            200,
            &json!({
                "user": found.who.to_string(),
                "csrf_token": found.csrf,
                "expires_in": found.expires_in.as_secs(),
            }),
        ),
        None => Reply::json(200, &json!({ "user": who.to_string() })),
    }
}
