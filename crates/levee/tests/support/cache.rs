//! A levee with a caching route in front of a real nginx origin whose
//! locations set the caching fields the cache tests need. Every test counts
//! the requests that reached the origin in nginx's access log.
//!
//! The tier matrix: with `LEVEE_TEST_CACHE_TIER=disk` (or `shared`, or
//! `memcached`) every cache test runs with a memory tier that takes nothing
//! (`max_object_size = 1`) and a disk tier (or a fleet with a real Redis as
//! shared tier, or a real memcached as the fleet's shared tier), so every
//! hit comes from that tier. Responses are checked to say so
//! (`Cache-Status: …; tier=disk`) and the parameter is then removed, so
//! the same assertions hold for every tier (scripts/test runs all four).

use std::thread;
use std::time::Duration;

use super::*;

/// nginx locations: each sets the caching fields a test needs.
pub const ORIGIN: &str = r#"
        location /c/ { add_header Cache-Control "max-age=60"; }
        location /ns/ { add_header Cache-Control "no-store"; }
        location /short/ { add_header Cache-Control "max-age=1"; }
        location /refresh/ {
            add_header Cache-Control "max-age=1";
            if ($http_if_none_match) { add_header Cache-Control "max-age=60"; }
        }
        # A refresh (it sends If-None-Match) gets a minute: with a second and a
        # Date in whole seconds, the refreshed copy may be stale again by the
        # test's next request, which would start another refresh.
        location /swr/ {
            add_header Cache-Control "max-age=1, stale-while-revalidate=30";
            if ($http_if_none_match) { add_header Cache-Control "max-age=60, stale-while-revalidate=30"; }
        }
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
        location /conn/ {
            add_header Cache-Control "max-age=100000";
            add_header Connection "a, b";
            add_header a 1;
            add_header b 2;
            add_header c 3;
            add_header Proxy-Authenticate "Basic realm=x";
        }
        location /agelist/ { add_header Cache-Control "max-age=3600"; add_header Age "7200, 0"; }
        location /smaxs/ { add_header Cache-Control "max-age=100, s-maxage=1"; }
        location /smswr/ {
            add_header Cache-Control "s-maxage=1, stale-while-revalidate=30";
            if ($http_if_none_match) { add_header Cache-Control "s-maxage=60, stale-while-revalidate=30"; }
        }
        location /sie/ { add_header Cache-Control "max-age=1, stale-if-error=60"; }
        location /ms/ {
            add_header Cache-Control "max-age=60";
            if ($request_method = M-SEARCH) { return 200 "searched"; }
            if ($request_method = BREW) { return 418 "no"; }
        }
        location = /s500 { add_header Cache-Control "max-age=60" always; return 500 "broken"; }
        location = /s599 { add_header Cache-Control "max-age=60" always; return 599 "odd"; }
        location = /s500lm {
            add_header Last-Modified "Thu, 01 Jan 2015 00:00:00 GMT" always;
            return 500 "broken";
        }
        location /mu/ { add_header Cache-Control "must-understand, no-store, max-age=60"; }
        location /cdn/ { add_header Cache-Control "no-store"; add_header CDN-Cache-Control "max-age=60"; }
        location /cdnbad/ {
            add_header Cache-Control "no-store";
            add_header CDN-Cache-Control "max-age=\"60\"";
        }
        location /own/ {
            add_header Cache-Control "no-store";
            add_header CDN-Cache-Control "no-store";
            add_header Levee-Cache-Control "max-age=60";
        }
        location /ownns/ { add_header Cache-Control "max-age=60"; add_header Levee-Cache-Control "no-store"; }
        location /sur/ { add_header Cache-Control "no-store"; add_header Surrogate-Control "max-age=60"; }
        location /upd/ {
            add_header Cache-Control "max-age=1";
            add_header X-Version $http_x_version;
            if ($http_if_none_match) {
                add_header Cache-Control "max-age=60";
                add_header X-Version $http_x_version;
                add_header Set-Cookie "s=1";
            }
        }
        location /hf/ { add_header Cache-Control "max-age=$http_x_max_age"; }
        location /echo/ {
            add_header Cache-Control "max-age=60";
            add_header X-Request-Cache-Control $http_cache_control;
        }
        location /trailer/ {
            gzip on; gzip_min_length 0; gzip_types *; gzip_proxied any;
            add_header Cache-Control "max-age=60";
            add_trailer X-Trailer "t" always;
        }
        location /lm/ { etag off; add_header Cache-Control "max-age=1"; }
        location = /make-port { add_header Location "http://site:8080/c/a.txt" always; return 201 "made"; }
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
    /// The tier every hit must come from (`None`: memory).
    pub tier: Option<&'static str>,
    /// The shared tier's Redis, for `LEVEE_TEST_CACHE_TIER=shared` (and the
    /// fleet's, for `memcached`).
    pub redis: Option<Redis>,
    /// The shared tier's memcached, for `LEVEE_TEST_CACHE_TIER=memcached`.
    pub memcached: Option<Memcached>,
    /// The disk tier's directory.
    pub disk: Option<TempDir>,
}

