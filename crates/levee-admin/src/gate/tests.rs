//! The whole gate over a real site, without sockets: refusals, the token,
//! login sessions with their CSRF token, and what the answers carry.

use std::path::Path;
use std::sync::Arc;

use levee_config::{FileRef, TokenSource};
use levee_http::{Shared, Site};
use serde_json::Value;

use super::Admin;
use crate::access::Access;
use crate::server::{Reply, Request};

const TOKEN: &str = "t0ken-t0ken-t0ken-t0ken";
const DRAIN: &str = "/upstreams/backend/servers/127.0.0.1:9001/drain";

fn shared() -> Arc<Shared> {
    let config = levee_config::builtin_proxy(
        "127.0.0.1:8080".parse().expect("literal"),
        vec!["127.0.0.1:9001".into()],
    );
    Shared::new(Site::build(&config).expect("site"))
}

/// The rules of an admin listener on 127.0.0.1:9090 accepting `origins`;
/// with `token` and a user `ops` (password `pw`) when given a token.
fn access(token: Option<&str>, origins: &[&str]) -> Access {
    let mut config = levee_config::Admin::on("127.0.0.1:9090".parse().expect("literal"));
    config.origins = origins.iter().map(|o| o.to_string()).collect();
    let dir = std::env::temp_dir().join(format!(
        "levee-admin-gate-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    if let Some(token) = token {
        std::fs::create_dir_all(&dir).expect("dir");
        let token_file = dir.join("token");
        std::fs::write(&token_file, format!("{token}\n")).expect("write");
        let passwd = dir.join("passwd");
        std::fs::write(&passwd, format!("ops:{}\n", ops_hash())).expect("write");
        let at = |path| FileRef {
            path,
            key: String::new(),
            line: 0,
            column: 0,
        };
        config.token = Some(TokenSource::File(at(token_file)));
        config.password_file = Some(at(passwd));
    }
    let access = Access::load(&config, Path::new("t.toml")).expect("access");
    let _ = std::fs::remove_dir_all(&dir);
    access
}

/// One hash for every test, so rules loaded twice are the same credentials.
fn ops_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("pw", 4).expect("hash"))
}

fn admin(locked: bool) -> Arc<Admin> {
    Admin::new(shared(), access(locked.then_some(TOKEN), &[]), None)
}

fn request(method: &str, path: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        target: path.into(),
        host: Some("127.0.0.1:9090".into()),
        content_type: (method != "GET").then(|| "application/json".into()),
        local: Some("127.0.0.1:9090".parse().expect("literal")),
        peer: Some("127.0.0.1:50000".parse().expect("literal")),
        ..Request::default()
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("JSON body")
}

fn state(admin: &Admin) -> levee_upstream::AdminState {
    let site = admin.shared.site.load_full();
    site.upstreams["backend"].members().list[0].state.admin()
}

#[tokio::test]
async fn the_issue_csrf_request_is_refused_and_changes_nothing() {
    let admin = admin(false);
    let mut req = request("POST", DRAIN);
    req.host = Some("evil.example".into());
    req.origin = Some("http://evil.example".into());
    req.content_type = Some("text/plain".into());
    assert_eq!(admin.respond(&req).await.status, 421);
    req.host = Some("127.0.0.1:9090".into());
    assert_eq!(admin.respond(&req).await.status, 403);
    req.origin = None;
    assert_eq!(admin.respond(&req).await.status, 415);
    assert_eq!(state(&admin), levee_upstream::AdminState::Enabled);
    req.content_type = Some("application/json".into());
    assert_eq!(admin.respond(&req).await.status, 200);
    assert_eq!(state(&admin), levee_upstream::AdminState::Draining);
}

#[tokio::test]
async fn a_token_listener_wants_the_token_everywhere() {
    let admin = admin(true);
    for (method, path) in [("GET", "/metrics"), ("GET", "/upstreams"), ("POST", DRAIN)] {
        let req = request(method, path);
        let r = admin.respond(&req).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            header(&r, "WWW-Authenticate"),
            Some("Bearer realm=\"levee admin\"")
        );
        let mut wrong = request(method, path);
        wrong.authorization = Some(format!("Bearer {TOKEN}x"));
        assert_eq!(admin.respond(&wrong).await.status, 401, "{path}");
        let mut basic = request(method, path);
        basic.authorization = Some(format!("Basic {TOKEN}"));
        assert_eq!(admin.respond(&basic).await.status, 401, "{path}");
        let mut right = request(method, path);
        right.authorization = Some(format!("bearer {TOKEN}"));
        let r = admin.respond(&right).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!String::from_utf8_lossy(&r.body).contains(TOKEN));
    }
}

