//! Static route options (issue 18, §1): hidden files refused in every
//! spelling (and on a `mirrors` route's local files), `expires` by route
//! and extension, directory listings with hostile names, `try_files` for a
//! single-page app; each over HTTP/1.1 and HTTP/2 (h2c), with curl.

mod support;

use std::fs;

use support::{Got, LeveeSetup, PROTOS, Proto, TempDir, curl_as, free_port};

struct Site {
    _tmp: TempDir,
    _levee: support::Levee,
    h1: u16,
    h2: u16,
}

fn start() -> Site {
    let tmp = TempDir::new("static-options");
    let site = tmp.join("site");
    let spa = tmp.join("spa");
    let files = tmp.join("files");
    let dl = tmp.join("dl");
    for dir in [
        site.join(".git"),
        site.join("a"),
        site.join(".well-known"),
        spa.join("assets"),
        files.join("sub"),
        dl.join("pub"),
    ] {
        fs::create_dir_all(dir).expect("mkdir");
    }
    for (path, body) in [
        (site.join(".env"), "SECRET=1"),
        (site.join(".git/config"), "[core]"),
        (site.join("a/.htpasswd"), "alice:x"),
        (site.join(".well-known/security.txt"), "Contact: x"),
        (site.join("style.css"), "p{}"),
        (site.join("page.txt"), "text"),
        (spa.join("index.html"), "<app-shell>"),
        (spa.join("assets/app.js"), "run()"),
        (files.join("<script>"), "s"),
        (files.join("a&b\"c"), "q"),
        (files.join(".secret"), "hidden"),
        (dl.join(".env"), "SECRET=2"),
        (dl.join("pub/file.txt"), "public"),
    ] {
        fs::write(path, body).expect("write");
    }
    let setup = LeveeSetup::new();
    let h2 = free_port();
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
path = "/spa/"
static = "{spa}"
strip_prefix = "/spa"
try_files = ["$uri", "$uri/", "/index.html"]

[[route]]
path = "/files/"
static = "{files}"
strip_prefix = "/files"
listing = true

[[route]]
path = "/deny/"
static = "{site}"
strip_prefix = "/deny"
dotfiles = "deny"

[[route]]
path = "/dl/"
mirrors = "dl"
strip_prefix = "/dl"

[[route]]
static = "{site}"
expires = "1h"
expires_by_extension = {{ css = "7d" }}

[mirrors.dl]
root = "{dl}"
state_dir = "{state}"
"#,
        h1 = setup.port,
        spa = spa.display(),
        files = files.display(),
        site = site.display(),
        dl = dl.display(),
        state = tmp.join("state").display(),
    );
    let mut levee = setup.start(&cfg);
    levee.wait_port(h2);
    Site {
        _tmp: tmp,
        h1: levee.port,
        h2,
        _levee: levee,
    }
}

impl Site {
    fn get(&self, proto: Proto, path: &str, extra: &[&str]) -> Got {
        let port = match proto {
            Proto::H1 => self.h1,
            Proto::H2 => self.h2,
        };
        curl_as(proto, port, path, extra)
    }
}

#[test]
fn dotfiles_are_hidden_in_every_spelling_but_well_known() {
    let site = start();
    for proto in PROTOS {
        for path in [
            "/.env",
            "/%2Eenv",
            "/%2eenv",
            "/.git/config",
            "/.git/",
            "/a/.htpasswd",
            "/a/%2Ehtpasswd",
            "/x/../.env",
            "//.env",
            "/.env;x=1",
            "/dl/.env",
            "/dl/%2Eenv",
        ] {
            let got = site.get(proto, path, &[]);
            assert_eq!(got.status, 404, "{proto:?} {path}");
            assert!(!got.body.contains("SECRET"), "{proto:?} {path}");
        }
        for path in ["/deny/.env", "/deny/%2Eenv", "/deny/a/.htpasswd"] {
            assert_eq!(site.get(proto, path, &[]).status, 403, "{proto:?} {path}");
        }
        let got = site.get(proto, "/.well-known/security.txt", &[]);
        assert_eq!((got.status, got.body.as_str()), (200, "Contact: x"));
        let got = site.get(proto, "/dl/pub/file.txt", &[]);
        assert_eq!((got.status, got.body.as_str()), (200, "public"));
    }
}