/// The disk tier's state in a `/cache` answer ("" without one).
pub fn disk_state(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["disk"]["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The tier the matrix runs against (`LEVEE_TEST_CACHE_TIER`), as hits
/// name it: memcached is the shared tier on another store.
pub fn matrix_tier() -> Option<&'static str> {
    match std::env::var("LEVEE_TEST_CACHE_TIER").as_deref() {
        Ok("disk") => Some("disk"),
        Ok("shared") | Ok("memcached") => Some("shared"),
        Ok("memory") | Ok("") | Err(_) => None,
        Ok(other) => {
            panic!("LEVEE_TEST_CACHE_TIER={other}: expected memory, disk, shared or memcached")
        }
    }
}

/// Whether the matrix's shared tier is on memcached.
pub fn matrix_on_memcached() -> bool {
    std::env::var("LEVEE_TEST_CACHE_TIER").as_deref() == Ok("memcached")
}

/// Removes `; tier=T` from a response's `Cache-Status`, checking that an
/// answer from the store came from `tier` (when the test did not size the
/// memory tier itself, `strict`).
pub fn strip_tier(r: &mut Response, tier: Option<&str>, strict: bool) {
    for (name, value) in r.headers.iter_mut() {
        if !name.eq_ignore_ascii_case("cache-status") {
            continue;
        }
        let said = value
            .split("; ")
            .find_map(|p| p.strip_prefix("tier="))
            .map(str::to_owned);
        if let Some(t) = &said {
            *value = value.replace(&format!("; tier={t}"), "");
        }
        // A shared object is there once Redis has it: a round trip after
        // the miss's last byte, so a request right after it may wait for
        // it. Answered from the tier all the same.
        if tier == Some("shared") && said.as_deref() == Some("shared") {
            *value = value.replace("levee; hit; collapsed", "levee; hit");
        }
        if value.starts_with("levee; hit") && (strict || said.is_some()) {
            assert_eq!(said.as_deref(), tier, "the tier of `{value}`");
        }
    }
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
        "conn/a.txt",
        "agelist/a.txt",
        "sie/a.txt",
        "smaxs/a.txt",
        "smswr/a.txt",
        "ms/a.txt",
        "mu/a.txt",
        "cdn/a.txt",
        "cdnbad/a.txt",
        "own/a.txt",
        "ownns/a.txt",
        "sur/a.txt",
        "upd/a.txt",
        "refresh/a.txt",
        "hf/a.txt",
        "echo/a.txt",
        "trailer/a.txt",
        "lm/a.txt",
    ] {
        nginx.put_file(f, b"0123456789abcdef");
    }
    let setup = LeveeSetup::new();
    let admin = free_port();
    let tier = matrix_tier();
    let sized = tail.contains("max_object_size");
    let (mut redis, mut disk, mut memcached) = (None, None, None);
    let tail = match tier {
        None => tail.to_owned(),
        Some(t) => {
            let memory = if sized { "" } else { "max_object_size = 1\n" };
            // A test that sizes objects means every tier's cap.
            let cap = tail
                .lines()
                .find(|l| l.starts_with("max_object_size"))
                .map(|l| format!("{l}\n"))
                .unwrap_or_default();
            let extra = if t == "disk" {
                let dir = TempDir::new("cache-disk");
                let text = format!(
                    "\n[cache.disk]\npath = \"{}\"\nmax_size = \"64m\"\n{cap}",
                    dir.path().display()
                );
                disk = Some(dir);
                text
            } else {
                let r = Redis::start();
                let store = if matrix_on_memcached() {
                    let m = Memcached::start();
                    let text = format!("store = \"memcached\"\nmemcached = \"{}\"\n", m.addr());
                    memcached = Some(m);
                    text
                } else {
                    String::new()
                };
                let text = format!(
                    "\n[cache.shared]\n{store}timeout = \"1s\"\n{cap}\n[fleet]\nname = \"matrix\"\nredis = \"redis://127.0.0.1:{}\"\ntimeout = \"1s\"\n",
                    r.port
                );
                redis = Some(r);
                text
            };
            format!("{memory}{tail}{extra}")
        }
    };
    let text = config(&setup, admin, &nginx.addr(), route, &tail);
    let levee = setup.start(&text);
    let b = Bench {
        nginx,
        levee,
        admin,
        config: text,
        tier,
        redis,
        memcached,
        disk,
    };
    b.wait_ready();
    b
}

/// Answered from the store, without waiting for a fetch. levee stores a
/// response (and ends its fetch's flight) before its last byte goes out, so
/// a request right after the miss finds it stored.
pub fn is_hit(r: &Response) -> bool {
    r.header("cache-status") == Some("levee; hit")
}

