//! Trusted proxies and forwarded fields (issue 12, §7): behind a TLS load
//! balancer listed in `trusted_proxies`, levee takes the client and its
//! scheme from the balancer's fields, and uses that client everywhere
//! (route allow/deny, rate limits, the access log, the fields the app
//! sees); from anyone else those fields are replaced, so a spoofed
//! `X-Forwarded-For` buys nothing.
//!
//! The balancer is curl bound to 127.0.0.2 (`--interface`), an ordinary
//! client is curl bound to 127.0.0.3; the app is a real nginx logging
//! what it received.

mod support;

use std::time::Duration;

use support::*;

const BALANCER: &str = "127.0.0.2";
const CLIENT: &str = "127.0.0.3";

fn levee(nginx: &Nginx, forwarded_header: &str) -> Levee {
    let setup = LeveeSetup::new();
    let log = setup.dir.join("access.log");
    let cfg = format!(
        r#"pid_file = "{pid}"
[log]
access = "{log}"

[[listener]]
address = "127.0.0.1:{port}"
http2 = "prior-knowledge"
trusted_proxies = ["{BALANCER}"]
{forwarded_header}

[[route]]
path = "/admin/"
proxy = "app"
allow = ["198.51.100.0/24"]

[[route]]
path = "/shop/"
proxy = "app"
deny = ["203.0.113.0/24"]

[[route]]
path = "/redeem"
proxy = "app"
rate_limit = "per_client"

[[route]]
proxy = "app"

[upstream.app]
servers = ["{nginx}"]

[rate_limit.per_client]
key = "client_ip"
rate = "2/h"
burst = 2
"#,
        pid = setup.pid_file().display(),
        log = log.display(),
        port = setup.port,
        nginx = nginx.addr(),
    );
    setup.start(&cfg)
}

/// The status of `path` fetched from `from` with `headers`.
fn code(levee: &Levee, from: &str, path: &str, headers: &[&str]) -> String {
    let mut args = vec!["--interface", from, "-o", "/dev/null", "-w", "%{http_code}"];
    for h in headers {
        args.extend(["-H", h]);
    }
    let url = levee.url(path);
    args.push(&url);
    curl_ok(&args)
}

