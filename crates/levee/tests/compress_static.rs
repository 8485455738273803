//! A static route's compressed answers: precompressed siblings
//! (`FILE.br`, `FILE.gz`, `FILE.zst`) as nginx's `gzip_static` serves
//! them, with ranges and conditionals on the sibling, a stale sibling
//! passed over, and files compressed on the fly over HTTP/1.1 and
//! HTTP/2; curl as the client.

mod support;

use std::fs;
use std::time::{Duration, SystemTime};

use support::{Levee, LeveeSetup, TempDir, curl};

fn page() -> Vec<u8> {
    (0..2000)
        .flat_map(|i| format!("<p>static paragraph {i}, compressible</p>\n").into_bytes())
        .collect()
}

/// What a sibling holds: not real Brotli; levee sends a sibling's bytes as
/// they are, so the test can tell them from anything levee compressed.
const BR_SIBLING: &[u8] = b"pretend-brotli-bytes-of-page.html";

/// What a directory's index sibling holds (not real gzip, as above).
const GZ_INDEX: &[u8] = b"pretend-gzip-bytes-of-docs/index.html";

fn root() -> TempDir {
    let dir = TempDir::new("static-root");
    fs::write(dir.join("page.html"), page()).expect("write the test root");
    fs::write(dir.join("page.html.br"), BR_SIBLING).expect("write the test root");
    fs::write(dir.join("style.css"), page()).expect("write the test root");
    fs::create_dir(dir.join("docs")).expect("write the test root");
    fs::write(dir.join("docs/index.html"), page()).expect("write the test root");
    fs::write(dir.join("docs/index.html.gz"), GZ_INDEX).expect("write the test root");
    fs::write(dir.join(".env"), b"SECRET=1").expect("write the test root");
    fs::write(dir.join(".env.gz"), b"SECRET=1, gzipped").expect("write the test root");
    // A gzip sibling older than its file: passed over.
    let gz = dir.join("page.html.gz");
    fs::write(&gz, b"stale-gzip-bytes").expect("write the test root");
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&gz)
        .expect("write the test root")
        .set_modified(old)
        .expect("write the test root");
    dir
}

fn levee(root: &TempDir) -> Levee {
    let setup = LeveeSetup::new();
    let cfg = format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"
http2 = "prior-knowledge"

[[route]]
static = "{root}"
compress = {{ precompressed = true }}
expires = "1h"
expires_by_extension = {{ html = "2h" }}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        root = root.path().display(),
    );
    setup.start(&cfg)
}

/// The head (lower-case names) and body of a curl request.
fn get(url: &str, args: &[&str]) -> (String, Vec<u8>) {
    let dir = TempDir::new("static-curl");
    let head = dir.join("head").display().to_string();
    let mut all = vec!["-D", &head];
    all.extend_from_slice(args);
    all.push(url);
    let out = curl(&all);
    assert!(out.status.success(), "{all:?}: {out:?}");
    let head = fs::read_to_string(&head)
        .expect("curl wrote the head")
        .to_ascii_lowercase();
    (head, out.stdout)
}

/// `client`'s arguments, then `more`.
fn with<'a>(client: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [client, more].concat()
}

fn field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::trim))
}

