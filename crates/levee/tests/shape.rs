//! Request and response shaping (issue 18, §1): header rules per route on
//! the request sent upstream and the response sent back, the upstream's
//! `Server` hidden, and request ids, over HTTP/1.1 and HTTP/2 clients and
//! HTTP/1.1 and HTTP/2 (h2c) upstreams.
//!
//! The app is a real nginx that echoes in its body what it received
//! (`X-Foo`, `X-Bar`, `X-Request-Id`) and answers with `Server: nginx/…`,
//! an `X-Powered-By` and an `X-Drop` for levee to take away; it listens for
//! HTTP/1.1 and, on a second port, for h2c.

mod support;

use std::time::Duration;

use support::*;

const TRUSTED: &str = "127.0.0.2";

const APP: &str = r#"
        location / {
            add_header X-Powered-By "PHP/8.1" always;
            add_header X-Drop "1" always;
            add_header X-Request-Id "from-the-app" always;
            return 200 "foo=$http_x_foo bar=$http_x_bar id=$http_x_request_id\n";
        }
"#;

struct Setup {
    levee: Levee,
    app: Nginx,
    h2_port: u16,
    dead: u16,
}

fn start() -> Setup {
    let h2_port = free_port();
    let app = Nginx::start(&format!("listen 127.0.0.1:{h2_port} http2;\n{APP}"));
    let dead = free_port();
    let setup = LeveeSetup::new();
    let log = setup.dir.join("access.log");
    let rules = r#"request_headers = { set = { "X-Foo" = "{client}|{scheme}|{host}|{request_id}|{upstream}" }, remove = ["X-Bar"] }
response_headers = { set = { "X-Served" = "by {upstream}" }, remove = "X-Drop" }"#;
    let cfg = format!(
        r#"pid_file = "{pid}"
[log]
access = "{log}"

[[listener]]
address = "127.0.0.1:{port}"
http2 = "prior-knowledge"
trusted_proxies = ["{TRUSTED}"]

[[route]]
proxy = "app"
{rules}

[[route]]
path = "/h2/"
proxy = "h2app"
{rules}

[[route]]
path = "/keep/"
proxy = "app"
hide_upstream_server = false

[[route]]
path = "/own/"
respond = "own answer"
response_headers = {{ add = {{ "X-Frame-Options" = "DENY" }}, always = true }}

[[route]]
path = "/down/"
proxy = "dead"
response_headers = {{ add = {{ "X-Frame-Options" = "DENY" }}, always = true }}

[[route]]
path = "/down-plain/"
proxy = "dead"
response_headers = {{ add = {{ "X-Frame-Options" = "DENY" }} }}

[upstream.app]
servers = ["{app}"]

[upstream.h2app]
servers = ["127.0.0.1:{h2_port}"]
protocol = "h2c"

[upstream.dead]
servers = ["127.0.0.1:{dead}"]
"#,
        pid = setup.pid_file().display(),
        log = log.display(),
        port = setup.port,
        app = app.addr(),
    );
    Setup {
        levee: setup.start(&cfg),
        app,
        h2_port,
        dead,
    }
}

fn fetch(levee: &Levee, args: &[&str], path: &str) -> (String, String) {
    curl_head_body(&levee.url(path), args)
}

fn field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head_field(head, name)
}

