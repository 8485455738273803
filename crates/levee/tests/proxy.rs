//! Proxying to a real nginx: forwarding headers, connection reuse on both
//! sides, request and response bodies, and routing.

mod support;

use std::fs;

use support::{Levee, LeveeSetup, Nginx, RawConn, TempDir, curl, curl_ok, get_req, random_bytes};

#[test]
fn get_through_proxy_with_curl() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    let body = curl_ok(&[&levee.url("/hello")]);
    assert_eq!(body, format!("hello from {}\n", nginx.port()));
    let entries = nginx.wait_entries("/hello", 1);
    assert_eq!(entries[0].get("method"), "GET");
}

#[test]
fn forwarding_headers_reach_upstream() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    curl_ok(&[
        "-H",
        "Host: a.test",
        "-H",
        "X-Forwarded-For: 203.0.113.7",
        &levee.url("/fwd"),
    ]);
    let e = &nginx.wait_entries("/fwd", 1)[0];
    // The client is no trusted proxy (docs/http1.md): its own value is
    // replaced, not appended to.
    assert_eq!(e.get("xff"), "127.0.0.1", "X-Forwarded-For replaced");
    assert_eq!(e.get("xri"), "127.0.0.1");
    assert_eq!(e.get("xfp"), "http");
    assert_eq!(e.get("xfh"), "a.test");
    assert_eq!(e.get("via"), "1.1 levee");
    assert_eq!(e.get("host"), "a.test", "Host preserved by default");

    curl_ok(&[&levee.url("/fwd2")]);
    let e = &nginx.wait_entries("/fwd2", 1)[0];
    assert_eq!(e.get("xff"), "127.0.0.1", "X-Forwarded-For set when absent");
}

#[test]
fn hop_by_hop_headers_are_removed() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    let mut conn = RawConn::connect(levee.port);
    conn.send(
        b"GET /hop HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Foo\r\n\
          X-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: timeout=5\r\n\r\n",
    );
    let resp = conn.read_response("GET");
    assert_eq!(resp.status, 200);
    let e = &nginx.wait_entries("/hop", 1)[0];
    assert_eq!(
        e.get("x_foo"),
        "-",
        "a header named in Connection must not be forwarded"
    );
    assert_eq!(e.get("x_bar"), "2", "an ordinary header is forwarded");
    assert_eq!(e.get("keep_alive"), "-");
    assert!(
        !e.get("connection").to_ascii_lowercase().contains("x-foo"),
        "client's Connection header leaked: {}",
        e.line
    );
}

#[test]
fn upstream_connection_reused_within_one_client_connection() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    let mut conn = RawConn::connect(levee.port);
    for i in 0..5 {
        conn.send(&get_req(&format!("/ka/{i}"), "a.test"));
        let resp = conn.read_response("GET");
        assert_eq!(resp.status, 200);
        assert!(
            !resp.closes(),
            "levee closed a keep-alive client connection"
        );
    }
    let conns: Vec<String> = nginx
        .wait_entries("/ka/", 5)
        .iter()
        .map(|e| e.get("conn"))
        .collect();
    assert!(
        conns.iter().all(|c| c == &conns[0]),
        "upstream connection not reused: {conns:?}"
    );
}

#[test]
fn upstream_connection_reused_across_client_connections() {
    let nginx = Nginx::start_default();
    // Pools are per worker; with one worker every client connection shares it.
    let setup = LeveeSetup::new();
    let config = format!("workers = 1\n{}", setup.proxy_config(&[&nginx.addr()], ""));
    let levee = setup.start(&config);
    for i in 0..4 {
        // Each curl run is a new client connection.
        curl_ok(&[&levee.url(&format!("/fresh/{i}"))]);
        nginx.wait_entries("/fresh/", i + 1);
    }
    let conns: Vec<String> = nginx
        .wait_entries("/fresh/", 4)
        .iter()
        .map(|e| e.get("conn"))
        .collect();
    assert!(
        conns.iter().all(|c| c == &conns[0]),
        "idle upstream connection not pooled: {conns:?}"
    );
}

