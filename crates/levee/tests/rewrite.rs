//! Path rewriting (issue 18, §1): prefixes stripped and added, regex rules
//! with captures, internal rewrites that match routes again, redirects, the
//! rewrite cycle's 500, and the protections a rewrite must not walk past,
//! whatever the spelling, over HTTP/1.1 and HTTP/2 (h2c), levee in front of
//! a real nginx that logs the request target it received.

mod support;

use support::{Got, LeveeSetup, Nginx, PROTOS, Proto, curl_as, free_port};

struct Site {
    nginx: Nginx,
    levee: support::Levee,
    h1: u16,
    h2: u16,
}

/// nginx answers every path with the target it received, cacheable.
const APP: &str = r#"
        location / {
            add_header Cache-Control "max-age=60";
            return 200 "uri=$request_uri\n";
        }
"#;

fn start() -> Site {
    let nginx = Nginx::start(APP);
    let setup = LeveeSetup::new();
    let h2 = free_port();
    let cfg = format!(
        r#"
[log]
access = "off"

[limits]
max_rewrites = 3

[[listener]]
address = "127.0.0.1:{h1}"

[[listener]]
address = "127.0.0.1:{h2}"
http2 = "prior-knowledge"

# The protected route: no test client is in 10.0.0.0/8.
[[route]]
path = "/admin/"
proxy = "app"
allow = ["10.0.0.0/8"]
[[route.rewrite]]
match = '^/admin/(.*)$'
to = "/open/$1"

[[route]]
path = "/open/"
proxy = "app"

[[route]]
path = "/api/"
proxy = "app"
strip_prefix = "/api"
add_prefix = "/v2"

[[route]]
path = "/files/"
proxy = "app"
[[route.rewrite]]
match = '^/files/(.*)$'
to = "/$1"

[[route]]
path = "/item/"
proxy = "app"
[[route.rewrite]]
match = '^/item/(\d+)$'
to = "/show?id={{1}}"
flag = "break"

[[route]]
path = "/old/"
proxy = "app"
[[route.rewrite]]
match = '^/old/(.*)$'
to = "/new/$1"
flag = "redirect"
status = 308

[[route]]
path = "/loop/"
proxy = "app"
[[route.rewrite]]
match = '^/loop/(.*)$'
to = "/loop/x$1"

[[route]]
path = "/c/"
proxy = "app"
cache = true
strip_prefix = "/c"

[[route]]
path = "/d/"
proxy = "app"
cache = true
strip_prefix = "/d"

[[route]]
proxy = "app"

[upstream.app]
servers = ["{nginx}"]
"#,
        h1 = setup.port,
        nginx = nginx.addr(),
    );
    let mut levee = setup.start(&cfg);
    levee.wait_port(h2);
    Site {
        h1: levee.port,
        h2,
        nginx,
        levee,
    }
}

impl Site {
    /// `GET path` sent as it is written.
    fn get(&self, proto: Proto, path: &str) -> Got {
        curl_as(proto, self.port(proto), path, &[])
    }

    fn port(&self, proto: Proto) -> u16 {
        match proto {
            Proto::H1 => self.h1,
            Proto::H2 => self.h2,
        }
    }

    /// The request targets nginx received, in order.
    fn seen(&self) -> Vec<String> {
        self.nginx.seen_uris()
    }
}

#[test]
fn prefixes_and_rules_rewrite_what_the_upstream_is_sent() {
    let site = start();
    for proto in PROTOS {
        let got = site.get(proto, "/api/users?id=1");
        assert_eq!(
            (got.status, got.body.as_str()),
            (200, "uri=/v2/users?id=1\n"),
            "{proto:?}"
        );
        // The prefix is stripped from any spelling of it.
        let got = site.get(proto, "/%61pi//users");
        assert_eq!(got.body, "uri=/v2/users\n", "{proto:?}");
        // `break` with a `?`: the replacement's query replaces the client's.
        let got = site.get(proto, "/item/42?utm=x");
        assert_eq!(got.body, "uri=/show?id=42\n", "{proto:?}");
        // No rule matches: the path goes as it came.
        let got = site.get(proto, "/item/abc");
        assert_eq!(got.body, "uri=/item/abc\n", "{proto:?}");
        // `last`: routes match again; `/files/x` lands on the fallback as `/x`.
        let got = site.get(proto, "/files/x?q=1");
        assert_eq!(got.body, "uri=/x?q=1\n", "{proto:?}");
    }
}

#[test]
fn a_redirect_rule_answers_with_its_status_and_location() {
    let site = start();
    for proto in PROTOS {
        let got = site.get(proto, "/old/a%20b?k=v");
        assert_eq!(got.status, 308, "{proto:?}");
        assert_eq!(
            got.header("location").as_deref(),
            Some("/new/a%20b?k=v"),
            "{proto:?}"
        );
    }
    assert!(site.seen().is_empty(), "nothing reached nginx");
}

#[test]
fn a_rewrite_cycle_ends_in_500() {
    let site = start();
    for proto in PROTOS {
        assert_eq!(site.get(proto, "/loop/a").status, 500, "{proto:?}");
    }
    assert!(site.seen().is_empty(), "nothing reached nginx");
    assert!(
        site.levee
            .wait_stderr("rewrite cycle", std::time::Duration::from_secs(10)),
        "the cycle is logged: {}",
        site.levee.stderr()
    );
}

#[test]
fn a_rewrite_never_walks_past_a_protection_whatever_the_spelling() {
    let site = start();
    for proto in PROTOS {
        // The protected route's own rule would take `/admin/x` to an open
        // route: its protection still applies first.
        assert_eq!(site.get(proto, "/admin/x").status, 403, "{proto:?}");
        // A rule on an open route that lands on the protected one, reached
        // through every spelling: the rewritten path is normalised and
        // routed like a client's, so each meets the protection.
        for path in [
            "/files/admin/x",
            "/files/%61dmin/x",
            "/files//admin/x",
            "/files/./admin/x",
            "/files/y/../admin/x",
            "/files/admin%2fx",
            "/files/admin;p=1/x",
            "/%66iles/admin/x",
            "/files/%2e%2e/files/admin/x",
        ] {
            assert_eq!(site.get(proto, path).status, 403, "{proto:?} {path}");
        }
    }
    assert!(
        site.seen().is_empty(),
        "nothing reached nginx: {:?}",
        site.seen()
    );
}

#[test]
fn the_cache_keys_on_the_rewritten_path() {
    let site = start();
    for proto in PROTOS {
        // `/c/k-…` and `/d/k-…` both reach the upstream as `/k-…`: one
        // stored response serves both.
        let leaf = format!("k-{proto:?}");
        let first = site.get(proto, &format!("/c/{leaf}"));
        assert_eq!(first.body, format!("uri=/{leaf}\n"), "{proto:?}");
        let second = site.get(proto, &format!("/d/{leaf}"));
        assert_eq!(second.body, format!("uri=/{leaf}\n"), "{proto:?}");
        let status = second.header("cache-status").unwrap_or_default();
        assert!(status.contains("hit"), "{proto:?}: {status}");
    }
    assert_eq!(site.seen(), ["/k-H1", "/k-H2"]);
}
