//! The dashboard (issue 16) in a real browser: headless Chromium from
//! Debian driven by Playwright for Python (`dashboard/browse.py`), against
//! a levee with two real nginx servers. The script logs in, watches the
//! upstream table under load, drains a server and checks nginx's log,
//! purges a URL, sees a refused reload's errors, is refused without the
//! CSRF token, shows markup in a route, a user, a ban and a promotion code
//! as text, checks the clickjacking and CSP headers and that the page
//! works under the policy, and saves screenshots to
//! `target/dashboard-screenshots`. A second levee with a 6 s session shows
//! an expired session sent back to the login page.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use support::*;

const TOKEN: &str = "dashboard-admin-token-0123456789";
/// bcrypt of `s3cret` (cost 5, for speed).
const HASH: &str = "$2b$05$CX/BPjn6rvu5DAfnBj.DCOgfYWvFlyZfZJj8lXo82CVo.7ripcKne";
/// Markup that would run if the page ever put text in as HTML.
const XSS: &str = "<img/src/onerror=window.__xss=1><script>window.__xss=2</script>";

const APP: &str = r#"
        location / { return 200 "hello from $server_port\n"; }
        location /cached/ {
            add_header Cache-Control "max-age=300";
            return 200 "cached from $server_port\n";
        }
"#;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

fn config(setup: &LeveeSetup, admin: u16, servers: &[String], lifetime: &str) -> String {
    let token = setup.dir.join("admin.token");
    fs::write(&token, format!("{TOKEN}\n")).expect("write token");
    let passwd = setup.dir.join("admin.passwd");
    fs::write(&passwd, format!("ops:{HASH}\n")).expect("write passwd");
    let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
path = "/cached/"
proxy = "app"
cache = true

[[route]]
path = "/promo"
proxy = "app"
rate_limit = "promo"

[[route]]
path = "/{XSS}/"
respond = "markup route\n"

[[route]]
proxy = "app"

[upstream.app]
servers = [{servers}]

[rate_limit.promo]
key = "query:code"
rate = "1/m"

[admin]
address = "127.0.0.1:{admin}"
token_file = "{token}"
password_file = "{passwd}"
session_lifetime = "{lifetime}"
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        servers = servers.join(", "),
        token = token.display(),
        passwd = passwd.display(),
    )
}

/// Runs `browse.py` for `scenario`; panics with its output if a check fails.
fn browse(scenario: &str, levee: &Levee, admin: u16, servers: &[String], logs: &[PathBuf]) {
    let args = serde_json::json!({
        "scenario": scenario,
        "levee_port": levee.port,
        "admin_port": admin,
        "token": TOKEN,
        "user": "ops",
        "password": "s3cret",
        "servers": servers,
        "logs": logs,
        "config": levee.config_path(),
        "shots": screenshots(),
        "xss": XSS,
        "xss_route": format!("/{XSS}/x"),
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/browse.py");
    let out = Command::new(python_with("playwright.sync_api"))
        .arg(script)
        .env("DASH_ARGS", args.to_string())
        .output()
        .expect("run browse.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "browse.py {scenario} failed:\n{text}\nlevee stderr:\n{}",
        levee.stderr()
    );
    assert!(text.contains("dashboard: all checks passed"), "{text}");
}

fn start(lifetime: &str) -> (Levee, u16, Vec<Nginx>) {
    let nginx = vec![Nginx::start(APP), Nginx::start(APP)];
    let servers: Vec<String> = nginx.iter().map(Nginx::addr).collect();
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &servers, lifetime);
    let mut levee = setup.start(&cfg);
    levee.wait_port(admin);
    (levee, admin, nginx)
}

fn logs(nginx: &[Nginx]) -> Vec<PathBuf> {
    nginx
        .iter()
        .map(|n| n.root().join("../logs/access.log"))
        .collect()
}

#[test]
fn the_dashboard_in_a_browser() {
    let (levee, admin, nginx) = start("8h");
    let servers: Vec<String> = nginx.iter().map(Nginx::addr).collect();
    browse("main", &levee, admin, &servers, &logs(&nginx));
    // The history's memory, measured live: the same fixed bound as the unit
    // test states, whatever levee has seen.
    let (status, body) = admin_request_auth(admin, "/api/dashboard/history");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let bytes = v["memory_bytes"].as_u64().expect("memory_bytes");
    assert!(bytes > 300_000 && bytes < 400 * 1024, "{bytes}");
    assert!(v["seconds"]["t"].as_array().is_some_and(|t| !t.is_empty()));
}

#[test]
fn an_expired_session_goes_back_to_the_login_page() {
    let (levee, admin, nginx) = start("6s");
    let servers: Vec<String> = nginx.iter().map(Nginx::addr).collect();
    browse("expiry", &levee, admin, &servers, &logs(&nginx));
}

/// `GET path` on the admin listener with the bearer token.
fn admin_request_auth(admin: u16, path: &str) -> (u16, String) {
    let (status, _, body) = admin_raw(
        admin,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        ),
    );
    (status, body)
}