#[test]
fn curl_reuses_the_client_connection() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    // One curl run with several URLs reuses its connection if levee keeps it open.
    let out = curl_ok(&[
        "-w",
        "%{num_connects}\n",
        "-o",
        "/dev/null",
        &levee.url("/a"),
        "-o",
        "/dev/null",
        &levee.url("/b"),
        "-o",
        "/dev/null",
        &levee.url("/c"),
    ]);
    let connects: Vec<&str> = out.lines().collect();
    assert_eq!(connects, ["1", "0", "0"], "curl had to reconnect");
}

fn put_and_compare(chunked: bool) {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    let tmp = TempDir::new("upload");
    let data = random_bytes(5 * 1024 * 1024, if chunked { 7 } else { 3 });
    let src = tmp.join("src.bin");
    fs::write(&src, &data).expect("write upload");
    let url = levee.url("/dav/up.bin");
    let mut args = vec!["-w", "%{http_code}", "-o", "/dev/null", "-T"];
    let src_s = src.display().to_string();
    args.push(&src_s);
    if chunked {
        args.extend(["-H", "Transfer-Encoding: chunked"]);
    }
    args.push(&url);
    let code = curl_ok(&args);
    assert!(code == "201" || code == "204", "PUT answered {code}");
    let stored = fs::read(nginx.root().join("dav/up.bin")).expect("nginx stored the upload");
    assert!(
        stored == data,
        "upload corrupted: {} bytes stored",
        stored.len()
    );
    let entry = &nginx.wait_entries("/dav/up.bin", 1)[0];
    if chunked {
        assert_eq!(
            entry.get("te"),
            "chunked",
            "chunked upload re-framed: {}",
            entry.line
        );
    }

    // And back down through levee.
    let dst = tmp.join("dst.bin");
    curl_ok(&["-o", &dst.display().to_string(), &url]);
    assert!(
        fs::read(&dst).expect("download") == data,
        "download corrupted"
    );
}

#[test]
fn put_5mb_with_content_length_arrives_intact() {
    put_and_compare(false);
}

#[test]
fn put_5mb_chunked_arrives_intact() {
    put_and_compare(true);
}

