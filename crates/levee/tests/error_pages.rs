//! Error pages (issue 18, §1): custom bodies for levee's own errors and,
//! with `intercept_errors`, for a server's, from files (typed by their
//! extension) or inline, site-wide and per route, with a JSON variant for
//! clients that ask for JSON; the access log counts the bytes really sent
//! (levee's own 502 and 503 used to log 0).
//!
//! The app is a real nginx whose `/boom` answers 500 with its own body.

mod support;

use std::time::Duration;

use support::*;

const APP: &str = r#"
        location ~ /boom$ { return 500 "nginx's own error\n"; }
        location / { return 200 "fine\n"; }
"#;

struct Setup {
    levee: Levee,
    _app: Nginx,
}

fn start() -> Setup {
    let app = Nginx::start(APP);
    let dead = free_port();
    let setup = LeveeSetup::new();
    let log = setup.dir.join("access.log");
    let pages = setup.dir.join("pages");
    std::fs::create_dir_all(&pages).expect("mkdir");
    std::fs::write(pages.join("502.html"), "<h1>site 502</h1>\n").expect("write");
    std::fs::write(pages.join("502.json"), "{\"error\":\"bad gateway\"}").expect("write");
    let cfg = format!(
        r#"pid_file = "{pid}"
[log]
access = "{log}"

[http.error_pages.502]
file = "{dir}/502.html"
json_file = "{dir}/502.json"

[http.error_pages.404]
body = "site 404"
content_type = "text/plain; charset=utf-8"

[[listener]]
address = "127.0.0.1:{port}"
http2 = "prior-knowledge"

[[route]]
path = "/down/"
proxy = "dead"

[[route]]
path = "/down-own/"
proxy = "dead"
error_pages = {{ 502 = {{ body = "<p>route 502</p>" }} }}

[[route]]
path = "/plain/"
proxy = "dead"
error_pages = {{ 503 = {{ body = "unused" }} }}

[[route]]
path = "/app/"
proxy = "app"
intercept_errors = true
error_pages = {{ 500 = {{ body = "levee's page for 500" }} }}

[[route]]
path = "/app-raw/"
proxy = "app"
error_pages = {{ 500 = {{ body = "not used" }} }}

[upstream.dead]
servers = ["127.0.0.1:{dead}"]

[upstream.app]
servers = ["{app}"]
"#,
        pid = setup.pid_file().display(),
        log = log.display(),
        dir = pages.display(),
        port = setup.port,
        app = app.addr(),
    );
    Setup {
        levee: setup.start(&cfg),
        _app: app,
    }
}

fn fetch(levee: &Levee, args: &[&str], path: &str) -> (String, String) {
    curl_head_body(&levee.url(path), args)
}

fn field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head_field(head, name)
}

/// The access log's status and bytes for the request to `path`.
fn logged(levee: &Levee, path: &str) -> (String, u64) {
    poll(Duration::from_secs(10), || {
        let log = std::fs::read_to_string(levee.dir().join("access.log")).ok()?;
        let line = log.lines().find(|l| l.contains(&format!(" {path} ")))?;
        let after = line.split_once("\" ")?.1;
        let mut it = after.split(' ');
        Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
    })
    .unwrap_or_else(|| panic!("no access log line for {path}"))
}

#[test]
fn levees_own_errors_get_the_sites_or_the_routes_page_over_both_protocols() {
    let s = start();
    for (n, args) in [&[][..], &["--http2-prior-knowledge"][..]]
        .iter()
        .enumerate()
    {
        let (head, body) = fetch(&s.levee, args, &format!("/down/{n}"));
        assert!(head.contains(" 502"), "{head}");
        assert_eq!(body, "<h1>site 502</h1>\n");
        assert_eq!(
            field(&head, "content-type"),
            Some("text/html; charset=utf-8")
        );

        let mut json = args.to_vec();
        json.extend(["-H", "Accept: application/json"]);
        let (head, body) = fetch(&s.levee, &json, &format!("/down/json{n}"));
        assert_eq!(body, "{\"error\":\"bad gateway\"}", "{head}");
        assert_eq!(field(&head, "content-type"), Some("application/json"));
        // A browser's Accept names HTML too: it gets the HTML.
        let mut browser = args.to_vec();
        browser.extend(["-H", "Accept: text/html,application/json;q=0.9"]);
        let (_, body) = fetch(&s.levee, &browser, &format!("/down/html{n}"));
        assert_eq!(body, "<h1>site 502</h1>\n");

        let (head, body) = fetch(&s.levee, args, &format!("/down-own/{n}"));
        assert!(head.contains(" 502"), "{head}");
        assert_eq!(
            body, "<p>route 502</p>",
            "the route's page is over the site's"
        );

        // No route matches: the site's 404.
        let (head, body) = fetch(&s.levee, args, &format!("/nowhere/{n}"));
        assert!(head.contains(" 404"), "{head}");
        assert_eq!(body, "site 404");
    }
}

#[test]
fn a_servers_error_gets_the_page_only_where_the_route_intercepts() {
    let s = start();
    for args in [&[][..], &["--http2-prior-knowledge"][..]] {
        let (head, body) = fetch(&s.levee, args, "/app/boom");
        assert!(head.contains(" 500"), "{head}");
        assert_eq!(body, "levee's page for 500");
        let (head, body) = fetch(&s.levee, args, "/app-raw/boom");
        assert!(head.contains(" 500"), "{head}");
        assert_eq!(body, "nginx's own error\n");
        let (_, body) = fetch(&s.levee, args, "/app/ok");
        assert_eq!(body, "fine\n");
    }
}

/// Regression: levee's own 502 went out with a body but logged 0 bytes
/// (a config main already took: no error pages involved).
#[test]
fn the_access_log_counts_the_bytes_of_levees_own_errors() {
    let setup = LeveeSetup::new();
    let log = setup.dir.join("access.log");
    let dead = format!("127.0.0.1:{}", free_port());
    let cfg = setup.proxy_config(
        &[&dead],
        &format!("[log]\naccess = \"{}\"\n", log.display()),
    );
    let levee = setup.start(&cfg);
    let (head, body) = fetch(&levee, &[], "/x");
    assert!(head.contains(" 502"), "{head}");
    assert!(!body.is_empty());
    assert_eq!(logged(&levee, "/x"), ("502".to_owned(), body.len() as u64));
    // And with a page in place of the body.
    let s = start();
    let (_, body) = fetch(&s.levee, &[], "/down/y");
    assert_eq!(
        logged(&s.levee, "/down/y"),
        ("502".to_owned(), body.len() as u64)
    );
}