fn is_minted(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn header_rules_hide_the_upstream_and_ids_travel_both_ways_over_both_protocols() {
    let s = start();
    let app = s.app.addr();
    let url = s.levee.url("");
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let h2 = format!("127.0.0.1:{}", s.h2_port);
    for (client, args) in [
        ("HTTP/1.1", &[][..]),
        ("HTTP/2", &["--http2-prior-knowledge"][..]),
    ] {
        for (path, upstream) in [("/a", app.as_str()), ("/h2/a", h2.as_str())] {
            let mut all = args.to_vec();
            all.extend(["-H", "X-Bar: secret", "-H", "X-Request-Id: spoofed"]);
            let (head, body) = fetch(&s.levee, &all, path);
            let what = format!("{client} to {path}:\n{head}\n{body}");
            assert!(head.contains(" 200"), "{what}");
            // The backend's software is not told; the rules' fields are.
            assert_eq!(field(&head, "server"), None, "{what}");
            assert_eq!(field(&head, "x-powered-by"), None, "{what}");
            assert_eq!(field(&head, "x-drop"), None, "{what}");
            let served = format!("by {upstream}");
            assert_eq!(field(&head, "x-served"), Some(served.as_str()), "{what}");
            // One id, minted (the client is not trusted), the same upstream,
            // back to the client (the app's own replaced) and in the log.
            let id = field(&head, "x-request-id").unwrap_or("").to_owned();
            assert!(is_minted(&id), "{what}");
            let want = format!("foo=127.0.0.1|http|{host}|{id}|{upstream} bar= id={id}\n");
            assert_eq!(body, want, "{what}");
            let logged = poll(Duration::from_secs(10), || {
                let log = std::fs::read_to_string(s.levee.dir().join("access.log")).ok()?;
                log.lines()
                    .find(|l| l.ends_with(&format!(" id={id}")))
                    .map(str::to_owned)
            });
            assert!(logged.is_some(), "no access log line with id {id}: {what}");
        }
    }
    // A route may keep the backend's Server.
    let (head, _) = fetch(&s.levee, &[], "/keep/x");
    assert!(
        field(&head, "server").is_some_and(|v| v.starts_with("nginx")),
        "{head}"
    );
    assert_eq!(field(&head, "x-powered-by"), Some("php/8.1"), "{head}");
}

#[test]
fn a_trusted_proxys_id_is_kept_and_a_bad_one_replaced() {
    let s = start();
    let (head, body) = fetch(
        &s.levee,
        &["--interface", TRUSTED, "-H", "X-Request-Id: lb-7f3a"],
        "/a",
    );
    assert_eq!(field(&head, "x-request-id"), Some("lb-7f3a"), "{head}");
    assert!(body.ends_with(" id=lb-7f3a\n"), "{body}");
    // Too long, or with a space: even a trusted proxy's is replaced.
    let long = format!("X-Request-Id: {}", "a".repeat(65));
    for bad in [long.as_str(), "X-Request-Id: two words"] {
        let (head, _) = fetch(&s.levee, &["--interface", TRUSTED, "-H", bad], "/a");
        let id = field(&head, "x-request-id").unwrap_or("");
        assert!(is_minted(id), "{bad}: {head}");
    }
}

#[test]
fn levees_own_answers_carry_the_id_and_always_rules_only() {
    let s = start();
    for args in [&[][..], &["--http2-prior-knowledge"][..]] {
        let (head, body) = fetch(&s.levee, args, "/own/x");
        assert_eq!(body, "own answer", "{head}");
        assert_eq!(field(&head, "x-frame-options"), Some("deny"), "{head}");
        assert!(
            is_minted(field(&head, "x-request-id").unwrap_or("")),
            "{head}"
        );
        // levee's own Server is its own, not hidden.
        assert_eq!(field(&head, "server"), Some("levee"), "{head}");

        // Nothing listens on the dead upstream's port: levee's 502.
        let (head, _) = fetch(&s.levee, args, "/down/x");
        assert!(head.contains(" 502"), "{head}");
        assert_eq!(field(&head, "x-frame-options"), Some("deny"), "{head}");
        let id = field(&head, "x-request-id").unwrap_or("").to_owned();
        assert!(is_minted(&id), "{head}");
        // The error log's line about it names the same id (the head is in
        // lower case, and so are minted ids).
        let named = poll(Duration::from_secs(20), || {
            s.levee
                .stderr()
                .lines()
                .any(|l| l.contains("upstream failed") && l.contains(&format!("request_id={id}")))
                .then_some(())
        });
        assert!(
            named.is_some(),
            "no log line names {id}:\n{}",
            s.levee.stderr()
        );
        let (head, _) = fetch(&s.levee, args, "/down-plain/x");
        assert!(head.contains(" 502"), "{head}");
        assert_eq!(
            field(&head, "x-frame-options"),
            None,
            "without always: {head}"
        );
    }
    let _ = s.dead;
}

/// What `levee check` says of a config whose one proxy route has `route`
/// lines; the config file's path.
fn check_errors(route: &str) -> (String, String) {
    let setup = LeveeSetup::new();
    let path = setup.config_path();
    let cfg = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\n\n[[route]]\nproxy = \"app\"\n{route}\n\n\
         [upstream.app]\nservers = [\"127.0.0.1:9\"]\n",
        port = setup.port
    );
    std::fs::write(&path, cfg).expect("write config");
    let out = levee_cmd(&["check", "-c", &path.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    (stderr, path.display().to_string())
}

#[test]
fn check_refuses_framing_fields_and_bad_values_at_their_keys() {
    let (stderr, file) = check_errors(
        "request_headers = { set = { \"Transfer-Encoding\" = \"chunked\" } }\n\
         response_headers = { add = { \"X-A\" = \"{cookie}\" } }",
    );
    assert!(
        stderr.contains(&format!(
            "{file}:6:29: route[0].request_headers.set.Transfer-Encoding: `Transfer-Encoding` cannot be set"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("route[0].response_headers.add.X-A: unknown variable `{cookie}`"),
        "{stderr}"
    );
}

#[test]
fn check_names_a_missing_error_page_file_at_its_key() {
    // `levee check` looks at the file, as `run` would when it reads it.
    let (stderr, file) =
        check_errors("error_pages = { 503 = { file = \"/nonexistent/503.html\" } }");
    assert!(
        stderr.contains(&format!(
            "{file}:6:32: route[0].error_pages.503.file: `/nonexistent/503.html` is not a file"
        )),
        "{stderr}"
    );
}

/// levee before `servers`, which speak `protocol`, pinning clients with a
/// cookie that carries every attribute.
fn sticky_levee(servers: &[String], protocol: &str) -> Levee {
    let setup = LeveeSetup::new();
    let cfg = format!(
        r#"pid_file = "{pid}"
[[listener]]
address = "127.0.0.1:{port}"
http2 = "prior-knowledge"

[[route]]
proxy = "app"

[upstream.app]
servers = {servers:?}
protocol = "{protocol}"
balance = "sticky"
sticky_cookie = "pin"
sticky_cookie_secure = true
sticky_cookie_same_site = "Strict"
sticky_cookie_max_age = "2h"
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
    );
    setup.start(&cfg)
}

/// For an HTTP/1.1 and an HTTP/2 client: the first answer sets the cookie
/// with its attributes; sent back, it keeps the client on that server,
/// which does not pin it again.
fn assert_pins(levee: &Levee) {
    for (client, args) in [
        ("HTTP/1.1", &[][..]),
        ("HTTP/2", &["--http2-prior-knowledge"][..]),
    ] {
        let (head, first) = fetch(levee, args, "/");
        let what = format!("{client}:\n{head}\n{first}");
        assert!(head.contains(" 200"), "{what}");
        let cookie = field(&head, "set-cookie").unwrap_or("");
        let (pin, attributes) = cookie.split_once(';').unwrap_or(("", ""));
        assert!(pin.starts_with("pin="), "{what}");
        assert_eq!(
            attributes, " path=/; httponly; secure; samesite=strict; max-age=7200",
            "{what}"
        );
        let back = format!("Cookie: a=b; {pin}");
        let mut pinned = args.to_vec();
        pinned.extend(["-H", back.as_str()]);
        for _ in 0..4 {
            let (head, body) = fetch(levee, &pinned, "/");
            assert_eq!(body, first, "{client}: {head}");
            assert_eq!(field(&head, "set-cookie"), None, "{client}: {head}");
        }
    }
}

#[test]
fn the_sticky_cookie_carries_secure_same_site_and_max_age() {
    let apps = [Nginx::start_default(), Nginx::start_default()];
    let levee = sticky_levee(&apps.each_ref().map(Nginx::addr), "http1");
    assert_pins(&levee);
}

#[test]
fn an_http2_upstream_pins_clients_with_the_sticky_cookie_too() {
    let ports = [free_port(), free_port()];
    let h2c = |p| Nginx::start(&format!("listen 127.0.0.1:{p} http2;\n{DEFAULT_APP}"));
    let _apps = ports.map(h2c);
    let levee = sticky_levee(&ports.map(|p| format!("127.0.0.1:{p}")), "h2c");
    assert_pins(&levee);
}
