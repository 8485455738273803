//! Every spelling of a protected path meets the protection (issue 12, §1):
//! levee in front of a real nginx, a route of each protection kind beside
//! an open fallback route to the same app, over HTTP/1.1 (raw bytes, so no
//! client tidies the path) and over HTTP/2 (curl with `--path-as-is` on an
//! h2c listener). Before the normalisation each of these spellings reached
//! nginx through the fallback route.

mod support;

use support::{LeveeSetup, Nginx, curl, free_port, parse_head, raw_eof};

/// `alice:s3cret` (protect.rs uses the same).
const HASH: &str = "$2b$05$CX/BPjn6rvu5DAfnBj.DCOgfYWvFlyZfZJj8lXo82CVo.7ripcKne";
const ALICE: &str = "YWxpY2U6czNjcmV0";

/// The spellings of `/admin/` from the issue: each must be refused as
/// `/admin/` itself is.
const SPELLINGS: &[&str] = &[
    "/%61dmin/",
    "//admin/",
    "/./admin/",
    "/x/../admin/",
    "/admin%2f",
    "/admin;x=1/",
    "/%2e/admin/",
];

#[derive(Clone, Copy, Debug)]
enum Proto {
    H1,
    H2,
}

struct Site {
    nginx: Nginx,
    _levee: support::Levee,
    h1: u16,
    h2: u16,
}

fn start() -> Site {
    let nginx = Nginx::start_default();
    let setup = LeveeSetup::new();
    let h2 = free_port();
    let htpasswd = setup.dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{HASH}\n")).expect("write htpasswd");
    let cfg = format!(
        r#"
[log]
access = "off"

[[listener]]
address = "127.0.0.1:{h1}"

[[listener]]
address = "127.0.0.1:{h2}"
http2 = "prior-knowledge"

[[route]]
path = "/admin/"
proxy = "app"
allow = ["10.0.0.0/8"]

[[route]]
path = "/staff/"
proxy = "app"
auth_basic_file = "{htpasswd}"

[[route]]
path = "/redeem"
proxy = "app"
rate_limit = "promo"

[[route]]
path = "/hot/"
proxy = "app"
rate_limit = "per_path"

[[route]]
path = "/orig/"
proxy = "app"
forward_path = "original"

[[route]]
proxy = "app"

[upstream.app]
servers = ["{nginx}"]

[rate_limit.promo]
key = "query:code"
rate = "1/h"
burst = 1

[rate_limit.per_path]
key = "path"
rate = "1/h"
burst = 1
"#,
        h1 = setup.port,
        htpasswd = htpasswd.display(),
        nginx = nginx.addr(),
    );
    let mut levee = setup.start(&cfg);
    levee.wait_port(h2);
    Site {
        h1: levee.port,
        h2,
        nginx,
        _levee: levee,
    }
}

impl Site {
    /// The status of `GET path` (with `Authorization: Basic` when `auth`).
    fn status(&self, proto: Proto, path: &str, auth: bool) -> u16 {
        match proto {
            Proto::H1 => {
                let auth = if auth {
                    format!("Authorization: Basic {ALICE}\r\n")
                } else {
                    String::new()
                };
                let req =
                    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n");
                let (bytes, _) = raw_eof(self.h1, req.as_bytes());
                parse_head(&bytes)
                    .unwrap_or_else(|| panic!("no response to {path}"))
                    .status
            }
            Proto::H2 => {
                let url = format!("http://127.0.0.1:{}{path}", self.h2);
                let mut args = vec![
                    "-s",
                    "--http2-prior-knowledge",
                    "--path-as-is",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ];
                if auth {
                    args.extend(["-u", "alice:s3cret"]);
                }
                args.push(&url);
                let out = curl(&args);
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("no status for {path}: {out:?}"))
            }
        }
    }

    /// The request targets nginx received, in order.
    fn seen(&self) -> Vec<String> {
        self.nginx.seen_uris()
    }
}

