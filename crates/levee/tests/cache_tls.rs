//! The cache behind a TLS listener, with curl as the client: a hit is the
//! same response the miss was, `Strict-Transport-Security` included.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;

use common::*;
use support::{Nginx, ORIGIN};

#[test]
fn hits_carry_hsts_as_misses_do() {
    let nginx = Nginx::start(ORIGIN);
    nginx.put_file("c/a.txt", b"0123456789abcdef");
    let setup = setup();
    let text = config(&setup, &nginx.addr(), "hsts = \"2h\"", "")
        .replace("proxy = \"app\"\n", "proxy = \"app\"\ncache = true\n");
    let levee = setup.start(&text);
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
