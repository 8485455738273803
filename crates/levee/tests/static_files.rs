//! Static file routes: conditional and range requests, index files,
//! directory redirects, MIME types, and escapes from the root.

mod support;

use std::fs;
use std::os::unix::fs::symlink;

use support::{Levee, LeveeSetup, RawConn, TempDir, curl, curl_ok, parse_head, raw};

const DATA: &str = "0123456789abcdefghijklmnopqrstuvwxyz";
const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A site directory (`<tmp>/site`) with a secret file beside it, plus levee serving it.
struct Site {
    _tmp: TempDir,
    levee: Levee,
}

fn site() -> Site {
    let tmp = TempDir::new("static");
    let root = tmp.join("site");
    fs::create_dir_all(root.join("sub")).expect("mkdir");
    fs::create_dir_all(root.join("nested/deeper")).expect("mkdir");
    fs::write(root.join("index.html"), "<h1>home</h1>\n").expect("write");
    fs::write(root.join("style.css"), "body { color: red }\n").expect("write");
    fs::write(root.join("data.txt"), DATA).expect("write");
    fs::write(root.join("sub/index.html"), "<p>sub</p>\n").expect("write");
    fs::write(tmp.join("secret.txt"), SECRET).expect("write");
    symlink(tmp.join("secret.txt"), root.join("link.txt")).expect("symlink");
    symlink(tmp.path(), root.join("outside")).expect("symlink");

    let setup = LeveeSetup::new();
    let config = format!(
        r#"pid_file = "{pid}"
[[listener]]
address = "127.0.0.1:{port}"
[[route]]
static = "{root}"
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        root = root.display(),
    );
    let levee = setup.start(&config);
    Site { _tmp: tmp, levee }
}

/// Runs curl with `-i` and parses the head and body it printed.
fn fetch(args: &[&str]) -> support::Response {
    let out = curl(&[&["-i"], args].concat());
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_head(&out.stdout).expect("curl printed a response")
}

#[test]
fn get_with_mime_types() {
    let s = site();
    let r = fetch(&[&s.levee.url("/style.css")]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/css"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.body_text(), "body { color: red }\n");

    let r = fetch(&[&s.levee.url("/index.html")]);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("content-length"), Some("14"));
}

#[test]
fn index_file_and_directory_redirect() {
    let s = site();
    assert_eq!(curl_ok(&[&s.levee.url("/")]), "<h1>home</h1>\n");
    assert_eq!(curl_ok(&[&s.levee.url("/sub/")]), "<p>sub</p>\n");

    let r = fetch(&[&s.levee.url("/sub")]);
    assert_eq!(r.status, 301);
    let location = r.header("location").expect("Location on 301");
    assert!(location.ends_with("/sub/"), "Location {location}");

    let r = fetch(&[&s.levee.url("/no-such-file")]);
    assert_eq!(r.status, 404);
}

#[test]
fn head_has_headers_but_no_body() {
    let s = site();
    let mut conn = RawConn::connect(s.levee.port);
    conn.send(b"HEAD /data.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = conn.read_response("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("36"));
    // A stray body would be read as the next response's head.
    conn.send(b"GET /data.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = conn.read_response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), DATA);
}

#[test]
fn single_range() {
    let s = site();
    let r = fetch(&["-r", "0-9", &s.levee.url("/data.txt")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 0-9/36"));
    assert_eq!(r.body_text(), "0123456789");

    let r = fetch(&["-r", "-6", &s.levee.url("/data.txt")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 30-35/36"));
    assert_eq!(r.body_text(), "uvwxyz");
}

#[test]
fn multiple_ranges_are_multipart() {
    let s = site();
    let r = fetch(&["-r", "0-1,10-12", &s.levee.url("/data.txt")]);
    assert_eq!(r.status, 206);
    let ctype = r.header("content-type").unwrap_or("").to_string();
    assert!(
        ctype.starts_with("multipart/byteranges"),
        "Content-Type {ctype}"
    );
    let boundary = ctype
        .split("boundary=")
        .nth(1)
        .expect("boundary parameter")
        .trim_matches('"')
        .to_string();
    let body = r.body_text();
    assert!(body.contains(&format!("--{boundary}")), "{body}");
    assert!(
        body.contains("Content-Range: bytes 0-1/36")
            || body.contains("content-range: bytes 0-1/36")
    );
    assert!(body.contains("\r\n\r\n01\r\n"), "first part: {body:?}");
    assert!(body.contains("\r\n\r\nabc\r\n"), "second part: {body:?}");
    assert!(
        body.contains(&format!("--{boundary}--")),
        "closing boundary: {body:?}"
    );
}

#[test]
fn etag_and_last_modified_give_304() {
    let s = site();
    let r = fetch(&[&s.levee.url("/data.txt")]);
    let etag = r.header("etag").expect("ETag").to_string();
    let modified = r
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();

    let r = fetch(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &s.levee.url("/data.txt"),
    ]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    let r = fetch(&["-H", "If-None-Match: \"other\"", &s.levee.url("/data.txt")]);
    assert_eq!(r.status, 200);

    let r = fetch(&[
        "-H",
        &format!("If-Modified-Since: {modified}"),
        &s.levee.url("/data.txt"),
    ]);
    assert_eq!(r.status, 304);

    let r = fetch(&[
        "-H",
        "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT",
        &s.levee.url("/data.txt"),
    ]);
    assert_eq!(r.status, 200);
}

#[test]
fn escapes_from_the_root_never_leak() {
    let s = site();
    let attempts = [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/link.txt",
        "/outside/secret.txt",
        "/%00/secret.txt",
    ];
    for path in attempts {
        let bytes = raw(
            s.levee.port,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(SECRET),
            "{path} leaked the outside file:\n{text}"
        );
        let r = parse_head(&bytes).unwrap_or_else(|| panic!("{path}: no response: {text:?}"));
        assert!(
            [400, 403, 404].contains(&r.status),
            "{path} answered {}",
            r.status
        );
    }
}
