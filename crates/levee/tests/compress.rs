//! Responses compressed on the fly (gzip, Brotli, zstd) between a real
//! nginx and curl, over HTTP/1.1 and HTTP/2 on both sides: the coding the
//! client's `Accept-Encoding` chooses, the fields that change with it, the
//! responses left alone, and a slow response that still arrives in
//! pieces.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;
use std::time::Duration;

use support::{Levee, LeveeSetup, Nginx, curl};

/// A compressible page well over `min_length`.
fn page() -> Vec<u8> {
    (0..3000)
        .flat_map(|i| format!("<p>paragraph {i} of a page that compresses well</p>\n").into_bytes())
        .collect()
}

/// nginx with the test's files, a location that forbids transforms and
/// a second, HTTP/2 (h2c) listener on `h2_port`.
fn nginx(h2_port: u16) -> Nginx {
    let nginx = Nginx::start(&format!(
        r#"
        listen 127.0.0.1:{h2_port} http2;
        location /files/ {{ }}
        location /slow/ {{ limit_rate 20k; }}
        location /chunked/ {{ gzip on; gzip_min_length 0; gzip_types *; gzip_proxied any; }}
        location /kept/ {{ add_header Cache-Control "public, no-transform"; }}
        "#
    ));
    let page = page();
    for path in [
        "files/page.html",
        "chunked/page.html",
        "kept/page.html",
        "h2/page.html",
    ] {
        nginx.put_file(path, &page);
    }
    nginx.put_file("files/small.html", b"<p>short</p>\n");
    nginx.put_file("files/blob.bin", &page);
    nginx.put_file("slow/stream.txt", &page[..100_000]);
    nginx
}

/// levee on an HTTP/1 and h2c listener, every route compressing;
/// `/h2/` goes to nginx's HTTP/2 listener.
fn levee(nginx: &Nginx, h2_port: u16, extra: &str) -> Levee {
    let setup = LeveeSetup::new();
    let cfg = format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"
http2 = "prior-knowledge"

[[route]]
path = "/h2/"
proxy = "h2app"

[[route]]
proxy = "app"

[upstream.app]
servers = ["{addr}"]

[upstream.h2app]
servers = ["127.0.0.1:{h2_port}"]
protocol = "h2c"

[compress]
enabled = true
{extra}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        addr = nginx.addr(),
    );
    setup.start(&cfg)
}