#[test]
fn expect_100_continue_is_answered() {
    let nginx = Nginx::start_default();
    let levee = Levee::proxy(&nginx, "");
    let mut conn = RawConn::connect(levee.port);
    conn.send(
        b"PUT /dav/e.txt HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    let interim = conn.read_response_head();
    assert_eq!(interim.status, 100, "expected 100 Continue before the body");
    conn.send(b"hello");
    let resp = conn.read_response("PUT");
    assert!(
        resp.status == 201 || resp.status == 204,
        "PUT got {}",
        resp.status
    );
    assert_eq!(
        fs::read(nginx.root().join("dav/e.txt")).expect("stored"),
        b"hello"
    );
}

#[test]
fn large_response_body_streams_intact() {
    let nginx = Nginx::start_default();
    let data = random_bytes(4 * 1024 * 1024, 11);
    nginx.put_file("files/big.bin", &data);
    let levee = Levee::proxy(&nginx, "");
    let tmp = TempDir::new("down");
    let dst = tmp.join("big.bin");
    let out = curl_ok(&[
        "-w",
        "%{http_code} %{size_download}",
        "-o",
        &dst.display().to_string(),
        &levee.url("/files/big.bin"),
    ]);
    assert_eq!(out, format!("200 {}", data.len()));
    assert!(fs::read(&dst).expect("read download") == data);
}

#[test]
fn chunked_response_and_trailers_pass_through() {
    let nginx = Nginx::start_default();
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    nginx.put_file("chunked/t.txt", text.as_bytes());
    let levee = Levee::proxy(&nginx, "");
    let mut conn = RawConn::connect(levee.port);
    // gzip makes nginx answer chunked, and add_trailer adds a trailer field.
    conn.send(
        b"GET /chunked/t.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nTE: trailers\r\n\r\n",
    );
    let resp = conn.read_response("GET");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert!(
        resp.body.len() > 10 && resp.body.starts_with(&[0x1f, 0x8b]),
        "not gzip data"
    );
    assert!(
        resp.trailers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-trailer") && v == "trailer-value"),
        "trailer lost; headers {:?} trailers {:?}",
        resp.headers,
        resp.trailers
    );
    // The connection is still usable: the body was framed correctly.
    conn.send(&get_req("/after", "a"));
    assert_eq!(conn.read_response("GET").status, 200);

    // curl decodes the streamed gzip back to the original.
    let out = curl_ok(&["--compressed", &levee.url("/chunked/t.txt")]);
    assert!(out == text, "decoded body differs ({} bytes)", out.len());
}

#[test]
fn head_204_and_304_have_no_body() {
    let nginx = Nginx::start_default();
    nginx.put_file("files/f.txt", b"some file content\n");
    let levee = Levee::proxy(&nginx, "");
    let mut conn = RawConn::connect(levee.port);

    conn.send(b"HEAD /files/f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let head = conn.read_response("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("18"));
    let etag = head
        .header("etag")
        .expect("nginx sends an ETag")
        .to_string();

    conn.send(b"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(conn.read_response("GET").status, 204);

    conn.send(
        format!("GET /files/f.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    );
    assert_eq!(conn.read_response("GET").status, 304);

    // Had any of those carried a body, this response would be misparsed.
    conn.send(b"GET /files/f.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let resp = conn.read_response("GET");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"some file content\n");
}

#[test]
fn weighted_servers_share_the_load() {
    let light = Nginx::start_default();
    let heavy = Nginx::start_default();
    let setup = LeveeSetup::new();
    let config = format!(
        r#"pid_file = "{pid}"
[[listener]]
address = "127.0.0.1:{port}"
[[route]]
proxy = "app"
[upstream.app]
servers = ["{light}", {{ address = "{heavy}", weight = 3 }}]
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        light = light.addr(),
        heavy = heavy.addr(),
    );
    let levee = setup.start(&config);
    let (mut l, mut h) = (0, 0);
    for _ in 0..40 {
        let body = curl_ok(&[&levee.url("/")]);
        if body.contains(&light.port().to_string()) {
            l += 1;
        } else if body.contains(&heavy.port().to_string()) {
            h += 1;
        } else {
            panic!("unexpected body {body}");
        }
    }
    assert!(l > 0 && h > l, "weight ignored: light {l}, heavy {h}");
}

#[test]
fn routes_pick_exact_host_then_wildcard_then_longest_prefix() {
    let setup = LeveeSetup::new();
    let config = format!(
        r#"pid_file = "{pid}"
[[listener]]
address = "127.0.0.1:{port}"

[[route]]
respond = "default"

[[route]]
path = "/api/"
respond = "api"

[[route]]
host = "*.b.test"
respond = "wild"

[[route]]
host = "x.b.test"
respond = "exact"

[[route]]
host = "x.b.test"
path = "/api/"
respond = "exact-api"

[[route]]
path = "/old/"
redirect = "https://{{host}}{{uri}}"
status = 301
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
    );
    let levee = setup.start(&config);
    let cases = [
        ("x.b.test", "/", "exact"),
        ("x.b.test", "/api/v1", "exact-api"),
        ("y.b.test", "/", "wild"),
        ("y.b.test", "/api/v1", "wild"),
        ("other.test", "/", "default"),
        ("other.test", "/api/v1", "api"),
        ("other.test", "/apix", "default"),
    ];
    for (host, path, want) in cases {
        let body = curl_ok(&["-H", &format!("Host: {host}"), &levee.url(path)]);
        assert_eq!(body.trim(), want, "Host {host} path {path}");
    }
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "-H",
        "Host: r.test",
        &levee.url("/old/page?q=1"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "301 https://r.test/old/page?q=1"
    );
}
