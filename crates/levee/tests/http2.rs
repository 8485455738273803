//! HTTP/2 to clients with real clients: `curl --http2` over TLS (ALPN
//! `h2`, SNI), `curl --http2-prior-knowledge` for h2c and `h2load` for
//! multiplexed load, against a real nginx upstream over HTTP/1.1. The frame-level suite is in http2_frames.rs.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;

use common::*;
use support::{Levee, Nginx, curl};

const ALPN: &str = "alpn = [\"h2\", \"http/1.1\"]";

/// [`https`] with `--http2` (curl's last protocol flag wins).
fn h2(levee: &Levee, name: &str, path: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--http2"];
    all.extend_from_slice(args);
    https(levee, name, path, &all)
}

fn verbose(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn curl_http2_over_tls_get_head_post_and_large_bodies() {
    let nginx = Nginx::start_default();
    let setup = setup();
    nginx.put_file("files/big.bin", &vec![b'x'; 3_000_000]);
    let cfg = config(&setup, &nginx.addr(), ALPN, "");
    let levee = setup.start(&cfg);

    // GET over h2 to each SNI name; nginx sees HTTP/1.1 with Host from :authority.
    let a = h2(&levee, "a.test", "/one", &[]);
    assert!(ok_body(&a).starts_with("hello from"), "{a:?}");
    assert!(verbose(&a).contains("< HTTP/2 200"), "{}", verbose(&a));
    assert!(subject(&a).contains("CN=a.test"));
    let b = h2(&levee, "x.b.test", "/two", &[]);
    ok_body(&b);
    assert!(subject(&b).contains("CN=wild.b.test"));
    let e = nginx.wait_entries("/two", 1);
    assert_eq!(e[0].get("xfp"), "https");
    assert_eq!(e[0].get("host"), format!("x.b.test:{}", levee.port));
    assert_eq!(e[0].get("proto"), "HTTP/1.1");

    // HEAD: headers with the length, no body.
    let head = h2(&levee, "a.test", "/files/big.bin", &["-I"]);
    let v = ok_body(&head);
    assert!(
        v.contains("HTTP/2 200") && v.contains("content-length: 3000000"),
        "{v}"
    );

    // A large response arrives whole, through the flow-control windows.
    let big = h2(&levee, "a.test", "/files/big.bin", &[]);
    assert_eq!(big.stdout.len(), 3_000_000, "{}", verbose(&big));

    // PUT and POST bodies, relayed to nginx with their length.
    let file = levee.dir().join("body.bin");
    std::fs::write(&file, "y".repeat(200_000)).expect("body file");
    let at = format!("@{}", file.display());
    let put = h2(
        &levee,
        "a.test",
        "/dav/up.txt",
        &["-X", "PUT", "--data-binary", &at],
    );
    assert!(put.status.success(), "{}", verbose(&put));
    let stored = std::fs::read(nginx.root().join("dav/up.txt")).expect("stored body");
    assert_eq!(stored.len(), 200_000);
    // A client that waits for 100 Continue gets it from levee.
    let expect = h2(
        &levee,
        "a.test",
        "/dav/expect.txt",
        &[
            "-X",
            "PUT",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &at,
        ],
    );
    assert!(
        verbose(&expect).contains("< HTTP/2 100"),
        "{}",
        verbose(&expect)
    );
    assert!(
        verbose(&expect).contains("< HTTP/2 201"),
        "{}",
        verbose(&expect)
    );
    let post = h2(&levee, "a.test", "/echo", &["--data-binary", "abc"]);
    assert!(ok_body(&post).starts_with("hello from"));
    let e = nginx.wait_entries("/echo", 1);
    assert_eq!(e[0].get("cl"), "3");
}

#[test]
fn http1_stays_the_default_without_h2_in_alpn() {
    let (_nginx, levee) = start("", |_| {});
    let a = h2(&levee, "a.test", "/", &[]);
    ok_body(&a);
    assert!(verbose(&a).contains("< HTTP/1.1 200"), "{}", verbose(&a));
}

#[test]
fn h2c_with_prior_knowledge_and_http1_on_the_same_listener() {
    let nginx = Nginx::start_default();
    let setup = support::LeveeSetup::new();
    let log = setup.dir.path().join("access.log");
    let extra = format!("[log]\naccess = \"{}\"\n", log.display());
    let cfg = setup.proxy_config(&[&nginx.addr()], &extra).replacen(
        "[[listener]]\n",
        "[[listener]]\nhttp2 = \"prior-knowledge\"\n",
        1,
    );
    assert!(cfg.contains("prior-knowledge"), "{cfg}");
    let levee = setup.start(&cfg);
    let url = levee.url("/h2c");
    let out = curl(&["-sv", "--http2-prior-knowledge", &url]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello from"));
    assert!(verbose(&out).contains("< HTTP/2 200"), "{}", verbose(&out));
    let e = nginx.wait_entries("/h2c", 1);
    assert_eq!(e[0].get("xfp"), "http");
    // One access log line per stream, with the protocol the client spoke.
    let logged = support::poll(std::time::Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines()
            .find(|l| l.contains("\"GET /h2c HTTP/2.0\" 200"))
            .map(str::to_owned)
    });
    assert!(logged.is_some(), "{:?}", std::fs::read_to_string(&log));
    let one = curl(&["-sv", "--http1.1", &url]);
    assert!(
        verbose(&one).contains("< HTTP/1.1 200"),
        "{}",
        verbose(&one)
    );
}

/// Runs `h2load` (nghttp2's load client) and returns what it printed.
fn h2load(args: &[&str]) -> String {
    let out = std::process::Command::new("h2load")
        .args(args)
        .output()
        .expect("h2load (nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", verbose(&out));
    text
}

/// h2load's summary says every request of `n` came back 2xx.
fn all_succeeded(report: &str, n: usize) {
    let requests = format!(
        "requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed, 0 errored, 0 timeout"
    );
    assert!(report.contains(&requests), "{report}");
    assert!(
        report.contains(&format!("status codes: {n} 2xx")),
        "{report}"
    );
}

#[test]
fn h2load_multiplexed_load_over_tls_and_h2c() {
    // Many streams at once on each connection, every one answered by the
    // upstream through levee, over TLS (ALPN h2) and over h2c.
    let (nginx, levee) = start(ALPN, |_| {});
    let url = format!("https://127.0.0.1:{}/load", levee.port);
    let report = h2load(&["-n", "3000", "-c", "6", "-m", "20", &url]);
    assert!(report.contains("Application protocol: h2"), "{report}");
    all_succeeded(&report, 3000);
    assert_eq!(nginx.wait_entries("/load", 3000).len(), 3000);

    let nginx = Nginx::start_default();
    let setup = support::LeveeSetup::new();
    let cfg = setup.proxy_config(&[&nginx.addr()], "").replacen(
        "[[listener]]\n",
        "[[listener]]\nhttp2 = \"prior-knowledge\"\n",
        1,
    );
    let levee = setup.start(&cfg);
    let report = h2load(&["-n", "2000", "-c", "4", "-m", "20", &levee.url("/clear")]);
    assert!(report.contains("Application protocol: h2c"), "{report}");
    all_succeeded(&report, 2000);
    assert_eq!(nginx.wait_entries("/clear", 2000).len(), 2000);
}