/// curl's response: the head (`-D`), and the body as sent (`raw`) or
/// decoded by curl (`--compressed`).
struct Got {
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

fn fetch(url: &str, accept: &str, decode: bool, more: &[&str]) -> Got {
    let dir = support::TempDir::new("compress-curl");
    let head_path = dir.join("head");
    let head_arg = head_path.display().to_string();
    let accept = format!("Accept-Encoding: {accept}");
    let mut args = vec!["-D", &head_arg, "-H", &accept];
    if decode {
        args.push("--compressed");
    }
    args.extend_from_slice(more);
    args.push(url);
    let out: Output = curl(&args);
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let head = std::fs::read_to_string(&head_path).expect("curl wrote the head");
    Got {
        head,
        body: out.stdout,
    }
}

const H2: &str = "--http2-prior-knowledge";

/// A page from the HTTP/1 and the HTTP/2 server, each to an HTTP/1.1 and
/// an HTTP/2 client.
const EVERY_PAIR: [(&str, Option<&str>); 4] = [
    ("/files/page.html", None),
    ("/files/page.html", Some(H2)),
    ("/h2/page.html", None),
    ("/h2/page.html", Some(H2)),
];

#[test]
fn each_coding_as_the_client_asks_over_http1_and_http2_from_http1_and_http2_servers() {
    let h2_port = support::free_port();
    let nginx = nginx(h2_port);
    let levee = levee(&nginx, h2_port, "");
    let page = page();
    for (path, client) in EVERY_PAIR {
        let more: Vec<&str> = client.into_iter().collect();
        let url = levee.url(path);
        for (accept, coding) in [
            ("gzip", "gzip"),
            ("br", "br"),
            ("zstd", "zstd"),
            ("gzip, deflate, br, zstd", "zstd"),
            ("gzip;q=1, br;q=0.5", "gzip"),
            ("*;q=0.1, zstd;q=0", "br"),
        ] {
            let what = format!("{path} {client:?} {accept}");
            let raw = fetch(&url, accept, false, &more);
            assert_eq!(
                raw.header("content-encoding").as_deref(),
                Some(coding),
                "{what}: {}",
                raw.head
            );
            assert!(
                raw.body.len() < page.len() / 4,
                "{what}: {} bytes",
                raw.body.len()
            );
            assert_eq!(raw.header("content-length"), None, "{what}: {}", raw.head);
            let vary = raw.header("vary").unwrap_or_default().to_ascii_lowercase();
            assert!(vary.contains("accept-encoding"), "{what}: {}", raw.head);
            if path.starts_with("/files/") {
                // nginx's ETag is strong; the compressed bytes are not its bytes.
                let etag = raw.header("etag").unwrap_or_default();
                assert!(etag.starts_with("W/\""), "{what}: {}", raw.head);
            }
            let decoded = fetch(&url, accept, true, &more);
            assert_eq!(decoded.body, page, "{what}: decoded");
        }
        // Nothing acceptable: the page as it is, with its length.
        for accept in ["identity", "gzip;q=0, br;q=0, zstd;q=0", "deflate"] {
            let plain = fetch(&url, accept, false, &more);
            assert_eq!(plain.header("content-encoding"), None, "{path} {accept}");
            assert_eq!(plain.body, page, "{path} {accept}");
        }
    }
}

#[test]
fn responses_that_must_stay_as_they_are_do() {
    let h2_port = support::free_port();
    let nginx = nginx(h2_port);
    let levee = levee(&nginx, h2_port, "");
    let page = page();
    let accept = "gzip, br, zstd";
    // Below min_length, a type not listed, a server's no-transform.
    for path in ["/files/small.html", "/files/blob.bin", "/kept/page.html"] {
        let got = fetch(&levee.url(path), accept, false, &[]);
        assert_eq!(got.header("content-encoding"), None, "{path}: {}", got.head);
        assert!(
            got.header("content-length").is_some(),
            "{path}: {}",
            got.head
        );
    }
    // A range is of the identity body, and stays one.
    let range = fetch(
        &levee.url("/files/page.html"),
        accept,
        false,
        &["-r", "0-99"],
    );
    assert!(range.head.starts_with("HTTP/1.1 206"), "{}", range.head);
    assert_eq!(range.header("content-encoding"), None);
    assert_eq!(range.body, page[..100]);
    // HEAD: the identity head.
    let head = fetch(&levee.url("/files/page.html"), accept, false, &["-I"]);
    assert_eq!(head.header("content-encoding"), None, "{}", head.head);
    // Compressed by nginx already (gzip on there): levee leaves it, so
    // one decoding gives the page.
    let coded = fetch(&levee.url("/chunked/page.html"), "gzip", true, &[]);
    assert_eq!(coded.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(coded.body, page);
    // HTTP/1.0 has no chunked coding to end a compressed body with.
    let old = fetch(&levee.url("/files/page.html"), accept, false, &["-0"]);
    assert_eq!(old.header("content-encoding"), None, "{}", old.head);
    assert_eq!(old.body, page);
}

#[test]
fn routes_choose_and_the_site_default_applies() {
    let h2_port = support::free_port();
    let nginx = nginx(h2_port);
    let levee = levee(
        &nginx,
        h2_port,
        "prefer = [\"gzip\"]\n\n[[route]]\npath = \"/kept/\"\nproxy = \"app\"\ncompress = false\n\n\
         [[route]]\npath = \"/slow/\"\nproxy = \"app\"\ncompress = { prefer = [\"br\"], min_length = \"1m\" }\n",
    );
    let accept = "gzip, br, zstd";
    let got = fetch(&levee.url("/files/page.html"), accept, false, &[]);
    assert_eq!(
        got.header("content-encoding").as_deref(),
        Some("gzip"),
        "{}",
        got.head
    );
    // A route's own `false`: nothing, even with no-transform aside.
    let off = fetch(&levee.url("/kept/page.html"), accept, false, &[]);
    assert_eq!(off.header("content-encoding"), None);
    // A route's table: 100 KB is below its 1 MB minimum.
    let slow = fetch(&levee.url("/slow/stream.txt"), accept, false, &[]);
    assert_eq!(slow.header("content-encoding"), None);
}

/// Reads one HTTP/1.1 chunk from `conn` (its size line, data and CRLF),
/// `buf` holding what was read ahead.
fn read_chunk(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    let fill = |conn: &mut TcpStream, buf: &mut Vec<u8>| {
        let mut piece = [0u8; 4096];
        let n = conn.read(&mut piece).expect("read");
        assert!(n > 0, "closed mid-response");
        buf.extend_from_slice(&piece[..n]);
    };
    let line_end = loop {
        if let Some(i) = support::find(buf, b"\r\n") {
            break i;
        }
        fill(conn, buf);
    };
    let size = usize::from_str_radix(
        std::str::from_utf8(&buf[..line_end]).expect("ascii size"),
        16,
    )
    .expect("a chunk size");
    while buf.len() < line_end + 2 + size + 2 {
        fill(conn, buf);
    }
    let data = buf[line_end + 2..line_end + 2 + size].to_vec();
    buf.drain(..line_end + 2 + size + 2);
    data
}

#[test]
fn a_slow_response_is_compressed_as_it_arrives_not_at_its_end() {
    let h2_port = support::free_port();
    let nginx = nginx(h2_port);
    let levee = levee(&nginx, h2_port, "");
    let expected = &page()[..100_000];
    // 100 KB at nginx's 20 KB/s: about five seconds from first to last byte.
    let mut conn = TcpStream::connect(("127.0.0.1", levee.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"GET /slow/stream.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = support::find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut piece = [0u8; 4096];
        let n = conn.read(&mut piece).expect("read head");
        assert!(n > 0);
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    buf.drain(..head_end);
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    // The first chunk decodes on its own, to the start of the file, while
    // the rest has not been sent by nginx yet.
    let first = read_chunk(&mut conn, &mut buf);
    decoder.write_all(&first).unwrap();
    decoder.flush().unwrap();
    let so_far = decoder.get_ref().len();
    assert!(so_far > 0, "the first chunk decoded to nothing");
    assert!(so_far < expected.len(), "the whole body came at once");
    assert_eq!(decoder.get_ref()[..], expected[..so_far]);
    let mut chunks = 1;
    loop {
        let chunk = read_chunk(&mut conn, &mut buf);
        if chunk.is_empty() {
            break;
        }
        chunks += 1;
        decoder.write_all(&chunk).unwrap();
    }
    let whole = decoder.finish().unwrap();
    assert_eq!(whole, expected);
    assert!(chunks > 2, "{chunks} chunks");
}

/// Regression: a client revalidating the copy levee compressed (`W/"x"`)
/// got the server's 304 with the strong `"x"`, so the copy it kept had a
/// strong validator for bytes that tag does not name; a 304 carries the
/// `ETag` its 200 would have (RFC 9110 §15.4.5), as the cache's 304s did.
#[test]
fn a_304_to_a_compressed_copy_keeps_its_weak_etag() {
    let h2_port = support::free_port();
    let nginx = nginx(h2_port);
    let levee = levee(&nginx, h2_port, "");
    for (path, client) in EVERY_PAIR {
        let more: Vec<&str> = client.into_iter().collect();
        let url = levee.url(path);
        let first = fetch(&url, "gzip", false, &more);
        let etag = first.header("etag").expect("an ETag");
        assert!(etag.starts_with("W/\""), "{path} {client:?}: {etag}");
        let inm = format!("If-None-Match: {etag}");
        let mut conditional = more.clone();
        conditional.extend(["-H", &inm]);
        let again = fetch(&url, "gzip", false, &conditional);
        let status = again.head.lines().next().unwrap_or_default().to_owned();
        assert!(status.contains(" 304"), "{path} {client:?}: {}", again.head);
        assert_eq!(
            again.header("etag").as_deref(),
            Some(etag.as_str()),
            "{path} {client:?}"
        );
        // A client holding the identity copy keeps its strong tag.
        let strong = etag.trim_start_matches("W/").to_owned();
        let inm = format!("If-None-Match: {strong}");
        let mut conditional = more.clone();
        conditional.extend(["-H", &inm]);
        let plain = fetch(&url, "identity", false, &conditional);
        assert_eq!(plain.header("etag"), Some(strong), "{path} {client:?}");
    }
}