/// Logs in with `body`; returns the cookie value and the CSRF token.
async fn login(admin: &Admin, body: &str, origin: Option<&str>) -> (String, String) {
    let mut req = request("POST", "/login");
    req.body = body.as_bytes().to_vec();
    req.origin = origin.map(str::to_owned);
    let r = admin.respond(&req).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cookie = header(&r, "Set-Cookie").expect("a session cookie");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(cookie.contains("; Max-Age=28800"), "{cookie}");
    let id = cookie
        .strip_prefix("levee_admin=")
        .and_then(|c| c.split(';').next())
        .expect("cookie value")
        .to_owned();
    let csrf = json(&r)["csrf_token"].as_str().expect("csrf").to_owned();
    (id, csrf)
}

#[tokio::test]
async fn a_session_acts_only_with_its_csrf_token() {
    let admin = admin(true);
    let (id, csrf) = login(&admin, r#"{"user": "ops", "password": "pw"}"#, None).await;
    let with = |method: &str, path: &str, csrf: Option<&str>| {
        let mut req = request(method, path);
        req.cookie = Some(format!("other=1; levee_admin={id}"));
        req.csrf = csrf.map(str::to_owned);
        req
    };
    // Reading needs no CSRF token; acting does.
    assert_eq!(
        admin.respond(&with("GET", "/upstreams", None)).await.status,
        200
    );
    let r = admin.respond(&with("GET", "/session", None)).await;
    assert_eq!(json(&r)["user"], "user:ops");
    assert_eq!(json(&r)["csrf_token"], csrf.as_str());
    assert_eq!(admin.respond(&with("POST", DRAIN, None)).await.status, 403);
    assert_eq!(
        admin.respond(&with("POST", DRAIN, Some("0"))).await.status,
        403
    );
    assert_eq!(state(&admin), levee_upstream::AdminState::Enabled);
    assert_eq!(
        admin
            .respond(&with("POST", DRAIN, Some(&csrf)))
            .await
            .status,
        200
    );
    assert_eq!(state(&admin), levee_upstream::AdminState::Draining);
    // After logout the cookie is worthless.
    let r = admin.respond(&with("POST", "/logout", Some(&csrf))).await;
    assert_eq!(r.status, 200);
    assert!(header(&r, "Set-Cookie").is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(
        admin.respond(&with("GET", "/upstreams", None)).await.status,
        401
    );
}

#[tokio::test]
async fn logins_fail_alike() {
    let admin = admin(true);
    for body in [
        r#"{"user": "ops", "password": "wrong"}"#,
        r#"{"user": "nobody", "password": "pw"}"#,
        r#"{"token": "t0ken-t0ken-t0ken-t0kex"}"#,
    ] {
        let mut req = request("POST", "/login");
        req.body = body.as_bytes().to_vec();
        let r = admin.respond(&req).await;
        assert_eq!(r.status, 401, "{body}");
        assert_eq!(json(&r)["error"], "wrong credentials");
        assert!(header(&r, "Set-Cookie").is_none());
    }
    let mut bad = request("POST", "/login");
    bad.body = br#"{"password": "pw"}"#.to_vec();
    assert_eq!(admin.respond(&bad).await.status, 400);
    let mut text = request("POST", "/login");
    text.content_type = Some("text/plain".into());
    text.body = format!(r#"{{"token": "{TOKEN}"}}"#).into_bytes();
    assert_eq!(admin.respond(&text).await.status, 415);
    let open = admin_with(access(None, &[]));
    let mut req = request("POST", "/login");
    req.body = format!(r#"{{"token": "{TOKEN}"}}"#).into_bytes();
    assert_eq!(
        open.respond(&req).await.status,
        404,
        "no credentials, no login"
    );
}

fn admin_with(access: Access) -> Arc<Admin> {
    Admin::new(shared(), access, None)
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_page_came_through_tls() {
    let admin = admin_with(access(Some(TOKEN), &["https://admin.example.com"]));
    let mut req = request("POST", "/login");
    req.body = format!(r#"{{"token": "{TOKEN}"}}"#).into_bytes();
    req.origin = Some("https://admin.example.com".into());
    let r = admin.respond(&req).await;
    assert_eq!(r.status, 200);
    assert!(header(&r, "Set-Cookie").is_some_and(|c| c.ends_with("; Secure")));
    let (id, _) = login(
        &admin,
        &format!(r#"{{"token": "{TOKEN}"}}"#),
        Some("http://127.0.0.1:9090"),
    )
    .await;
    assert!(!id.is_empty());
}

#[tokio::test]
async fn changed_credentials_end_sessions() {
    let admin = admin(true);
    let (id, _) = login(&admin, &format!(r#"{{"token": "{TOKEN}"}}"#), None).await;
    let mut req = request("GET", "/upstreams");
    req.cookie = Some(format!("levee_admin={id}"));
    assert_eq!(admin.respond(&req).await.status, 200);
    admin.update(access(Some(TOKEN), &["https://a.example"]));
    assert_eq!(admin.respond(&req).await.status, 200, "same credentials");
    admin.update(access(Some("another-token-another-token"), &[]));
    let r = admin.respond(&req).await;
    assert_eq!(r.status, 401, "a rotated token ends the session");
    assert!(header(&r, "Set-Cookie").is_some_and(|c| c.contains("Max-Age=0")));
}
