//! The cache and compression on one route (docs/cache.md,
//! "Compression"): the store keeps the identity form of a response and a
//! compressed variant per coding made from it, so clients that accept
//! different codings, or none, share one stored response and each gets
//! what it accepts, and a variant never outlives its identity entry.
//! nginx as the origin, curl as the clients.
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

/// `page()` with every item renamed: the origin's object changed.
fn changed_page() -> Vec<u8> {
    String::from_utf8(page())
        .expect("the page is text")
        .replace("cached item", "changed item, longer")
        .into_bytes()
}

#[test]
fn a_stored_coded_variant_answers_until_its_identity_entry_changes() {
    let bench = support::start("compress = true\ncache_status = true\n", "");
    for dir in ["c", "short"] {
        bench.nginx.put_file(&format!("{dir}/page.html"), &page());
    }
    let url = bench.levee.url("/c/page.html");
    // The miss, then the first gzip hit: compressed once and stored.
    get(&url, "gzip", false);
    let (head, _) = get(&url, "gzip", false);
    assert!(head.contains("levee; hit"), "{head}");
    assert!(!head.contains("detail=variant"), "{head}");
    // The second gzip hit is the stored variant, and decodes to the page.
    let (head, raw) = get(&url, "gzip", false);
    assert!(head.contains("levee; hit; detail=variant"), "{head}");
    assert_eq!(field(&head, "content-encoding"), Some("gzip"), "{head}");
    assert!(raw.len() < page().len() / 4);
    let (head, decoded) = get(&url, "gzip", true);
    assert!(head.contains("detail=variant"), "{head}");
    assert_eq!(decoded, page());
    // Each coding has its own variant; identity clients get identity.
    let (head, _) = get(&url, "br", false);
    assert!(!head.contains("detail=variant"), "{head}");
    assert_eq!(field(&head, "content-encoding"), Some("br"), "{head}");
    let (head, body) = get(&url, "identity", false);
    assert_eq!(field(&head, "content-encoding"), None, "{head}");
    assert_eq!(body, page());

    // Purged and changed at the origin: the old variant is never served.
    bench.nginx.put_file("c/page.html", &changed_page());
    let out = curl(&[
        "-sX",
        "PURGE",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    for _ in 0..3 {
        let (head, decoded) = get(&url, "gzip", true);
        assert_eq!(decoded, changed_page(), "{head}");
    }
    assert_eq!(bench.origin_requests("/c/page.html", 2), 2);

    // Changed at the origin after the entry went stale (max-age=1): the
    // refetched identity entry makes the old variant unusable.
    let url = bench.levee.url("/short/page.html");
    for _ in 0..3 {
        let (_, decoded) = get(&url, "gzip", true);
        assert_eq!(decoded, page());
    }
    bench.nginx.put_file("short/page.html", &changed_page());
    // Wait (generously) until levee has fetched the changed page.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (head, decoded) = get(&url, "gzip", true);
        if decoded == changed_page() {
            break;
        }
        assert_eq!(decoded, page(), "{head}");
        assert!(std::time::Instant::now() < deadline, "never refetched");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The hits that follow within its second of freshness find the old
    // variant under their key, made from the entry that was replaced.
    for _ in 0..3 {
        let (head, decoded) = get(&url, "gzip", true);
        assert_eq!(decoded, changed_page(), "{head}");
    }
}

/// A hit too large for a stored compressed copy (over 256 KiB) is
/// compressed on its way out; the access log counts the bytes that went,
/// not the stored identity length.
#[test]
fn a_hit_compressed_on_its_way_out_is_logged_with_the_bytes_sent() {
    let nginx = support::Nginx::start(support::ORIGIN);
    let big: Vec<u8> = (0..9000)
        .flat_map(|i| format!("<li>a large cached item {i}</li>\n").into_bytes())
        .collect();
    assert!(big.len() > 256 * 1024);
    nginx.put_file("c/big.html", &big);
    let setup = support::LeveeSetup::new();
    let log = setup.dir.join("access.log");
    let text = support::config(
        &setup,
        support::free_port(),
        &nginx.addr(),
        "compress = true\ncache_status = true\n",
        "",
    )
    .replace(
        "access = \"off\"",
        &format!("access = \"{}\"", log.display()),
    );
    let levee = setup.start(&text);
    let url = levee.url("/c/big.html");
    let (head, _) = get(&url, "gzip", false);
    assert!(head.contains("fwd=miss; stored"), "{head}");
    // As sent: chunked, curl told not to undo it (--raw): the access log
    // counts the body's bytes on the wire, as nginx's $body_bytes_sent.
    let out = curl(&["-D", "-", "--raw", "-H", "Accept-Encoding: gzip", &url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("levee; hit"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let body_len = out.stdout.len() - head.len() - 4;
    assert!(body_len < big.len() / 4, "{body_len}");
    let logged = support::poll(std::time::Duration::from_secs(10), || {
        let text = fs::read_to_string(&log).ok()?;
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" /c/big.html "))
            .collect();
        let line = lines.get(1)?;
        let after = line.split_once("\" ")?.1;
        after.split(' ').nth(1)?.parse::<usize>().ok()
    })
    .expect("an access log line for the hit");
    assert_eq!(
        logged,
        body_len,
        "the compressed bytes sent, not {}: {}",
        big.len(),
        fs::read_to_string(&log).unwrap_or_default()
    );
}
