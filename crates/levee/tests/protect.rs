//! Protections end to end, through the levee binary in front of real nginx:
//! the promotion-code rate limit, smoothing and dry runs, route and listener
//! allow/deny lists, Basic auth, and connection limits.

mod support;

use std::time::{Duration, Instant};

use support::{
    LeveeSetup, Nginx, RawConn, curl, free_port, get_req, metric, parse_head, poll, raw_eof,
};

/// A config with one listener (carrying `listener_keys`) and two routes in
/// front of `nginx`: `/redeem` with `route_keys`, and `/` without protection.
fn config(
    setup: &LeveeSetup,
    nginx: &Nginx,
    listener_keys: &str,
    route_keys: &str,
    extra: &str,
) -> String {
    format!(
        r#"pid_file = "{pid}"
[log]
access = "off"
level = "info"

[[listener]]
address = "127.0.0.1:{port}"
{listener_keys}

[[route]]
path = "/redeem"
proxy = "app"
{route_keys}

[[route]]
proxy = "app"

[upstream.app]
servers = ["{nginx}"]

{extra}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        nginx = nginx.addr(),
    )
}

fn status(port: u16, path: &str) -> (u16, Option<String>) {
    let (bytes, _) = raw_eof(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let resp = parse_head(&bytes).unwrap_or_else(|| panic!("no response to {path}"));
    (resp.status, resp.header("retry-after").map(str::to_owned))
}

#[test]
fn promotion_code_limit_allows_exactly_n_per_code() {
    let admin = free_port();
    let nginx = Nginx::start_default();
    nginx.put_file("redeem", b"redeemed\n");
    let setup = LeveeSetup::new();
    let cfg = config(
        &setup,
        &nginx,
        "",
        r#"rate_limit = "promo""#,
        &format!(
            "[rate_limit.promo]\nkey = \"query:code\"\nrate = \"3/h\"\nburst = 3\n\n\
             [admin]\naddress = \"127.0.0.1:{admin}\"\n"
        ),
    );
    let levee = setup.start(&cfg);
    let port = levee.port;
    for i in 0..3 {
        assert_eq!(status(port, "/redeem?code=SPRING").0, 200, "SPRING #{i}");
    }
    // The fourth use of the code, however it is spelled, is refused.
    for path in [
        "/redeem?code=SPRING",
        "/redeem?x=1&code=SPR%49NG",
        "/redeem?Code=SPRING",
    ] {
        let (s, retry) = status(port, path);
        assert_eq!(s, 429, "{path}");
        let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
        assert!((1..=1200).contains(&retry), "Retry-After {retry}");
    }
    // Given twice, the code is refused: the app may read either value
    // (docs/protection.md).
    assert_eq!(status(port, "/redeem?code=OTHER&code=SPRING").0, 400);
    // Other codes are unaffected, and so are requests without a code and other routes.
    for i in 0..3 {
        assert_eq!(status(port, "/redeem?code=SUMMER").0, 200, "SUMMER #{i}");
    }
    assert_eq!(status(port, "/redeem?code=SUMMER").0, 429);
    for _ in 0..5 {
        assert_eq!(status(port, "/redeem").0, 200);
        assert_ne!(
            status(port, "/?code=SPRING").0,
            429,
            "other routes are not limited"
        );
    }
    // nginx saw exactly the admitted redemptions.
    let log = nginx.wait_entries("/redeem?code=", 6);
    assert_eq!(log.len(), 6, "{log:?}");
    // And the rule's counters in /metrics say the same.
    let series = |outcome: &str| {
        metric(
            admin,
            &format!("levee_rate_limit_requests_total{{rule=\"promo\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(series("refused"), Some(4.0));
    // Requests without a code have no key, so the rule does not count them.
    assert_eq!(series("admitted"), Some(6.0));
}

#[test]
fn smoothing_delays_and_dry_run_refuses_nothing() {
    let nginx = Nginx::start_default();
    nginx.put_file("redeem", b"ok\n");
    let setup = LeveeSetup::new();
    let cfg = config(
        &setup,
        &nginx,
        "",
        r#"rate_limit = ["smooth", "watch"]"#,
        r#"
[rate_limit.smooth]
key = "client_ip"
rate = "5/s"
burst = 5
nodelay = false

[rate_limit.watch]
key = "path"
rate = "1/h"
dry_run = true
"#,
    );
    let levee = setup.start(&cfg);
    let mut conn = RawConn::connect(levee.port);
    let started = Instant::now();
    for _ in 0..4 {
        conn.send(&get_req("/redeem", "t"));
        assert_eq!(conn.read_response("GET").status, 200);
    }
    // The first passes at once, each next one waits for its 200 ms slot.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(550), "took {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let logged = poll(Duration::from_secs(5), || {
        levee.stderr().contains("would refuse").then_some(())
    });
    assert!(logged.is_some(), "dry run not logged: {}", levee.stderr());
}

#[test]
fn route_and_listener_allow_deny() {
    let nginx = Nginx::start_default();
    nginx.put_file("redeem", b"ok\n");
    let setup = LeveeSetup::new();
    let cfg = config(
        &setup,
        &nginx,
        r#"deny = ["127.0.0.3"]"#,
        r#"allow = "127.0.0.1/32""#,
        "",
    );
    let levee = setup.start(&cfg);
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", levee.port);
    let code = |iface: &str, p: &str| {
        let out = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--interface",
            iface,
            &url(p),
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(code("127.0.0.1", "/redeem"), "200");
    assert_eq!(
        code("127.0.0.2", "/redeem"),
        "403",
        "not in the route's allow list"
    );
    assert_eq!(
        code("127.0.0.2", "/index.html"),
        "200",
        "other routes are open"
    );
    // The listener closes a denied client before reading anything: no status at all.
    assert_eq!(code("127.0.0.3", "/index.html"), "000");
}

const HASH: &str = "$2b$05$CX/BPjn6rvu5DAfnBj.DCOgfYWvFlyZfZJj8lXo82CVo.7ripcKne";

#[test]
fn basic_auth_with_bcrypt_file() {
    let nginx = Nginx::start_default();
    nginx.put_file("redeem", b"secret stuff\n");
    let setup = LeveeSetup::new();
    let htpasswd = setup.dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("# staff\nalice:{HASH}\n")).expect("write htpasswd");
    let cfg = config(
        &setup,
        &nginx,
        "",
        &format!(
            "auth_basic_file = \"{}\"\nauth_realm = \"staff\"",
            htpasswd.display()
        ),
        "",
    );
    let levee = setup.start(&cfg);
    let url = format!("http://127.0.0.1:{}/redeem", levee.port);
    let code = |extra: &[&str]| {
        let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(extra);
        args.push(&url);
        String::from_utf8_lossy(&curl(&args).stdout).into_owned()
    };
    assert_eq!(code(&[]), "401");
    assert_eq!(code(&["-u", "alice:wrong"]), "401");
    assert_eq!(code(&["-u", "bob:s3cret"]), "401");
    assert_eq!(code(&["-u", "alice:s3cret"]), "200");
    let head = curl(&["-s", "-D", "-", "-o", "/dev/null", &url]);
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(
        head.contains("www-authenticate: basic realm=\"staff\""),
        "{head}"
    );
    assert_eq!(
        nginx.wait_entries("/redeem", 1).len(),
        1,
        "only the authorised request reached nginx"
    );
}

/// bcrypt at cost 8 (`crypt(3)` wrote them): slow enough that a queue of
/// wrong passwords takes seconds to hash, as the issue's 13 s did.
const ALICE_8: &str = "$2b$08$abcdefghijklmnopqrstuuzi5E8Fg0yjKgTc5PCHx2LCyJ0fp5n/G";
const BOB_8: &str = "$2b$08$bbcdefghijklmnopqrstuuiEQto.7isKAdppTig8SqxsepkMJ3JBm";
const FLOOD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protect/auth_flood.py");

#[test]
fn a_flood_of_wrong_passwords_does_not_keep_another_user_waiting() {
    let nginx = Nginx::start_default();
    nginx.put_file("redeem", b"ok\n");
    let setup = LeveeSetup::new();
    let htpasswd = setup.dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{ALICE_8}\nbob:{BOB_8}\n")).expect("htpasswd");
    let admin = free_port();
    let cfg = config(
        &setup,
        &nginx,
        "",
        &format!("auth_basic_file = \"{}\"", htpasswd.display()),
        &format!("[admin]\naddress = \"127.0.0.1:{admin}\"\n"),
    );
    let levee = setup.start(&cfg);
    // 100 connections from one address, a new wrong password for alice on
    // each request: before, they queued for the two bcrypt slots and a new
    // user waited behind all of them (13 s in the issue).
    let python = support::python_with("json");
    let mut flood = std::process::Command::new(python)
        .args([FLOOD, &levee.port.to_string(), "100", "127.0.0.2", "alice"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run auth_flood.py");
    let mut out = std::io::BufReader::new(flood.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("flood started");
    assert_eq!(line.trim(), "running");
    let url = format!("http://127.0.0.1:{}/redeem", levee.port);
    let (code, took) = {
        let started = Instant::now();
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--interface",
            "127.0.0.3",
            "-u",
            "bob:hunter2",
            &url,
        ]);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            started.elapsed(),
        )
    };
    drop(flood.stdin.take());
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).expect("flood counts");
    let _ = flood.wait();
    assert_eq!(code, "200", "flood: {line}");
    // Generous for a loaded machine: bob waits behind alice's share (two
    // checks) at most, not behind the flood.
    assert!(
        took < Duration::from_secs(2),
        "bob waited {took:?}; flood: {line}"
    );
    let counts: serde_json::Value = serde_json::from_str(line.trim()).expect("counts");
    assert!(counts["429"].as_u64().unwrap_or(0) > 0, "{counts}");
    assert!(
        metric(admin, "levee_auth_busy_total").is_some_and(|n| n > 0.0),
        "the refusals are counted"
    );
}

/// A keep-alive connection that has been served once, so levee surely
/// accepted and counted it. Retried while a 503 says levee still counts a
/// connection that just closed (the fixture's readiness probe, say): its
/// close is seen on levee's next turn, not at once.
fn held(port: u16) -> RawConn {
    poll(Duration::from_secs(5), || {
        let mut c = RawConn::connect(port);
        c.send(&get_req("/redeem", "t"));
        (c.read_response("GET").status == 200).then_some(c)
    })
    .expect("a connection within the limit is served")
}

fn code_from(iface: &str, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/redeem");
    let out = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--interface",
        iface,
        "-m",
        "5",
        &url,
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn limited(nginx: &Nginx, keys: &str) -> support::Levee {
    nginx.put_file("redeem", b"ok\n");
    let setup = LeveeSetup::new();
    let cfg = config(&setup, nginx, keys, "", "");
    setup.start(&cfg)
}

#[test]
fn per_ip_limit_refuses_quickly_and_keeps_serving_the_accepted() {
    let nginx = Nginx::start_default();
    let levee = limited(&nginx, "max_connections_per_ip = 3");
    let port = levee.port;
    let mut conns: Vec<RawConn> = (0..3).map(|_| held(port)).collect();
    let started = Instant::now();
    let (bytes, closed) = raw_eof(port, &get_req("/redeem", "t"));
    assert!(closed, "over the per-IP limit: closed");
    if let Some(resp) = parse_head(&bytes) {
        assert_eq!(resp.status, 503);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused quickly"
    );
    // Another address is not affected.
    assert_eq!(code_from("127.0.0.2", port), "200");
    // The accepted connections are served all along.
    for c in &mut conns {
        c.send(&get_req("/redeem", "t"));
        assert_eq!(c.read_response("GET").status, 200);
    }
    // A place comes back when a connection closes.
    conns.pop();
    let back = poll(Duration::from_secs(5), || {
        let mut c = RawConn::try_connect(port).ok()?;
        c.try_send(&get_req("/redeem", "t")).ok()?;
        let r = c.try_read_response("GET", Duration::from_secs(2)).ok()?;
        (r.status == 200).then_some(())
    });
    assert!(back.is_some(), "no place came back after closing");
}

#[test]
fn listener_limit_refuses_everyone_beyond_it() {
    let nginx = Nginx::start_default();
    let levee = limited(&nginx, "max_connections = 2");
    let port = levee.port;
    let mut conns: Vec<RawConn> = (0..2).map(|_| held(port)).collect();
    for iface in ["127.0.0.1", "127.0.0.2"] {
        let code = code_from(iface, port);
        assert!(code == "503" || code == "000", "{iface}: {code}");
    }
    for c in &mut conns {
        c.send(&get_req("/redeem", "t"));
        assert_eq!(c.read_response("GET").status, 200);
    }
    drop(conns);
    let back = poll(Duration::from_secs(5), || {
        (code_from("127.0.0.2", port) == "200").then_some(())
    });
    assert!(back.is_some());
}