#[test]
fn expires_by_route_and_by_extension() {
    let site = start();
    for proto in PROTOS {
        let css = site.get(proto, "/style.css", &[]);
        assert_eq!(
            css.header("cache-control").as_deref(),
            Some("max-age=604800")
        );
        assert!(css.header("expires").is_some(), "{proto:?}");
        let txt = site.get(proto, "/page.txt", &[]);
        assert_eq!(txt.header("cache-control").as_deref(), Some("max-age=3600"));
        // A 304 carries them too.
        let etag = txt.header("etag").expect("an ETag");
        let again = site.get(
            proto,
            "/page.txt",
            &["-H", &format!("If-None-Match: {etag}")],
        );
        assert_eq!(again.status, 304, "{proto:?}");
        assert_eq!(
            again.header("cache-control").as_deref(),
            Some("max-age=3600")
        );
    }
}

#[test]
fn listings_escape_hostile_names_and_hide_dotfiles() {
    let site = start();
    for proto in PROTOS {
        let html = site.get(proto, "/files/", &[]);
        assert_eq!(html.status, 200, "{proto:?}");
        assert!(
            html.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html")
        );
        assert!(
            html.body
                .contains("<a href=\"./%3Cscript%3E\">&lt;script&gt;</a>"),
            "{}",
            html.body
        );
        assert!(
            html.body
                .contains("<a href=\"./a%26b%22c\">a&amp;b&quot;c</a>"),
            "{}",
            html.body
        );
        assert!(
            html.body.contains("<a href=\"./sub/\">sub/</a>"),
            "{}",
            html.body
        );
        assert!(!html.body.contains("<script>"), "{proto:?}");
        assert!(!html.body.contains("secret"), "{proto:?}");
        let json = site.get(proto, "/files/?format=json", &[]);
        assert_eq!(
            json.header("content-type").as_deref(),
            Some("application/json")
        );
        assert!(json.body.contains("\"name\":\"a&b\\\"c\""), "{}", json.body);
        let by_accept = site.get(proto, "/files/sub/", &["-H", "Accept: application/json"]);
        assert_eq!(by_accept.body.trim(), "[]", "{proto:?}");
        // Regression: JSON refused (`q=0`), or named beside HTML, is HTML,
        // as for the error pages; any mention of JSON used to be enough.
        for accept in [
            "Accept: application/json;q=0",
            "Accept: text/html, application/json",
        ] {
            let html = site.get(proto, "/files/sub/", &["-H", accept]);
            assert!(
                html.header("content-type")
                    .unwrap_or_default()
                    .starts_with("text/html"),
                "{proto:?} {accept}"
            );
        }
        // A listed name leads to its file.
        let script = site.get(proto, "/files/%3Cscript%3E", &[]);
        assert_eq!((script.status, script.body.as_str()), (200, "s"));
        // The route without `listing` still refuses a directory.
        assert_eq!(site.get(proto, "/a/", &[]).status, 403, "{proto:?}");
    }
}

#[test]
fn try_files_serves_the_app_shell_for_missing_paths() {
    let site = start();
    for proto in PROTOS {
        let asset = site.get(proto, "/spa/assets/app.js", &[]);
        assert_eq!((asset.status, asset.body.as_str()), (200, "run()"));
        for path in ["/spa/", "/spa/users/42", "/spa/deep/link?tab=2"] {
            let got = site.get(proto, path, &[]);
            assert_eq!(
                (got.status, got.body.as_str()),
                (200, "<app-shell>"),
                "{proto:?} {path}"
            );
        }
    }
}

/// Regression: a directory asked for without its `/` on a route with
/// `strip_prefix` was sent to the stripped path (`/files/sub` to `/sub/`,
/// another route's or nothing), not to the client's own path with a `/`.
#[test]
fn a_directory_redirect_keeps_the_routes_prefix() {
    let site = start();
    for proto in PROTOS {
        for (path, location) in [
            ("/files/sub", "/files/sub/"),
            ("/files/sub?x=1", "/files/sub/?x=1"),
            ("/files//sub", "/files/sub/"),
            ("/spa/assets", "/spa/assets/"),
            ("/dl/pub", "/dl/pub/"),
            ("/a", "/a/"),
        ] {
            let got = site.get(proto, path, &[]);
            assert_eq!(got.status, 301, "{proto:?} {path}");
            assert_eq!(
                got.header("location").as_deref(),
                Some(location),
                "{proto:?} {path}"
            );
        }
    }
}
