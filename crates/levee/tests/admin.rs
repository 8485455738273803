//! The admin listener accepts only its operator (issue 12, section 4):
//! `Host` and `Origin` checks against CSRF and DNS rebinding, a JSON
//! content type for every state change, the bearer token, login sessions
//! with their CSRF token, and the audit log; driven with curl and raw TCP.

mod support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use support::*;

const TOKEN: &str = "s3cret-admin-token-0123456789";
/// bcrypt (cost 5) of `s3cret`.
const HASH: &str = "$2b$05$CX/BPjn6rvu5DAfnBj.DCOgfYWvFlyZfZJj8lXo82CVo.7ripcKne";

/// A levee whose route `/` answers `body`, with upstream `app` on
/// 127.0.0.1:3001 (never asked: only its admin state is looked at) and an
/// admin listener on `admin` with the `[admin]` keys in `keys`.
fn config(setup: &LeveeSetup, admin: u16, keys: &str, body: &str) -> String {
    format!(
        r#"[log]
access = "off"

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
path = "/app/"
proxy = "app"

[[route]]
respond = "{body}"

[upstream.app]
servers = ["127.0.0.1:3001"]

[admin]
address = "127.0.0.1:{admin}"
{keys}
"#,
        port = setup.port,
    )
}

fn start(keys: &str) -> (Levee, u16) {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, keys, "hello");
    let mut levee = setup.start(&cfg);
    levee.wait_port(admin);
    (levee, admin)
}

/// A levee whose admin listener wants `TOKEN` (from a file) or user
/// `ops`'s password `s3cret`; `extra` adds `[admin]` keys.
fn start_locked(extra: &str) -> (Levee, u16) {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let token = setup.dir.join("admin.token");
    fs::write(&token, format!("{TOKEN}\n")).expect("write token");
    let passwd = setup.dir.join("admin.passwd");
    fs::write(&passwd, format!("# operators\nops:{HASH}\n")).expect("write passwd");
    let keys = format!(
        "token_file = \"{}\"\npassword_file = \"{}\"\n{extra}",
        token.display(),
        passwd.display()
    );
    let cfg = config(&setup, admin, &keys, "hello");
    let mut levee = setup.start(&cfg);
    levee.wait_port(admin);
    (levee, admin)
}

fn state(admin: u16) -> String {
    server_json(admin, "app", "127.0.0.1:3001")["state"]
        .as_str()
        .expect("state")
        .to_owned()
}

/// `curl -s -o /dev/null -w %{http_code}` with `args`.
fn code(args: &[&str]) -> String {
    let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&curl(&all).stdout).into_owned()
}

