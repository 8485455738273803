//! What the dashboard reads and does, without a browser: the runtime ban
//! list through `levee ctl` (refused at accept and on a keep-alive
//! connection opened before the ban), the live view and its event stream,
//! the history, the new counters in `/metrics` (per route, TLS handshakes
//! and certificate expiry, most-refused keys, bans), and the config view.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

/// levee with a TLS listener (common.rs's certificates), an admin
/// listener without credentials on loopback, and a rate limit on `/promo`.
fn start() -> (Nginx, Levee, u16) {
    let nginx = Nginx::start_default();
    let setup = common::setup();
    let admin = free_port();
    let extra = format!(
        r#"
[[route]]
path = "/promo"
proxy = "app"
rate_limit = "promo"

[rate_limit.promo]
key = "query:code"
rate = "1/m"

[admin]
address = "127.0.0.1:{admin}"
"#
    );
    let cfg = common::config(&setup, &nginx.addr(), "", &extra);
    let mut levee = setup.start(&cfg);
    levee.wait_port(admin);
    (nginx, levee, admin)
}

fn ctl(admin: u16, args: &[&str]) -> (bool, String) {
    let addr = format!("127.0.0.1:{admin}");
    let mut all = vec!["ctl", "--admin", &addr];
    all.extend_from_slice(args);
    let out = levee_cmd(&all);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A plain-HTTP request on `conn`, returning the status (0 when closed).
fn status_on(conn: &mut TcpStream, path: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n");
    if conn.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut buf = [0u8; 4096];
    match conn.read(&mut buf) {
        Ok(n) if n > 12 => std::str::from_utf8(&buf[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn a_ban_refuses_new_connections_and_requests_on_open_ones_until_lifted() {
    // A plain listener, so a raw keep-alive connection can be held open.
    let nginx = Nginx::start_default();
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = setup.proxy_config(
        &[&nginx.addr()],
        &format!("[admin]\naddress = \"127.0.0.1:{admin}\"\n"),
    );
    let mut levee = setup.start(&cfg);
    levee.wait_port(admin);
    let port = levee.port;
    let mut open = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(status_on(&mut open, "/before"), 200);
    // The quiet keep-alive connection parks: the dashboard counts it idle.
    let listener = poll(Duration::from_secs(20), || {
        let v = live(admin);
        let l = v["listeners"]
            .as_array()?
            .iter()
            .find(|l| l["address"] == format!("127.0.0.1:{port}"))?
            .clone();
        (l["idle"] == 1).then_some(l)
    })
    .expect("the idle connection counted within 20 s");
    assert_eq!(listener["active"], 0, "{listener}");
    assert_eq!(listener["open"], 1, "{listener}");
    let series = format!("levee_listener_idle_connections{{listener=\"127.0.0.1:{port}\"}}");
    assert_eq!(metric(admin, &series), Some(1.0));

    let (ok, out) = ctl(admin, &["ban", "127.0.0.0/8", "--for", "10m"]);
    assert!(ok, "{out}");
    assert!(out.contains("banned 127.0.0.0/8 until"), "{out}");
    let (ok, out) = ctl(admin, &["bans"]);
    assert!(ok && out.contains("127.0.0.0/8"), "{out}");

    // The connection opened before the ban: its next request is refused.
    assert_eq!(status_on(&mut open, "/after"), 403);
    // A new connection is closed at accept, unanswered.
    let mut fresh = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    fresh
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(status_on(&mut fresh, "/new"), 0);
    let refused = metric(admin, "levee_banned_total").expect("levee_banned_total");
    assert!(refused >= 2.0, "{refused}");
    assert!(
        !nginx.access_log().contains("/after") && !nginx.access_log().contains("/new"),
        "a banned request reached the upstream"
    );

    let (ok, out) = ctl(admin, &["unban", "127.0.0.0/8"]);
    assert!(ok && out.contains("lifted"), "{out}");
    let (ok, out) = ctl(admin, &["unban", "127.0.0.0/8"]);
    assert!(!ok && out.contains("not banned"), "{out}");
    let (ok, out) = ctl(admin, &["ban", "<script>"]);
    assert!(!ok && out.contains("not an address"), "{out}");
    let mut again = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    again
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(status_on(&mut again, "/lifted"), 200);
    let (ok, out) = ctl(admin, &["bans"]);
    assert!(ok && !out.contains("127.0.0.0/8"), "{out}");
}

/// The live view once it has two samples.
fn live(admin: u16) -> serde_json::Value {
    poll(Duration::from_secs(20), || {
        let (status, body) = admin_request(admin, "GET", "/api/dashboard/live", "");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v.get("point").is_some()).then_some(v)
    })
    .expect("a live view within 20 s")
}

#[test]
fn live_view_history_stream_and_metrics_come_from_the_same_counters() {
    let (_nginx, levee, admin) = start();
    for _ in 0..5 {
        let out = common::https(&levee, "a.test", "/promo?code=PROMO-0", &[]);
        assert!(out.status.success(), "{out:?}");
    }
    // /metrics: routes, TLS, most-refused keys.
    let (_, text) = admin_request(admin, "GET", "/metrics", "");
    assert!(
        text.contains("levee_route_responses_total{route=\"*/promo\",class=\"4xx\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("levee_route_request_seconds_count{route=\"*/promo\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("levee_tls_handshakes_total{result=\"ok\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("levee_rate_limit_top_key_refused{rule=\"promo\",key=\"code=PROMO-0\"} 4"),
        "{text}"
    );
    let expiry = text
        .lines()
        .find(|l| {
            l.starts_with("levee_tls_certificate_expiry_timestamp_seconds{") && l.contains("a.pem")
        })
        .unwrap_or_else(|| panic!("no expiry for a.pem in {text}"));
    let at: f64 = expiry
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    // The test CA's leaves last a few days (openssl's default 30 days at most).
    assert!(at > now && at < now + 40.0 * 86_400.0, "{expiry}");

    // The live view: the same figures, by name, with units the page shows.
    let v = poll(Duration::from_secs(20), || {
        let v = live(admin);
        let rule = v["rate_limits"]
            .as_array()?
            .iter()
            .find(|r| r["rule"] == "promo")?
            .clone();
        (rule["refused_total"] == 4).then_some(v)
    })
    .expect("the live view counts the refusals");
    let rule = v["rate_limits"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule"] == "promo")
        .cloned()
        .expect("promo");
    assert_eq!(rule["top_keys"][0]["key"], "code=PROMO-0", "{rule}");
    assert!(
        v["tls"]["certificates"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["path"].as_str().is_some_and(|p| p.ends_with("a.pem")))),
        "{v}"
    );
    assert!(
        v["process"]["rss_bytes"].as_u64().is_some_and(|b| b > 0),
        "{v}"
    );
    assert!(
        v["descriptors"]["limit"].as_u64().is_some_and(|l| l > 0),
        "{v}"
    );
    assert!(v["upstreams"][0]["servers"][0]["state"] == "up", "{v}");
    // Per upstream too: the five requests proxied were each one sample.
    assert!(v["upstreams"][0]["latency_ms"].get("p99").is_some(), "{v}");

    // The history: at least the seconds since start, columns of equal length.
    let (status, body) = admin_request(admin, "GET", "/api/dashboard/history", "");
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let t = h["seconds"]["t"].as_array().expect("t").len();
    assert!(
        t >= 1 && h["seconds"]["rps_4xx"].as_array().map(Vec::len) == Some(t),
        "{h}"
    );

    // The event stream: a retry hint, then a live view each second.
    let mut s = TcpStream::connect(("127.0.0.1", admin)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /api/dashboard/events HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\r\n"
    )
    .expect("write");
    let mut got = String::new();
    let mut buf = [0u8; 65536];
    while got.matches("\ndata: {").count() < 2 {
        let n = s.read(&mut buf).expect("read events");
        assert!(n > 0, "stream closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("Content-Type: text/event-stream"), "{got}");
    assert!(got.contains("retry: 2000"), "{got}");
    assert!(!got.contains("Content-Length"), "{got}");

    // The config view: same as the file, then a diff once the file changes.
    let (status, body) = admin_request(admin, "GET", "/api/dashboard/config", "");
    assert_eq!(status, 200, "{body}");
    let c: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(c["changed"], false, "{c}");
    let path = levee.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, text.replace("rate = \"1/m\"", "rate = \"2/m\"")).expect("write");
    let (_, body) = admin_request(admin, "GET", "/api/dashboard/config", "");
    let c: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(c["changed"], true, "{c}");
    let diff: Vec<String> = c["diff"]
        .as_array()
        .expect("diff")
        .iter()
        .filter(|d| d["op"] != " ")
        .map(|d| {
            format!(
                "{}{}",
                d["op"].as_str().unwrap_or(""),
                d["line"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(diff, ["-rate = \"1/1m\"", "+rate = \"2/1m\""], "{c}");
}

/// Regression: the config view hid only keys named like a secret, so a
/// mail auth service's shared key (`auth_http_header`) was shown in
/// full, where `levee config dump` redacts it.
#[test]
fn the_config_view_shows_no_secret_the_dump_hides() {
    let setup = LeveeSetup::new();
    let admin = free_port();
    let imap = free_port();
    let cfg = format!(
        r#"pid_file = "{pid}"
[[listener]]
address = "127.0.0.1:{port}"
[[route]]
respond = "x"
[[listener]]
address = "127.0.0.1:{imap}"
protocol = "imap"
[listener.mail]
auth_http = "http://127.0.0.1:9/auth"
auth_http_header = {{ X-Auth-Key = "s3cr3t-key" }}
master_user = "master"
master_password = "s3cr3t-pass"
[admin]
address = "127.0.0.1:{admin}"
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
    );
    let mut levee = setup.start(&cfg);
    levee.wait_port(admin);
    let (status, body) = admin_request(admin, "GET", "/api/dashboard/config", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("X-Auth-Key"), "{body}");
    assert!(!body.contains("s3cr3t"), "{body}");
}
