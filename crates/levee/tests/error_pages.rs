//! Error pages (issue 18, §1): custom bodies for levee's own errors and,
//! with `intercept_errors`, for a server's, from files (typed by their
//! extension) or inline, site-wide and per route, with a JSON variant for
//! clients that ask for JSON; the access log counts the bytes really sent
//! (levee's own 502 and 503 used to log 0).
//!
//! The app is a real nginx whose `/boom` answers 500 with its own body;
//! a second one serves the same over h2c, and a 500 with a 1 MiB body at
//! `/bigboom`.

mod support;

use std::time::Duration;

use support::*;

const APP: &str = r#"
        location ~ /boom$ { return 500 "nginx's own error\n"; }
        location / { return 200 "fine\n"; }
"#;

/// The h2c app's 500 with a body larger than levee's 64 KiB stream window.
const BIG: usize = 1024 * 1024;

struct Setup {
    levee: Levee,
    _app: Nginx,
    h2app: Nginx,
}

fn start() -> Setup {
    let app = Nginx::start(APP);
    let h2_port = free_port();
    let h2app = Nginx::start(&format!(
        "listen 127.0.0.1:{h2_port} http2;\n\
         location ~ /bigboom$ {{ error_page 404 =500 /big.bin; return 404; }}\n\
         location = /big.bin {{ }}\n{APP}"
    ));
    h2app.put_file("big.bin", &vec![b'x'; BIG]);
    let dead = free_port();
    let setup = LeveeSetup::new();
    let log = setup.dir.join("access.log");
    let pages = setup.dir.join("pages");
    std::fs::create_dir_all(&pages).expect("mkdir");
    std::fs::write(pages.join("502.html"), "<h1>site 502</h1>\n").expect("write");
    std::fs::write(pages.join("502.json"), "{\"error\":\"bad gateway\"}").expect("write");
    let cfg = format!(
        r#"pid_file = "{pid}"
workers = 1
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

[[route]]
path = "/h2app/"
proxy = "h2app"
intercept_errors = true
error_pages = {{ 500 = {{ body = "levee's page for 500" }} }}

[[route]]
path = "/h2app-raw/"
proxy = "h2app"
error_pages = {{ 500 = {{ body = "not used" }} }}

[upstream.h2app]
servers = ["127.0.0.1:{h2_port}"]
protocol = "h2c"

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
        h2app,
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

/// Regression: a page with a JSON variant was chosen by `Accept` without
/// saying so (`Vary: Accept`), so a cache in front could hand an API
/// client's JSON to a browser; and `q=0.000` did not refuse HTML.
#[test]
fn a_page_with_a_json_variant_says_it_varies_by_accept() {
    let s = start();
    for (n, args) in [&[][..], &["--http2-prior-knowledge"][..]]
        .iter()
        .enumerate()
    {
        for (accept, body) in [
            ("Accept: text/html", "<h1>site 502</h1>\n"),
            ("Accept: application/json", "{\"error\":\"bad gateway\"}"),
            (
                "Accept: text/html;q=0.000, application/json",
                "{\"error\":\"bad gateway\"}",
            ),
        ] {
            let mut with = args.to_vec();
            with.extend(["-H", accept]);
            let (head, got) = fetch(&s.levee, &with, &format!("/down/vary{n}"));
            assert_eq!(got, body, "{accept}: {head}");
            assert_eq!(field(&head, "vary"), Some("accept"), "{accept}: {head}");
        }
        // A page without a JSON variant is the same for every Accept.
        let (head, _) = fetch(&s.levee, args, &format!("/down-own/vary{n}"));
        assert_eq!(field(&head, "vary"), None, "{head}");
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

#[test]
fn an_http2_servers_error_gets_the_page_and_its_connection_carries_on() {
    let s = start();
    let page = "levee's page for 500";
    for (n, args) in [&[][..], &["--http2-prior-knowledge"][..]]
        .iter()
        .enumerate()
    {
        let path = format!("/h2app/boom?c={n}");
        let (head, body) = fetch(&s.levee, args, &path);
        assert!(head.contains(" 500"), "{head}");
        assert_eq!(body, page, "{head}");
        assert_eq!(
            logged(&s.levee, &path),
            ("500".to_owned(), page.len() as u64)
        );
        // The page goes out without the server's body read: the stream is
        // cancelled once its head is in, before the server could send more
        // than levee's window.
        let (head, body) = fetch(&s.levee, args, &format!("/h2app/bigboom?c={n}"));
        assert!(head.contains(" 500"), "{head}");
        assert_eq!(body, page, "{head}");
        let (head, body) = fetch(&s.levee, args, &format!("/h2app-raw/boom?c={n}"));
        assert!(head.contains(" 500"), "{head}");
        assert_eq!(body, "nginx's own error\n");
        let (_, body) = fetch(&s.levee, args, &format!("/h2app/ok?c={n}"));
        assert_eq!(body, "fine\n");
    }
    let big: Vec<_> = s.h2app.wait_entries("/h2app/bigboom", 2);
    for e in &big {
        let sent: usize = e.get("sent").parse().unwrap_or(BIG);
        assert!(sent < BIG / 2, "the whole body was read: {}", e.line);
    }
    // One worker, one shared connection: the cancelled streams left it
    // open for every request after them.
    let all = s.h2app.settled_entries();
    let conns: std::collections::HashSet<String> = all.iter().map(|e| e.get("conn")).collect();
    assert_eq!(conns.len(), 1, "{all:#?}");
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
