//! Servers that answer with what levee cannot relay faithfully: the client
//! gets a clear 502, never a body that is not the one the server meant.
//!
//! The server here is a socket that answers every request with one canned
//! response, chosen by the request path's last segment, and closes.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use support::{LeveeSetup, curl};

/// Answers `GET /.../NAME` with `responses[NAME]`, then closes.
struct Canned {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Canned {
    fn start(responses: HashMap<&'static str, &'static [u8]>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split(' ').nth(1).unwrap_or("/");
                let name = path.rsplit('/').next().unwrap_or("");
                let answer = responses
                    .get(name)
                    .copied()
                    .unwrap_or(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(answer);
            }
        });
        Canned { port, stop }
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Regression: a response whose `Transfer-Encoding` has a coding besides
/// `chunked` (`gzip, chunked`, or `gzip` until close) was relayed with the
/// coding dropped, so the client took gzip-coded bytes for the body.
#[test]
fn a_transfer_coding_levee_cannot_undo_is_a_502() {
    let server = Canned::start(HashMap::from([
        (
            "gzip-chunked",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        ),
        (
            "gzip-close",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nhello"[..],
        ),
        (
            "chunked-twice",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        ),
        (
            "chunked",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        ),
    ]));
    let setup = LeveeSetup::new();
    let config = setup.proxy_config(&[&format!("127.0.0.1:{}", server.port)], "");
    let levee = setup.start(&config);
    let fetch = |name: &str| {
        let out = curl(&["-w", "\n%{http_code}", &levee.url(&format!("/x/{name}"))]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
        (status.to_owned(), body.to_owned())
    };
    for name in ["gzip-chunked", "gzip-close", "chunked-twice"] {
        let (status, body) = fetch(name);
        assert_eq!(status, "502", "{name}: {body}");
        assert!(!body.contains("hello"), "{name}: {body}");
    }
    assert_eq!(fetch("chunked"), ("200".to_owned(), "hello".to_owned()));
}
