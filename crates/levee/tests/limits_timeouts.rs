//! Request limits (414, 431, 413) and timeouts (408, idle keep-alive, 502, 504).

mod support;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Levee, LeveeSetup, Nginx, RawConn, curl, free_port, get_req, parse_head, raw_eof};

const LIMITS: &str = r#"
[limits]
max_request_line = "1k"
max_header_bytes = "4k"
max_headers = 20
max_body = "1m"
"#;

fn status_of(port: u16, request: &[u8]) -> (u16, bool) {
    let (bytes, closed) = raw_eof(port, request);
    let resp = parse_head(&bytes)
        .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&bytes)));
    (resp.status, closed)
}

#[test]
fn request_line_over_limit_is_414() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, LIMITS);
    let ok_path = format!("/{}", "a".repeat(800));
    let mut conn = RawConn::connect(levee.port);
    conn.send(&get_req(&ok_path, "a"));
    assert_eq!(conn.read_response("GET").status, 200);
    let long_path = format!("/{}", "b".repeat(2000));
    let (status, closed) = status_of(levee.port, &get_req(&long_path, "a"));
    assert_eq!(status, 414);
    assert!(closed, "connection not closed after 414");
    let log = nginx.access_log();
    assert!(
        !log.contains("bbbb"),
        "upstream saw the long request:\n{log}"
    );
}

#[test]
fn too_many_headers_is_431() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, LIMITS);
    let mut req = String::from("GET /many HTTP/1.1\r\nHost: a\r\n");
    for i in 0..30 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    assert_eq!(status_of(levee.port, req.as_bytes()).0, 431);
    assert!(!nginx.access_log().contains("/many"));
}

#[test]
fn head_over_byte_limit_is_431() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, LIMITS);
    let req = format!(
        "GET /big-head HTTP/1.1\r\nHost: a\r\nX-A: {}\r\nX-B: {}\r\n\r\n",
        "x".repeat(3000),
        "y".repeat(3000)
    );
    assert_eq!(status_of(levee.port, req.as_bytes()).0, 431);
    assert!(!nginx.access_log().contains("/big-head"));
}

#[test]
fn body_over_limit_is_413_without_touching_upstream() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, LIMITS);
    // Only the head is sent: levee must decide from Content-Length alone.
    let req = b"PUT /dav/too-big HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\n\r\n";
    assert_eq!(status_of(levee.port, req).0, 413);
    // Within the limit is fine.
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
        "--data-binary",
        "small",
        &levee.url("/dav/small"),
    ]);
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(code == "201" || code == "204", "small PUT got {code}");
    nginx.wait_entries("/dav/small", 1);
    assert!(
        !nginx.access_log().contains("too-big"),
        "{}",
        nginx.access_log()
    );
}

#[test]
fn max_requests_per_connection_closes_after_the_last() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "[limits]\nmax_requests_per_connection = 2\n");
    let mut conn = RawConn::connect(levee.port);
    conn.send(&get_req("/1", "a"));
    assert!(!conn.read_response("GET").closes());
    conn.send(&get_req("/2", "a"));
    let second = conn.read_response("GET");
    assert_eq!(second.status, 200);
    assert!(
        second.closes(),
        "last allowed response lacks Connection: close"
    );
    assert!(conn.closed_within(Duration::from_secs(3)));
}

#[test]
fn stalled_request_head_gets_408() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "[timeouts]\nrequest_head = \"1s\"\n");
    let mut conn = RawConn::connect(levee.port);
    let start = Instant::now();
    conn.send(b"GET /stalled HTTP/1.1\r\nHost: a\r\n");
    let (bytes, closed) = conn.read_to_close(Duration::from_secs(6));
    let elapsed = start.elapsed();
    let resp = parse_head(&bytes)
        .unwrap_or_else(|| panic!("no 408: {:?}", String::from_utf8_lossy(&bytes)));
    assert_eq!(resp.status, 408);
    assert!(closed, "connection not closed after 408");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "408 after {elapsed:?}, want about 1 s"
    );
    levee.wait_stdout_line(&[" 408 "]);
    assert!(!nginx.access_log().contains("/stalled"));
}

#[test]
fn idle_keepalive_connection_is_closed() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "[timeouts]\nkeepalive = \"1s\"\n");
    let mut conn = RawConn::connect(levee.port);
    conn.send(&get_req("/idle", "a"));
    assert_eq!(conn.read_response("GET").status, 200);
    let start = Instant::now();
    assert!(
        conn.closed_within(Duration::from_secs(5)),
        "idle connection kept past keepalive"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800),
        "closed after only {elapsed:?}, want about 1 s"
    );
}

#[test]
fn refused_upstream_is_502_promptly() {
    let setup = LeveeSetup::new();
    let dead = format!("127.0.0.1:{}", free_port());
    let config = setup.proxy_config(&[&dead], "");
    let levee = setup.start(&config);
    let start = Instant::now();
    let out = curl(&["-o", "/dev/null", "-w", "%{http_code}", &levee.url("/down")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "502");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "502 took {:?}",
        start.elapsed()
    );
    levee.wait_stdout_line(&["/down", " 502 "]);
}

/// A fake upstream that accepts connections and never answers. nginx cannot
/// be made to stall a response head, so a bare listener stands in for it.
struct SilentUpstream {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SilentUpstream {
    fn start() -> SilentUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(s) = stream {
                    held.push(s);
                }
            }
        });
        SilentUpstream { port, stop }
    }
}

impl Drop for SilentUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn silent_upstream_is_504_after_upstream_read() {
    let fake = SilentUpstream::start();
    let setup = LeveeSetup::new();
    let config = setup.proxy_config(
        &[&format!("127.0.0.1:{}", fake.port)],
        "[timeouts]\nupstream_read = \"1s\"\n",
    );
    let levee = setup.start(&config);
    let start = Instant::now();
    let out = curl(&["-o", "/dev/null", "-w", "%{http_code}", &levee.url("/hang")]);
    let elapsed = start.elapsed();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "504");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "504 after {elapsed:?}, want about 1 s"
    );
    levee.wait_stdout_line(&["/hang", " 504 "]);
}
