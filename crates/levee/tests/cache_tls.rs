//! The cache behind a TLS listener, with curl as the client: a hit is the
//! same response the miss was, `Strict-Transport-Security` included.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;

use common::*;
use support::{Nginx, ORIGIN};

/// An origin serving `body` at `file` and levee caching it behind a TLS
/// listener with `tls` in `[listener.tls]`.
fn cached(file: &str, body: &[u8], tls: &str) -> (Nginx, support::Levee) {
    let nginx = Nginx::start(ORIGIN);
    nginx.put_file(file, body);
    let setup = setup();
    let text = config(&setup, &nginx.addr(), tls, "")
        .replace("proxy = \"app\"\n", "proxy = \"app\"\ncache = true\n");
    let levee = setup.start(&text);
    (nginx, levee)
}

#[test]
fn hits_carry_hsts_as_misses_do() {
    let (_nginx, levee) = cached("c/a.txt", b"0123456789abcdef", "hsts = \"2h\"");
    let verbose = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let miss = https(&levee, "a.test", "/c/a.txt", &[]);
    assert_eq!(ok_body(&miss), "0123456789abcdef");
    let hit = https(&levee, "a.test", "/c/a.txt", &[]);
    assert_eq!(ok_body(&hit), "0123456789abcdef");
    assert!(
        verbose(&hit).contains("< Cache-Status: levee; hit"),
        "{}",
        verbose(&hit)
    );
    for out in [&miss, &hit] {
        assert!(
            verbose(out).contains("< Strict-Transport-Security: max-age=7200"),
            "{}",
            verbose(out)
        );
    }
}

/// An HTTP/2 client shares the store with HTTP/1.1 clients: what one
/// stored, the other is served as a hit, over either protocol.
#[test]
fn http2_clients_share_the_store_with_http1_clients() {
    let (nginx, levee) = cached("c/b.txt", b"stored once", "alpn = [\"h2\", \"http/1.1\"]");
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let miss = https(&levee, "a.test", "/c/b.txt", &["--http2"]);
    assert_eq!(ok_body(&miss), "stored once");
    assert!(stderr(&miss).contains("< HTTP/2 200"), "{}", stderr(&miss));
    assert!(
        stderr(&miss).contains("< cache-status: levee; fwd=miss; stored"),
        "{}",
        stderr(&miss)
    );
    let hit = https(&levee, "a.test", "/c/b.txt", &["--http2"]);
    assert_eq!(ok_body(&hit), "stored once");
    assert!(
        stderr(&hit).contains("< cache-status: levee; hit"),
        "{}",
        stderr(&hit)
    );
    let over_h1 = https(&levee, "a.test", "/c/b.txt", &[]);
    assert_eq!(ok_body(&over_h1), "stored once");
    assert!(
        stderr(&over_h1).contains("< Cache-Status: levee; hit"),
        "{}",
        stderr(&over_h1)
    );
    assert_eq!(nginx.wait_entries("/c/b.txt", 1).len(), 1);
}
