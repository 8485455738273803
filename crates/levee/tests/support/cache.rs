//! A levee with a caching route in front of a real nginx origin whose
//! locations set the caching fields the cache tests need. Every test counts
//! the requests that reached the origin in nginx's access log.

use std::thread;
use std::time::Duration;

use super::*;

/// nginx locations: each sets the caching fields a test needs.
pub const ORIGIN: &str = r#"
        location /c/ { add_header Cache-Control "max-age=60"; }
        location /ns/ { add_header Cache-Control "no-store"; }
        location /short/ { add_header Cache-Control "max-age=1"; }
        location /swr/ { add_header Cache-Control "max-age=1, stale-while-revalidate=30"; }
        location /mr/ { add_header Cache-Control "max-age=1, must-revalidate"; }
        location /vary/ { add_header Cache-Control "max-age=60"; add_header Vary "Accept-Encoding"; }
        location /tag/ { add_header Cache-Control "max-age=60"; add_header Surrogate-Key "red blue"; }
        location /slowc/ { limit_rate 20k; add_header Cache-Control "max-age=60"; }
        location /slowns/ { limit_rate 20k; add_header Cache-Control "no-store"; }
        location = /make { add_header Location "http://site/c/a.txt" always; return 201 "made"; }
        location = /elsewhere { add_header Location "http://other/c/a.txt" always; return 201 "made"; }
        location /priv/ { add_header Cache-Control "private, max-age=60"; }
        location /nocache/ { add_header Cache-Control "no-cache"; }
        location /smax/ { add_header Cache-Control "max-age=0, s-maxage=60"; }
        location /badexp/ { add_header Expires "soon"; }
        location /heur/ { }
        location /cookie/ { add_header Cache-Control "max-age=60"; add_header Set-Cookie "a=b"; }
        location /aged/ { add_header Cache-Control "max-age=60"; add_header Age "30"; }
        location /dav/ {
            dav_methods PUT DELETE;
            create_full_put_path on;
            add_header Cache-Control "max-age=60";
        }
"#;

/// A levee config with a caching route to `origin`; `route` and `tail` are
/// added to the route and after the upstream.
pub fn config(setup: &LeveeSetup, admin: u16, origin: &str, route: &str, tail: &str) -> String {
    upstream_config(
        setup,
        admin,
        &[format!("\"{origin}\"")],
        &format!("cache = true\n{route}"),
        "",
        &format!("[cache]\npurge_allow = \"127.0.0.1/32\"\n{tail}"),
    )
}

pub struct Bench {
    pub nginx: Nginx,
    pub levee: Levee,
    pub admin: u16,
    /// The config levee started with.
    pub config: String,
}

pub fn start(route: &str, tail: &str) -> Bench {
    let nginx = Nginx::start(ORIGIN);
    for f in [
        "priv/a.txt",
        "nocache/a.txt",
        "smax/a.txt",
        "badexp/a.txt",
        "heur/a.txt",
        "cookie/a.txt",
        "aged/a.txt",
        "c/a.txt",
        "ns/a.txt",
        "short/a.txt",
        "mr/a.txt",
        "vary/a.txt",
        "tag/a.txt",
        "tag/b.txt",
    ] {
        nginx.put_file(f, b"0123456789abcdef");
    }
    let setup = LeveeSetup::new();
    let admin = free_port();
    let text = config(&setup, admin, &nginx.addr(), route, tail);
    let levee = setup.start(&text);
    Bench {
        nginx,
        levee,
        admin,
        config: text,
    }
}

/// Answered from the store, without waiting for a fetch. levee stores a
/// response (and ends its fetch's flight) before its last byte goes out, so
/// a request right after the miss finds it stored.
pub fn is_hit(r: &Response) -> bool {
    r.header("cache-status") == Some("levee; hit")
}

impl Bench {
    /// `n` clients at once on their own connections, each getting `path`.
    pub fn parallel_gets(&self, path: &'static str, n: usize) -> Vec<Response> {
        let port = self.levee.port;
        let clients: Vec<_> = (0..n)
            .map(|_| {
                thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        let mut conn = RawConn::connect(port);
                        conn.send(&get_req(path, "site"));
                        conn.read_response("GET")
                    })
                    .expect("spawn a client thread")
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client thread"))
            .collect()
    }

    /// One request on a fresh connection.
    pub fn request(&self, method: &str, path: &str, headers: &str) -> Response {
        let mut conn = RawConn::connect(self.levee.port);
        let req = format!("{method} {path} HTTP/1.1\r\nHost: site\r\n{headers}\r\n");
        conn.send(req.as_bytes());
        conn.read_response(method)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, "")
    }

    /// Requests for `path` the origin has logged (complete ones).
    pub fn origin_count(&self, path: &str) -> usize {
        // nginx logs after the response; give it a moment to be sure.
        thread::sleep(Duration::from_millis(100));
        self.nginx
            .entries()
            .iter()
            .filter(|e| e.get("uri") == path)
            .count()
    }
}