#[test]
fn allow_deny_holds_for_every_spelling_over_both_protocols() {
    let site = start();
    for proto in [Proto::H1, Proto::H2] {
        assert_eq!(site.status(proto, "/admin/", false), 403, "{proto:?}");
        for path in SPELLINGS {
            assert_eq!(site.status(proto, path, false), 403, "{proto:?} {path}");
        }
        // Refused outright: a NUL, a climb above the root, a dot segment
        // hidden behind a path parameter or an encoded slash.
        for path in [
            "/admin%00",
            "/../admin/",
            "/x/..;/admin/",
            "/x%2f..%2fadmin/",
        ] {
            assert_eq!(site.status(proto, path, false), 400, "{proto:?} {path}");
        }
        // Case is kept (docs/http1.md): another path, served by the fallback.
        assert_eq!(site.status(proto, "/ADMIN/", false), 200, "{proto:?}");
    }
    let seen = site.seen();
    assert_eq!(seen, ["/ADMIN/", "/ADMIN/"], "nothing else reached nginx");
}

#[test]
fn basic_auth_holds_for_every_spelling_over_both_protocols() {
    let site = start();
    let spellings = [
        "/%73taff/",
        "//staff/",
        "/./staff/",
        "/x/../staff/",
        "/staff%2F",
        "/staff;a=b/",
    ];
    for proto in [Proto::H1, Proto::H2] {
        for path in spellings {
            assert_eq!(site.status(proto, path, false), 401, "{proto:?} {path}");
        }
        assert_eq!(site.status(proto, "//staff/", true), 200, "{proto:?}");
    }
    // Only the authorised requests reached nginx, with the normalised path.
    assert_eq!(site.seen(), ["/staff/", "/staff/"]);
}

#[test]
fn a_per_code_limit_counts_every_spelling_over_both_protocols() {
    let site = start();
    for (proto, code) in [(Proto::H1, "ONE"), (Proto::H2, "TWO")] {
        assert_eq!(
            site.status(proto, &format!("/redeem?code={code}"), false),
            200,
            "{proto:?}"
        );
        for path in [
            format!("//redeem?code={code}"),
            format!("/%72edeem?code={code}"),
            format!("/./redeem?code={code}"),
            format!("/redeem?c%6fde={code}"),
            format!("/redeem?CODE={code}"),
            format!("/redeem?x=1;code={code}"),
        ] {
            assert_eq!(site.status(proto, &path, false), 429, "{proto:?} {path}");
        }
        // Two values: the app might read either, so neither is counted.
        let twice = format!("/redeem?code=NEW{code}&code={code}");
        assert_eq!(site.status(proto, &twice, false), 400, "{proto:?}");
    }
    assert_eq!(site.seen(), ["/redeem?code=ONE", "/redeem?code=TWO"]);
}

#[test]
fn a_per_path_limit_counts_every_spelling_over_both_protocols() {
    let site = start();
    for (proto, leaf) in [(Proto::H1, "a"), (Proto::H2, "b")] {
        assert_eq!(site.status(proto, &format!("/hot/{leaf}"), false), 200);
        for path in [
            format!("//hot/{leaf}"),
            format!("/hot/./{leaf}"),
            format!("/hot/x/../{leaf}"),
            format!("/hot/%{:02x}", leaf.as_bytes()[0]),
            format!("/hot/{leaf};v=2"),
        ] {
            assert_eq!(site.status(proto, &path, false), 429, "{proto:?} {path}");
        }
    }
    assert_eq!(site.seen(), ["/hot/a", "/hot/b"]);
}

#[test]
fn the_upstream_gets_the_normalised_path_unless_the_route_forwards_the_original() {
    let site = start();
    for proto in [Proto::H1, Proto::H2] {
        assert_eq!(
            site.status(proto, "/a//b/./c/../%64%2fe;p?q=%2F", false),
            200
        );
        assert_eq!(site.status(proto, "//orig/./x%2f%61", false), 200);
    }
    assert_eq!(
        site.seen(),
        [
            "/a/b/d%2Fe;p?q=%2F",
            "//orig/./x%2f%61",
            "/a/b/d%2Fe;p?q=%2F",
            "//orig/./x%2f%61",
        ]
    );
}