impl Bench {
    /// Waits until the disk tier has read its journal (before that every
    /// lookup misses), and the fleet has reached Redis.
    pub fn wait_ready(&self) {
        let Some(t) = self.tier else { return };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = admin_request(self.admin, "GET", "/cache", "");
            let ready = status == 200
                && match t {
                    "disk" => disk_state(&body) == "ready",
                    _ => metric(self.admin, "levee_fleet_redis_up") == Some(1.0),
                };
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the {t} tier is not ready: {body}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Entries held by the tier under test: the memory store's, the disk
    /// tier's, or the objects in the shared tier's Redis.
    pub fn entries(&self) -> f64 {
        if let Some(m) = &self.memcached {
            return m.objects("matrix").len() as f64;
        }
        match (self.tier, &self.redis) {
            (Some("shared"), Some(r)) => r
                .cli(&["--scan", "--pattern", "{matrix}:c:*"])
                .lines()
                .count() as f64,
            (Some("disk"), _) => metric(self.admin, "levee_cache_disk_entries").unwrap_or(-1.0),
            _ => metric(self.admin, "levee_cache_entries").unwrap_or(-1.0),
        }
    }

    /// Bytes held by the tier under test (see [`Bench::entries`]).
    pub fn bytes(&self) -> f64 {
        if let Some(m) = &self.memcached {
            return m.objects("matrix").iter().map(|(_, n)| *n as f64).sum();
        }
        match (self.tier, &self.redis) {
            (Some("shared"), Some(r)) => r
                .cli(&["--scan", "--pattern", "{matrix}:c:*"])
                .lines()
                .filter_map(|k| r.cli(&["STRLEN", k]).trim().parse::<f64>().ok())
                .sum(),
            (Some("disk"), _) => metric(self.admin, "levee_cache_disk_bytes").unwrap_or(-1.0),
            _ => metric(self.admin, "levee_cache_bytes").unwrap_or(-1.0),
        }
    }

    /// A response as the tests compare it: see [`strip_tier`].
    pub fn normal(&self, mut r: Response) -> Response {
        strip_tier(
            &mut r,
            self.tier,
            !self.config.contains("max_object_size = \""),
        );
        r
    }

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
            .map(|c| self.normal(c.join().expect("client thread")))
            .collect()
    }

    /// One request on a fresh connection.
    pub fn request(&self, method: &str, path: &str, headers: &str) -> Response {
        let mut conn = RawConn::connect(self.levee.port);
        let req = format!("{method} {path} HTTP/1.1\r\nHost: site\r\n{headers}\r\n");
        conn.send(req.as_bytes());
        self.normal(conn.read_response(method))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, "")
    }

    /// Requests for `path` the origin has logged, once at least `expected`
    /// are (nginx logs a request after its response, so on a loaded machine
    /// the line can come late); a count above `expected` shows too.
    pub fn origin_requests(&self, path: &str, expected: usize) -> usize {
        self.nginx.wait_entries(path, expected);
        self.origin_count(path)
    }

    /// Requests for `path` the origin has logged (complete ones).
    pub fn origin_count(&self, path: &str) -> usize {
        // A moment for work levee does after answering (a background
        // refresh), then every answered request is in the log.
        thread::sleep(Duration::from_millis(100));
        self.nginx
            .settled_entries()
            .iter()
            .filter(|e| e.get("uri") == path)
            .count()
    }
}

/// The script of [`RawOrigin`]: answers every request with the same bytes
/// (hex in argv[2]), then closes; appends a line to argv[3] per request.
const RAW_ORIGIN: &str = r#"
import socket, sys
port, answer, log = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
while True:
    c, _ = s.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        got = c.recv(4096)
        if not got:
            break
        head += got
    with open(log, "a") as f:
        f.write(head.split(b"\r\n")[0].decode() + "\n")
    c.sendall(answer)
    c.close()
"#;

/// An origin that sends bytes nginx will not (a body shorter than its
/// Content-Length): python with a socket, one fixed answer per connection.
pub struct RawOrigin {
    child: std::process::Child,
    pub port: u16,
    dir: TempDir,
}

impl RawOrigin {
    pub fn start(answer: &[u8]) -> RawOrigin {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let dir = TempDir::new("raw-origin");
        let hex: String = answer.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = std::process::Command::new(python_with("socket"))
            .args(["-c", RAW_ORIGIN, &port.to_string(), &hex])
            .arg(dir.join("requests.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr log"))
            .process_group(0)
            .spawn()
            .expect("spawn python");
        wait_listening(
            &mut child,
            [127, 0, 0, 1],
            port,
            "python origin",
            &[dir.join("stderr.log")],
        );
        RawOrigin { child, port, dir }
    }

    /// Request lines received so far (the readiness probe sends none).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
