//! The cache and compression on one route (docs/cache.md,
//! "Compression"): the store keeps the identity form of a response, and
//! every hit is compressed for its own client, so clients that accept
//! different codings, or none, share one stored response and each gets
//! what it accepts. nginx as the origin, curl as the clients.

mod support;

use std::fs;

use support::{TempDir, curl};

fn page() -> Vec<u8> {
    (0..3000)
        .flat_map(|i| format!("<li>cached item {i}, compressible</li>\n").into_bytes())
        .collect()
}

/// The head (lower-case) and body of a GET with `Accept-Encoding: accept`;
/// `decode`: curl decodes the body.
fn get(url: &str, accept: &str, decode: bool) -> (String, Vec<u8>) {
    let dir = TempDir::new("cache-curl");
    let head = dir.join("head").display().to_string();
    let accept = format!("Accept-Encoding: {accept}");
    let mut args = vec!["-D", head.as_str(), "-H", accept.as_str()];
    if decode {
        args.push("--compressed");
    }
    args.push(url);
    let out = curl(&args);
    assert!(out.status.success(), "{out:?}");
    let head = fs::read_to_string(&head)
        .expect("curl wrote the head")
        .to_ascii_lowercase();
    (head, out.stdout)
}

fn field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::trim))
}

#[test]
fn clients_of_different_codings_share_one_stored_response() {
    let bench = support::start("compress = true\ncache_status = true\n", "");
    bench.nginx.put_file("c/page.html", &page());
    let url = bench.levee.url("/c/page.html");

    // Client A accepts Brotli: the miss is compressed for it.
    let (head, body) = get(&url, "br", false);
    assert_eq!(field(&head, "content-encoding"), Some("br"), "{head}");
    assert!(body.len() < page().len() / 4);
    // Client B accepts nothing: the same key, a hit, the identity form.
    let (head, body) = get(&url, "identity", false);
    assert!(head.contains("levee; hit"), "{head}");
    assert_eq!(field(&head, "content-encoding"), None, "{head}");
    assert_eq!(body, page());
    // No Accept-Encoding at all: the identity form too.
    let out = curl(&["-D", "-", "-o", "/dev/null", &url]);
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("levee; hit") && !head.contains("content-encoding"),
        "{head}"
    );
    // A again, and a gzip client: hits, each compressed for its client.
    for coding in ["br", "gzip", "zstd"] {
        let (head, raw) = get(&url, coding, false);
        assert!(head.contains("levee; hit"), "{head}");
        assert_eq!(field(&head, "content-encoding"), Some(coding), "{head}");
        assert!(raw.len() < page().len() / 4, "{coding}");
        assert!(
            field(&head, "vary")
                .unwrap_or_default()
                .contains("accept-encoding")
        );
        let (_, decoded) = get(&url, coding, true);
        assert_eq!(decoded, page(), "{coding}");
    }
    // One request reached nginx: every answer came from one stored response.
    assert_eq!(bench.origin_requests("/c/page.html", 1), 1);
}