#[test]
fn precompressed_siblings_with_their_own_validators_and_ranges() {
    let root = root();
    let levee = levee(&root);
    let url = levee.url("/page.html");
    for client in [&[][..], &["--http2-prior-knowledge"][..]] {
        let (head, body) = get(&url, &with(client, &["-H", "Accept-Encoding: gzip, br"]));
        assert_eq!(body, BR_SIBLING, "{head}");
        assert_eq!(field(&head, "content-encoding"), Some("br"), "{head}");
        assert_eq!(
            field(&head, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(field(&head, "vary"), Some("accept-encoding"), "{head}");
        let length = BR_SIBLING.len().to_string();
        assert_eq!(field(&head, "content-length"), Some(length.as_str()));
        // The original's expiry (by its extension, not the sibling's).
        assert_eq!(
            field(&head, "cache-control"),
            Some("max-age=7200"),
            "{head}"
        );
        assert!(field(&head, "expires").is_some(), "{head}");
        let sibling_etag = field(&head, "etag").unwrap().to_owned();

        // The file itself, to a client that accepts nothing: another ETag.
        let (plain_head, plain) = get(&url, client);
        assert_eq!(plain, page());
        assert_eq!(field(&plain_head, "content-encoding"), None);
        assert_ne!(field(&plain_head, "etag"), Some(sibling_etag.as_str()));

        // A range of the sibling's bytes.
        let (head, body) = get(
            &url,
            &with(client, &["-H", "Accept-Encoding: br", "-r", "0-6"]),
        );
        assert!(field(&head, "content-range").is_some(), "{head}");
        assert_eq!(body, &BR_SIBLING[..7]);
        assert_eq!(field(&head, "content-encoding"), Some("br"));

        // Its own validator gives 304.
        let inm = format!("If-None-Match: {sibling_etag}");
        let (head, _) = get(
            &url,
            &with(client, &["-H", "Accept-Encoding: br", "-H", &inm]),
        );
        assert!(head.contains(" 304"), "{head}");
        assert_eq!(
            field(&head, "cache-control"),
            Some("max-age=7200"),
            "{head}"
        );

        // HEAD: the sibling's head.
        let (head, _) = get(&url, &with(client, &["-I", "-H", "Accept-Encoding: br"]));
        assert_eq!(field(&head, "content-encoding"), Some("br"), "{head}");
        assert_eq!(field(&head, "content-length"), Some(length.as_str()));

        // The gzip sibling is older than the file: the file is compressed
        // on the fly instead, and decodes to today's page.
        let (head, body) = get(
            &url,
            &with(client, &["-H", "Accept-Encoding: gzip", "--compressed"]),
        );
        assert_eq!(field(&head, "content-encoding"), Some("gzip"), "{head}");
        assert_eq!(body, page());
        assert!(field(&head, "etag").unwrap().starts_with("w/\""), "{head}");
    }
}

#[test]
fn files_without_siblings_are_compressed_on_the_fly() {
    let root = root();
    let levee = levee(&root);
    let url = levee.url("/style.css");
    for client in [&[][..], &["--http2-prior-knowledge"][..]] {
        for coding in ["gzip", "br", "zstd"] {
            let accept = format!("Accept-Encoding: {coding}");
            let raw = get(&url, &[client, &["-H", &accept][..]].concat());
            assert_eq!(field(&raw.0, "content-encoding"), Some(coding), "{}", raw.0);
            assert_eq!(field(&raw.0, "content-length"), None, "{}", raw.0);
            assert!(raw.1.len() < page().len() / 4);
            let decoded = get(
                &url,
                &[client, &["-H", &accept, "--compressed"][..]].concat(),
            );
            assert_eq!(decoded.1, page(), "{coding} {client:?}");
        }
        // A range stays a range of the file, uncompressed.
        let (head, body) = get(
            &url,
            &[client, &["-H", "Accept-Encoding: gzip", "-r", "0-9"][..]].concat(),
        );
        assert_eq!(field(&head, "content-encoding"), None, "{head}");
        assert_eq!(body, page()[..10]);
        // Regression: revalidating the compressed copy, whose 200 had a
        // weak tag, got a 304 with the strong one.
        let (head, _) = get(
            &url,
            &[client, &["-H", "Accept-Encoding: gzip"][..]].concat(),
        );
        let etag = field(&head, "etag").expect("an etag").to_owned();
        assert!(etag.starts_with("w/\""), "{head}");
        let inm = format!("If-None-Match: {etag}").replace("w/", "W/");
        let (head, _) = get(
            &url,
            &[client, &["-H", "Accept-Encoding: gzip", "-H", &inm][..]].concat(),
        );
        assert!(head.starts_with("http/1.1 304") || head.starts_with("http/2 304"));
        assert_eq!(field(&head, "etag"), Some(etag.as_str()), "{head}");
    }
}

#[test]
fn a_hidden_file_has_no_sibling_either() {
    let root = root();
    let levee = levee(&root);
    // Dotfiles are hidden by default (404); asking for the coding of a
    // sibling that exists must not walk around that.
    for accept in ["gzip", "identity"] {
        let out = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Accept-Encoding: {accept}"),
            &levee.url("/.env"),
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404", "{accept}");
    }
}

#[test]
fn a_directory_is_answered_from_its_index_files_sibling() {
    let root = root();
    let levee = levee(&root);
    let url = levee.url("/docs/");
    for client in [&[][..], &["--http2-prior-knowledge"][..]] {
        let (head, body) = get(&url, &with(client, &["-H", "Accept-Encoding: gzip"]));
        assert_eq!(body, GZ_INDEX, "{head}");
        assert_eq!(field(&head, "content-encoding"), Some("gzip"), "{head}");
        assert_eq!(
            field(&head, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            field(&head, "cache-control"),
            Some("max-age=7200"),
            "{head}"
        );
        // No sibling for Brotli: compressed on the fly, today's page.
        let (head, body) = get(
            &url,
            &with(client, &["-H", "Accept-Encoding: br", "--compressed"]),
        );
        assert_eq!(field(&head, "content-encoding"), Some("br"), "{head}");
        assert_eq!(body, page());
    }
}