/// A raw request to the admin listener with `fields` (each ending in CRLF).
fn send(admin: u16, method: &str, path: &str, fields: &str, body: &str) -> (u16, String, String) {
    admin_raw(
        admin,
        &format!(
            "{method} {path} HTTP/1.1\r\n{fields}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn the_issue_csrf_request_is_refused_and_drains_nothing() {
    let (_levee, admin) = start("");
    let url = format!("http://127.0.0.1:{admin}/upstreams/app/servers/127.0.0.1:3001/drain");
    // Exactly the reproducer of issue 12: 200 before.
    let issue = code(&[
        "-X",
        "POST",
        "-H",
        "Host: evil.example",
        "-H",
        "Origin: http://evil.example",
        "-H",
        "Content-Type: text/plain",
        &url,
    ]);
    assert_eq!(issue, "421");
    // The same from a page on another site, with the right Host (a
    // browser's fetch to 127.0.0.1): the Origin gives it away.
    let cross_site = code(&[
        "-X",
        "POST",
        "-H",
        "Origin: http://evil.example",
        "-H",
        "Content-Type: application/json",
        &url,
    ]);
    assert_eq!(cross_site, "403");
    assert_eq!(state(admin), "up", "a refused request drained the server");
    // The operator's own request goes through.
    let own = code(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        &format!("Origin: http://127.0.0.1:{admin}"),
        &url,
    ]);
    assert_eq!(own, "200");
    assert_eq!(state(admin), "draining");
}

#[test]
fn a_dns_rebinding_host_is_refused_on_every_endpoint() {
    let (_levee, admin) = start("hosts = [\"levee-admin.internal\"]");
    for path in ["/upstreams", "/metrics", "/cache"] {
        let url = format!("http://127.0.0.1:{admin}{path}");
        // The attacker's name, made to resolve to 127.0.0.1.
        let rebound = format!("Host: evil.example:{admin}");
        assert_eq!(code(&["-H", &rebound, &url]), "421", "{path}");
        let (status, head, body) = send(admin, "GET", path, &format!("{rebound}\r\n"), "");
        assert_eq!(status, 421, "{head}");
        assert!(
            head.starts_with("HTTP/1.1 421 Misdirected Request"),
            "{head}"
        );
        assert!(body.contains("Host is not this admin listener"), "{body}");
    }
    let url = format!("http://127.0.0.1:{admin}/upstreams");
    assert_eq!(code(&[&url]), "200");
    assert_eq!(
        code(&["-H", &format!("Host: localhost:{admin}"), &url]),
        "200"
    );
    assert_eq!(code(&["-H", "Host: levee-admin.internal", &url]), "200");
    // Absolute form names the host too.
    let (status, _, _) = send(
        admin,
        "GET",
        &format!("http://evil.example:{admin}/upstreams"),
        &format!("Host: 127.0.0.1:{admin}\r\n"),
        "",
    );
    assert_eq!(status, 421);
}

#[test]
fn a_state_change_without_a_json_content_type_is_refused() {
    let (_levee, admin) = start("");
    let host = format!("Host: 127.0.0.1:{admin}\r\n");
    let drain = "/upstreams/app/servers/127.0.0.1:3001/drain";
    for content_type in [
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
        "",
    ] {
        let fields = format!("{host}{content_type}");
        let (status, head, _) = send(admin, "POST", drain, &fields, "{}");
        assert_eq!(status, 415, "{content_type:?}: {head}");
        let (status, _, _) = send(admin, "POST", "/mail/users/someone/close", &fields, "");
        assert_eq!(status, 415, "{content_type:?}");
    }
    assert_eq!(state(admin), "up");
    let json = format!("{host}Content-Type: application/json; charset=utf-8\r\n");
    let (status, _, body) = send(admin, "POST", drain, &json, "");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_token_listener_wants_the_right_token_and_never_shows_it() {
    let (levee, admin) = start_locked("");
    let drain = format!("http://127.0.0.1:{admin}/upstreams/app/servers/127.0.0.1:3001/drain");
    let json = ["-H", "Content-Type: application/json"];
    let wrong = "Authorization: Bearer s3cret-admin-token-0123456780";
    let right = format!("Authorization: Bearer {TOKEN}");
    for url in [
        format!("http://127.0.0.1:{admin}/upstreams"),
        format!("http://127.0.0.1:{admin}/metrics"),
    ] {
        assert_eq!(code(&[&url]), "401", "{url}");
        assert_eq!(code(&["-H", wrong, &url]), "401", "{url}");
        assert_eq!(code(&["-H", &right, &url]), "200", "{url}");
    }
    assert_eq!(code(&["-X", "POST", json[0], json[1], &drain]), "401");
    assert_eq!(
        code(&["-X", "POST", json[0], json[1], "-H", wrong, &drain]),
        "401"
    );
    assert_eq!(state_with_token(admin), "up");
    assert_eq!(
        code(&["-X", "POST", json[0], json[1], "-H", &right, &drain]),
        "200"
    );
    assert_eq!(state_with_token(admin), "draining");
    // The challenge Prometheus and curl understand.
    let head = curl(&[
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &drain.replace("/drain", ""),
    ]);
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(
        head.contains("www-authenticate: bearer realm=\"levee admin\""),
        "{head}"
    );

    // `levee ctl`: the config's token_file, --token-file, LEVEE_ADMIN_TOKEN.
    let config = levee.config_path().display().to_string();
    let out = levee_cmd(&["ctl", "-c", &config, "enable", "app", "127.0.0.1:3001"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state_with_token(admin), "up");
    let addr = format!("127.0.0.1:{admin}");
    let out = levee_cmd(&["ctl", "--admin", &addr, "upstreams"]);
    assert!(!out.status.success(), "no token, yet ctl succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    let token_file = levee.dir().join("admin.token").display().to_string();
    let out = levee_cmd(&[
        "ctl",
        "--admin",
        &addr,
        "--token-file",
        &token_file,
        "upstreams",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:3001"));
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["ctl", "--admin", &addr, "metrics"])
        .env("LEVEE_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run levee ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every state change left an audit line; none holds the token.
    let audited = poll(Duration::from_secs(5), || {
        let log = levee.stderr();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("admin action"))
            .map(str::to_owned)
            .collect();
        (lines.len() >= 4).then_some(lines)
    })
    .unwrap_or_else(|| panic!("too few audit lines:\n{}", levee.stderr()));
    let drained = audited
        .iter()
        .find(|l| l.contains("who=\"token\"") && l.contains("/drain"))
        .unwrap_or_else(|| panic!("no audit line of the drain by token: {audited:#?}"));
    assert!(drained.contains("via=\"bearer\""), "{drained}");
    assert!(drained.contains("status=200"), "{drained}");
    assert!(drained.contains("method=\"POST\""), "{drained}");
    assert!(
        audited
            .iter()
            .any(|l| l.contains("who=\"unknown\"") && l.contains("status=401")),
        "refused attempts are audited too: {audited:#?}"
    );
    assert!(!levee.stderr().contains(TOKEN), "the token reached the log");
    assert!(
        !levee.stderr().contains("0123456780"),
        "a wrong token reached the log"
    );
}

fn state_with_token(admin: u16) -> String {
    let (status, _, body) = send(
        admin,
        "GET",
        "/upstreams/app",
        &format!("Host: 127.0.0.1:{admin}\r\nAuthorization: Bearer {TOKEN}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["servers"][0]["state"].as_str().expect("state").to_owned()
}

/// Logs in with `body`; the cookie's `name=value` and the CSRF token.
fn login(admin: u16, body: &str) -> (String, String, String) {
    let (status, head, text) = send(
        admin,
        "POST",
        "/login",
        &format!("Host: 127.0.0.1:{admin}\r\nContent-Type: application/json\r\n"),
        body,
    );
    assert_eq!(status, 200, "{head}\n{text}");
    let set_cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .unwrap_or_else(|| panic!("no Set-Cookie in {head}"))
        .to_owned();
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let csrf = v["csrf_token"].as_str().expect("csrf_token").to_owned();
    (cookie, csrf, set_cookie)
}

#[test]
fn a_login_session_acts_only_with_its_csrf_token() {
    let (levee, admin) = start_locked("");
    let host = format!("Host: 127.0.0.1:{admin}\r\n");
    let json = "Content-Type: application/json\r\n";
    // Wrong passwords and unknown users are told apart from nothing.
    for body in [
        r#"{"user": "ops", "password": "wrong"}"#,
        r#"{"user": "eve", "password": "s3cret"}"#,
    ] {
        let (status, head, text) = send(admin, "POST", "/login", &format!("{host}{json}"), body);
        assert_eq!(status, 401, "{text}");
        assert!(!head.contains("Set-Cookie"), "{head}");
    }
    let (cookie, csrf, set_cookie) = login(admin, r#"{"user": "ops", "password": "s3cret"}"#);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let with_cookie = format!("{host}Cookie: {cookie}\r\n");
    let (status, _, body) = send(admin, "GET", "/session", &with_cookie, "");
    assert_eq!(status, 200);
    assert!(body.contains("\"user:ops\""), "{body}");
    assert!(body.contains(&csrf), "{body}");
    let drain = "/upstreams/app/servers/127.0.0.1:3001/drain";
    // The cookie alone, as a forged cross-site form would send it: refused.
    let (status, _, body) = send(admin, "POST", drain, &format!("{with_cookie}{json}"), "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("X-CSRF-Token"), "{body}");
    let (status, _, _) = send(
        admin,
        "POST",
        drain,
        &format!("{with_cookie}{json}X-CSRF-Token: {}\r\n", "0".repeat(64)),
        "",
    );
    assert_eq!(status, 403);
    assert_eq!(state_with_token(admin), "up");
    let acting = format!("{with_cookie}{json}X-CSRF-Token: {csrf}\r\n");
    let (status, _, body) = send(admin, "POST", drain, &acting, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(state_with_token(admin), "draining");
    // Logged out, the cookie opens nothing.
    let (status, head, _) = send(admin, "POST", "/logout", &acting, "");
    assert_eq!(status, 200);
    assert!(head.contains("Max-Age=0"), "{head}");
    let (status, _, _) = send(admin, "GET", "/upstreams", &with_cookie, "");
    assert_eq!(status, 401);
    let audit = levee.stderr();
    assert!(
        audit.lines().any(|l| l.contains("admin action")
            && l.contains("who=\"user:ops\"")
            && l.contains("via=\"session\"")
            && l.contains("/drain")),
        "no audit line of ops's drain:\n{audit}"
    );
    assert!(!audit.contains("s3cret\""), "a password reached the log");
    // A token login is a session too.
    let (cookie, _, _) = login(admin, &format!(r#"{{"token": "{TOKEN}"}}"#));
    let (status, _, _) = send(
        admin,
        "GET",
        "/metrics",
        &format!("{host}Cookie: {cookie}\r\n"),
        "",
    );
    assert_eq!(status, 200);
}

#[test]
fn an_expired_session_is_refused() {
    let (_levee, admin) = start_locked("session_lifetime = \"1s\"\n");
    let (cookie, _, set_cookie) = login(admin, &format!(r#"{{"token": "{TOKEN}"}}"#));
    assert!(set_cookie.contains("Max-Age=1"), "{set_cookie}");
    let fields = format!("Host: 127.0.0.1:{admin}\r\nCookie: {cookie}\r\n");
    let (status, _, _) = send(admin, "GET", "/upstreams", &fields, "");
    assert_eq!(status, 200);
    let refused = poll(Duration::from_secs(10), || {
        let (status, head, body) = send(admin, "GET", "/upstreams", &fields, "");
        (status == 401).then_some((head, body))
    });
    let (head, body) = refused.expect("the session never expired");
    assert!(body.contains("expired"), "{body}");
    assert!(
        head.contains("Max-Age=0"),
        "the browser is not told to drop it: {head}"
    );
}

#[test]
fn check_wants_a_token_off_loopback_and_readable_credentials() {
    let setup = LeveeSetup::new();
    let path = setup.config_path();
    let admin = free_port();
    let cfg = config(&setup, admin, "", "hi").replace(
        &format!("address = \"127.0.0.1:{admin}\""),
        &format!("address = \"0.0.0.0:{admin}\""),
    );
    fs::write(&path, &cfg).expect("write config");
    let file = path.display().to_string();
    let out = levee_cmd(&["check", "-c", &file]);
    assert!(
        !out.status.success(),
        "a tokenless public admin listener passed check"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{file}:18:11: admin.address: the admin listener on `0.0.0.0:{admin}` is reachable from other hosts, so it needs a token")),
        "{err}"
    );
    // `levee run` refuses it the same way.
    let out = levee_cmd(&["run", "-c", &file]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.address"));

    // With a token from the environment: only if it is set where levee runs.
    let with_env = cfg.replace(
        &format!("address = \"0.0.0.0:{admin}\"\n"),
        &format!("address = \"0.0.0.0:{admin}\"\ntoken_env = \"LEVEE_TEST_ADMIN_TOKEN\"\n"),
    );
    fs::write(&path, &with_env).expect("write config");
    let check = |token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        cmd.args(["check", "-c", &file])
            .env_remove("LEVEE_TEST_ADMIN_TOKEN");
        if let Some(t) = token {
            cmd.env("LEVEE_TEST_ADMIN_TOKEN", t);
        }
        cmd.output().expect("run levee check")
    };
    let out = check(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{file}:19:13: admin.token_env: the environment variable `LEVEE_TEST_ADMIN_TOKEN` is not set")),
        "{err}"
    );
    let out = check(Some("short"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16 characters"), "{err}");
    assert!(!err.contains("short"), "the token is in the message: {err}");
    let out = check(Some(TOKEN));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A password file that is missing, or not hashed, fails check at its key.
    let missing = cfg.replace(
        &format!("address = \"0.0.0.0:{admin}\"\n"),
        &format!(
            "address = \"127.0.0.1:{admin}\"\npassword_file = \"/nonexistent/levee.passwd\"\n"
        ),
    );
    fs::write(&path, &missing).expect("write config");
    let out = levee_cmd(&["check", "-c", &file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{file}:19:17: admin.password_file: cannot read the password file /nonexistent/levee.passwd")),
        "{err}"
    );
}