fn access_line(levee: &Levee, path: &str) -> String {
    poll(Duration::from_secs(5), || {
        std::fs::read_to_string(levee.dir().join("access.log"))
            .ok()?
            .lines()
            .find(|l| l.contains(&format!(" {path} ")))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no access log line for {path}"))
}

const SPOOF: [&str; 4] = [
    "X-Forwarded-For: 198.51.100.7",
    "X-Forwarded-Proto: https",
    "X-Real-IP: 198.51.100.7",
    "Forwarded: for=198.51.100.7;proto=https",
];

#[test]
fn the_scheme_and_client_come_from_the_balancer_only() {
    let nginx = Nginx::start_default();
    let levee = levee(&nginx, "");

    // Behind the TLS balancer: the app sees https (before, levee wrote
    // `http` over it, and apps looped on redirects) and the real client.
    assert_eq!(code(&levee, BALANCER, "/lb", &SPOOF[..2]), "200");
    let e = &nginx.wait_entries("/lb", 1)[0];
    assert_eq!(e.get("xfp"), "https", "{}", e.line);
    assert_eq!(e.get("xff"), "198.51.100.7, 127.0.0.2", "{}", e.line);
    assert_eq!(e.get("xri"), "198.51.100.7", "{}", e.line);
    assert!(access_line(&levee, "/lb").starts_with("198.51.100.7 - - ["));

    // The same fields from anyone else are replaced or dropped.
    assert_eq!(code(&levee, CLIENT, "/direct", &SPOOF), "200");
    let e = &nginx.wait_entries("/direct", 1)[0];
    assert_eq!(e.get("xfp"), "http", "{}", e.line);
    assert_eq!(e.get("xff"), CLIENT, "{}", e.line);
    assert_eq!(e.get("xri"), CLIENT, "{}", e.line);
    assert_eq!(e.get("fwd"), "-", "{}", e.line);
    assert!(access_line(&levee, "/direct").starts_with("127.0.0.3 - - ["));

    // The same over HTTP/2 (h2c).
    let mut args = vec!["--http2-prior-knowledge", "--interface", BALANCER];
    for h in &SPOOF[..2] {
        args.extend(["-H", h]);
    }
    let url = levee.url("/lb-h2");
    args.push(&url);
    curl_ok(&args);
    let e = &nginx.wait_entries("/lb-h2", 1)[0];
    assert_eq!(
        (e.get("xfp").as_str(), e.get("xri").as_str()),
        ("https", "198.51.100.7"),
        "{}",
        e.line
    );
}

#[test]
fn a_spoofed_client_address_dodges_no_allow_deny_or_rate_limit() {
    let nginx = Nginx::start_default();
    let levee = levee(&nginx, "");
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}");

    // /admin/ allows 198.51.100.0/24 only: claiming it from outside fails.
    assert_eq!(
        code(&levee, CLIENT, "/admin/", &[&xff("198.51.100.7")]),
        "403"
    );
    // From the balancer, its client decides, not the balancer's address.
    assert_eq!(
        code(&levee, BALANCER, "/admin/", &[&xff("198.51.100.7")]),
        "200"
    );
    assert_eq!(
        code(&levee, BALANCER, "/admin/", &[&xff("192.0.2.1")]),
        "403"
    );
    assert_eq!(code(&levee, BALANCER, "/admin/", &[]), "403");
    // A spoofed address on the left of the balancer's own is not believed.
    let chain = "X-Forwarded-For: 198.51.100.7, 192.0.2.1";
    assert_eq!(code(&levee, BALANCER, "/admin/", &[chain]), "403");
    // /shop/ denies 203.0.113.0/24: a client behind the balancer is denied.
    assert_eq!(
        code(&levee, BALANCER, "/shop/", &[&xff("203.0.113.9")]),
        "403"
    );
    assert_eq!(code(&levee, CLIENT, "/shop/", &[&xff("192.0.2.9")]), "200");

    // Two a client per hour: a new spoofed address each time gains nothing.
    let codes: Vec<String> = (1..=3)
        .map(|i| code(&levee, CLIENT, "/redeem", &[&xff(&format!("192.0.2.{i}"))]))
        .collect();
    assert_eq!(codes, ["200", "200", "429"]);
    // Behind the balancer, each client has its own two.
    for client in ["198.51.100.1", "198.51.100.2"] {
        let codes: Vec<String> = (0..3)
            .map(|_| code(&levee, BALANCER, "/redeem", &[&xff(client)]))
            .collect();
        assert_eq!(codes, ["200", "200", "429"], "{client}");
    }
}

#[test]
fn a_balancer_that_writes_forwarded() {
    let nginx = Nginx::start_default();
    let levee = levee(&nginx, "forwarded_header = \"forwarded\"");
    let fwd = "Forwarded: for=\"198.51.100.8:5555\";proto=https";
    // Its `X-Forwarded-For` is not what names the client: `Forwarded` is.
    let spoof = "X-Forwarded-For: 198.51.100.66";
    assert_eq!(code(&levee, BALANCER, "/fwd", &[fwd, spoof]), "200");
    let e = &nginx.wait_entries("/fwd", 1)[0];
    assert_eq!(e.get("xfp"), "https", "{}", e.line);
    assert_eq!(e.get("xri"), "198.51.100.8", "{}", e.line);
    assert_eq!(
        e.get("fwd"),
        "for=\\x22198.51.100.8:5555\\x22;proto=https, for=127.0.0.2",
        "{}",
        e.line
    );
    assert!(access_line(&levee, "/fwd").starts_with("198.51.100.8 - - ["));
    assert_eq!(code(&levee, BALANCER, "/admin/", &[fwd]), "200");
    assert_eq!(code(&levee, CLIENT, "/admin/", &[fwd]), "403");
}

/// Behind a TLS balancer both schemes arrive on plain connections: the
/// cache keys by the scheme the app is told, so the app's redirect of an
/// http client to https is never served to the https clients (a redirect
/// loop for everyone once stored).
#[test]
fn a_cache_behind_a_balancer_keeps_the_schemes_apart() {
    let nginx = Nginx::start(
        r#"location / {
            add_header Cache-Control "max-age=600" always;
            if ($http_x_forwarded_proto != "https") { return 301 https://$host$request_uri; }
            return 200 "secure page\n";
        }"#,
    );
    let setup = LeveeSetup::new();
    let cfg = format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"
trusted_proxies = ["{BALANCER}"]

[[route]]
proxy = "app"
cache = true

[upstream.app]
servers = ["{nginx}"]

[cache]
max_size = "10MB"
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        nginx = nginx.addr(),
    );
    let levee = setup.start(&cfg);
    let plain = ["X-Forwarded-Proto: http", "X-Forwarded-For: 192.0.2.7"];
    let tls = ["X-Forwarded-Proto: https", "X-Forwarded-For: 192.0.2.8"];
    // The http client is redirected, and that answer is stored ...
    assert_eq!(code(&levee, BALANCER, "/page", &plain), "301");
    assert_eq!(code(&levee, BALANCER, "/page", &plain), "301");
    // ... but an https client gets the page, and then it is stored too.
    assert_eq!(code(&levee, BALANCER, "/page", &tls), "200");
    assert_eq!(code(&levee, BALANCER, "/page", &tls), "200");
    // Once every answered request is logged (nginx logs after answering).
    let seen = nginx.seen_uris();
    assert_eq!(seen.len(), 2, "one fetch per scheme: {seen:?}");
}
