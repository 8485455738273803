//! gRPC through levee with real peers on both sides (tests/grpc/peer.py on
//! Debian's python3-grpcio): HTTP/2 client streams relayed stream to
//! stream to `protocol = "h2c"` and `"h2"` upstreams, with metadata,
//! trailers, status messages, streaming both ways, cancellation and an
//! unreachable server; HTTP/1.1 clients translated. What a gRPC library
//! never shows (request trailers, a server's reset) is driven by a bare
//! HTTP/2 peer (tests/grpc/h2peer.py, Python's h2).

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "grpc/fixtures.rs"]
mod fixtures;

use std::time::Duration;

use fixtures::*;
use serde_json::Value;
use support::{Levee, LeveeSetup};

const H2C: &str = "http2 = \"prior-knowledge\"";

/// levee on an h2c listener in front of `servers` (`protocol = "h2c"`).
fn h2c_levee(servers: &[&str]) -> Levee {
    h2c_levee_with(servers, "")
}

/// [`h2c_levee`] with `extra` tables at the end of the config.
fn h2c_levee_with(servers: &[&str], extra: &str) -> Levee {
    let setup = LeveeSetup::new();
    // One worker: one shared upstream connection to count.
    let cfg = config(&setup, H2C, servers, "protocol = \"h2c\"", extra);
    setup.start(&format!("workers = 1\n{cfg}"))
}

fn plain(levee: &Levee) -> Target<'static> {
    Target {
        port: levee.port,
        tls: None,
    }
}

fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn unary_status_metadata_and_streaming_through_an_h2c_listener() {
    let server = GrpcServer::start(None);
    let admin = support::free_port();
    let levee = h2c_levee_with(
        &[&server.addr()],
        &format!("[admin]\naddress = \"127.0.0.1:{admin}\"\n"),
    );
    let t = plain(&levee);

    // Unary: the reply, initial metadata and trailing metadata (trailers)
    // all cross levee, and the server sees the request metadata with the
    // forwarding fields levee adds.
    let r = call(t, "unary", &["hello-levee"]);
    assert_eq!(text(&r, "code"), "OK", "{r}");
    assert_eq!(text(&r, "reply"), "hello-levee");
    assert_eq!(r["initial"]["x-echo"], "hello-levee", "{r}");
    assert_eq!(r["trailing"]["x-trail"], "done", "{r}");
    let seen = server
        .wait_line("HEADERS ", Duration::from_secs(5))
        .expect("the server logged the request metadata");
    let seen: Value = serde_json::from_str(seen.trim_start_matches("HEADERS ")).expect("json");
    assert_eq!(seen["x-req"], "hello-levee", "{seen}");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{seen}");
    assert_eq!(seen["x-forwarded-proto"], "http", "{seen}");
    assert_eq!(seen["via"], "1.1 levee", "{seen}");

    // A non-OK status with a message that needs percent-encoding, sent as a
    // trailers-only response (HEADERS with END_STREAM).
    let message = "bad thing: ünïcode ☂ 100%";
    let r = call(t, "fail", &[message]);
    assert_eq!(text(&r, "code"), "INVALID_ARGUMENT", "{r}");
    assert_eq!(text(&r, "details"), message);
    assert_eq!(r["trailing"]["x-why"], "asked", "{r}");

    // Server streaming of 4 MB: more than every window on the way, so it
    // only completes if levee hands window back as the client reads.
    let r = call(t, "download", &["4000000"]);
    assert_eq!(text(&r, "code"), "OK", "{r}");
    assert_eq!(r["total"], 4_000_000, "{r}");
    assert!(r["count"].as_u64().unwrap_or(0) > 1, "{r}");
    let sent = server
        .wait_line("SENT ", Duration::from_secs(5))
        .expect("the server logged what it sent");
    assert_eq!(sent.trim_start_matches("SENT "), text(&r, "sha"));

    // Client streaming of 1.6 MB in eight messages.
    let r = call(t, "upload", &["200000", "8"]);
    assert_eq!(text(&r, "code"), "OK", "{r}");
    assert_eq!(text(&r, "reply"), text(&r, "expected"));

    // Bidirectional: each message is answered before the next is sent.
    let r = call(t, "chat", &["abc", "levee", "grpc"]);
    assert_eq!(text(&r, "code"), "OK", "{r}");
    assert_eq!(r["replies"], serde_json::json!(["cba", "eevel", "cprg"]));

    // One access log line per stream, with status, bytes and upstream time.
    let dir = levee.dir();
    let unary = logged(dir, "\"POST /test.Svc/Unary HTTP/2.0\" 200 ", 1);
    assert!(unary[0].contains("urt=0."), "{unary:?}");
    let download = logged(dir, "\"POST /test.Svc/Download HTTP/2.0\" 200 ", 1);
    let bytes: u64 = download[0]
        .split("HTTP/2.0\" 200 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(bytes > 4_000_000, "{download:?}");

    // Every call above went over one shared connection to the server.
    assert_eq!(connections_to(server.port), 1);

    // The server's metrics count the five calls, as for HTTP/1 requests.
    let labels = format!("upstream=\"app\",server=\"{}\"", server.addr());
    let metric = |series: String| support::metric(admin, &series);
    let requests = metric(format!("levee_upstream_requests_total{{{labels}}}"));
    assert_eq!(requests, Some(5.0));
    let ok = metric(format!(
        "levee_upstream_responses_total{{{labels},class=\"2xx\"}}"
    ));
    assert_eq!(ok, Some(5.0));
    let active = metric(format!("levee_upstream_active_requests{{{labels}}}"));
    assert_eq!(active, Some(0.0));
}

#[test]
fn cancellation_and_deadlines_reach_the_server() {
    let server = GrpcServer::start(None);
    let levee = h2c_levee(&[&server.addr()]);
    let t = plain(&levee);

    // The handler waits until its call ends: only levee resetting the
    // upstream stream when the client cancels can end it.
    let r = call(t, "cancel", &["call-1"]);
    assert_eq!(text(&r, "code"), "CANCELLED", "{r}");
    assert!(
        server
            .wait_line("CANCELLED call-1", Duration::from_secs(5))
            .is_some(),
        "the server never saw the cancellation"
    );
    let r = call(t, "deadline", &["call-2"]);
    assert_eq!(text(&r, "code"), "DEADLINE_EXCEEDED", "{r}");
    assert!(
        server
            .wait_line("CANCELLED call-2", Duration::from_secs(5))
            .is_some()
    );
    // The client went away first: logged as 499.
    logged(levee.dir(), "\"POST /test.Svc/Hang HTTP/2.0\" 499 ", 1);
}

#[test]
fn an_http1_client_that_closes_cancels_the_server_stream() {
    let server = GrpcServer::start(None);
    let levee = h2c_levee(&[&server.addr()]);
    let mut conn = support::RawConn::connect(levee.port);
    let body = frame(b"call-h1");
    let mut req = format!(
        "POST /test.Svc/Hang HTTP/1.1\r\nHost: api.test\r\nContent-Type: application/grpc\r\n\
         TE: trailers\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    conn.send(&req);
    assert!(
        server
            .wait_line("STARTED call-h1", Duration::from_secs(10))
            .is_some()
    );
    // Before, levee waited for the response head until upstream_read.
    drop(conn);
    assert!(
        server
            .wait_line("CANCELLED call-h1", Duration::from_secs(5))
            .is_some(),
        "the server never saw the HTTP/1.1 client leave"
    );
    logged(levee.dir(), "\"POST /test.Svc/Hang HTTP/1.1\" 499 0 ", 1);
}

#[test]
fn an_unreachable_or_lost_server_fails_the_call_promptly() {
    // Nothing listens on the port: UNAVAILABLE at once, from a 502.
    let closed = support::free_port();
    let levee = h2c_levee(&[&format!("127.0.0.1:{closed}")]);
    let r = call(plain(&levee), "unary", &["x"]);
    assert_eq!(text(&r, "code"), "UNAVAILABLE", "{r}");
    assert!(text(&r, "details").contains("502"), "{r}");
    assert!(r["elapsed"].as_f64().unwrap_or(99.0) < 2.0, "{r}");
    logged(levee.dir(), "\"POST /test.Svc/Unary HTTP/2.0\" 502 ", 1);

    // An HTTP/1.1 client of the same route gets a 502 too.
    let reply = support::raw(
        levee.port,
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let head = support::parse_head(&reply).expect("a response");
    assert_eq!(head.status, 502);

    // The server dies while a call is open: the client's stream is reset
    // at once instead of waiting out its 20 s deadline.
    let server = GrpcServer::start(None);
    let levee = h2c_levee(&[&server.addr()]);
    let t = plain(&levee);
    let port = server.port;
    let pending = std::thread::spawn(move || call(t, "hang", &["call-3", "20"]));
    assert!(
        server
            .wait_line("STARTED call-3", Duration::from_secs(10))
            .is_some()
    );
    drop(server);
    let r = pending.join().expect("client thread");
    let code = text(&r, "code");
    assert!(
        code != "OK" && code != "DEADLINE_EXCEEDED",
        "the call should fail, not wait: {r}"
    );
    assert!(r["elapsed"].as_f64().unwrap_or(99.0) < 10.0, "{r}");

    // A server back on the same port gets the next call on a new
    // connection: the lost one is not handed out again.
    let again = GrpcServer::start_on(port);
    let r = call(t, "unary", &["back"]);
    assert_eq!(text(&r, "reply"), "back", "{r}");
    assert_eq!(connections_to(again.port), 1);
}

#[test]
fn request_trailers_resets_and_100_continue_with_a_bare_http2_server() {
    let server = GrpcServer::start_h2();
    let levee = h2c_levee(&[&server.addr()]);

    // The client's trailers reach the server (it answers with what it
    // got), and the server's body and trailers reach the client.
    let r = h2_call(levee.port, "/trailers");
    assert_eq!(r["headers"][":status"], "200", "{r}");
    let got: Value = serde_json::from_str(text(&r["headers"], "x-got")).expect("the server's JSON");
    assert_eq!(got["x-req-trailer"], "present", "{r}");
    assert_eq!(r["body"], "body", "{r}");
    assert_eq!(r["trailers"]["x-resp-trailer"], "yes", "{r}");

    // The server resets the stream: the client's stream is reset with the
    // server's reason (ENHANCE_YOUR_CALM, 0xb), at once.
    let r = h2_call(levee.port, "/reset");
    assert_eq!(r["reset"], 11, "{r}");
    assert!(r.get("headers").is_none(), "{r}");
    logged(levee.dir(), "\"POST /reset HTTP/2.0\" 502 ", 1);

    // A client waiting for 100 Continue gets it from levee once the stream
    // is open (curl would otherwise wait out its 10 s).
    let url = levee.url("/trailers");
    let started = std::time::Instant::now();
    let out = support::curl(&[
        "-sv",
        "--http2-prior-knowledge",
        "--expect100-timeout",
        "10",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "waiting body",
        &url,
    ]);
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains("< HTTP/2 100"), "{verbose}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "body", "{verbose}");
    assert!(started.elapsed() < Duration::from_secs(5), "{verbose}");

    // An HTTP/1.1 request with an empty body ends its stream at once.
    let mut conn = support::RawConn::connect(levee.port);
    conn.send(
        b"POST /trailers HTTP/1.1\r\nHost: h2.test\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n",
    );
    let r = conn.read_response("POST");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-got"), Some("{}"), "{r:?}");
    assert_eq!(r.body, b"body", "{r:?}");
    assert_eq!(
        r.trailers,
        [("x-resp-trailer".to_owned(), "yes".to_owned())]
    );

    // The server resets the stream before the HTTP/1.1 body is all sent
    // (past the first 16 KiB levee reads before any upstream): a 502 at
    // once, without waiting for the rest of the body.
    let mut conn = support::RawConn::connect(levee.port);
    let mut start =
        b"POST /reset HTTP/1.1\r\nHost: h2.test\r\nContent-Length: 100000\r\n\r\n".to_vec();
    start.extend_from_slice(&[b'x'; 20_000]);
    conn.send(&start);
    let r = conn.read_response("POST");
    assert_eq!(r.status, 502, "{r:?}");
}

/// A gRPC frame: uncompressed, its length, the message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    out.extend_from_slice(message);
    out
}

#[test]
fn http1_clients_are_translated_with_trailers_when_asked() {
    let server = GrpcServer::start(None);
    let levee = h2c_levee(&[&server.addr()]);
    let mut conn = support::RawConn::connect(levee.port);

    // A chunked request body in two chunks; `TE: trailers` asks for the
    // server's trailers, which arrive in the last chunk.
    let msg = frame(b"from-http1");
    let (a, b) = msg.split_at(4);
    let mut req = b"POST /test.Svc/Unary HTTP/1.1\r\nHost: api.test\r\n\
                    Content-Type: application/grpc\r\nTE: trailers\r\nConnection: TE\r\n\
                    x-req: h1\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for part in [a, b] {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    conn.send(&req);
    let r = conn.read_response("POST");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-echo"), Some("h1"), "{r:?}");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
    assert_eq!(r.body, msg, "{r:?}");
    let trailer = |name: &str| {
        r.trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(trailer("grpc-status").as_deref(), Some("0"), "{r:?}");
    assert_eq!(trailer("x-trail").as_deref(), Some("done"), "{r:?}");

    // The connection stays open; without `TE: trailers` none are sent, and
    // a trailers-only answer keeps its status in the head.
    let why = b"no trailers here";
    let body = frame(why);
    let mut req = format!(
        "POST /test.Svc/Fail HTTP/1.1\r\nHost: api.test\r\nContent-Type: application/grpc\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    conn.send(&req);
    let r = conn.read_response("POST");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("grpc-status"), Some("3"), "{r:?}");
    assert_eq!(r.header("grpc-message"), Some("no trailers here"), "{r:?}");
    assert!(r.body.is_empty() && r.trailers.is_empty(), "{r:?}");
    let logged_lines = logged(levee.dir(), "HTTP/1.1\" 200 ", 2);
    assert!(
        logged_lines[0].contains("/test.Svc/Unary"),
        "{logged_lines:?}"
    );
}

#[test]
fn a_second_connection_past_the_stream_limit_and_idle_ones_close() {
    // The server takes one stream per connection.
    let server = GrpcServer::start_with(None, Some(1));
    let setup = LeveeSetup::new();
    let upstream = "protocol = \"h2c\"\nkeepalive_timeout = \"1s\"";
    let cfg = config(&setup, H2C, &[&server.addr()], upstream, "");
    let levee = setup.start(&format!("workers = 1\n{cfg}"));
    let t = plain(&levee);

    // Two calls at once: the second cannot wait behind the first on the
    // one connection, so it gets a connection of its own. The second
    // starts once the first runs, so levee has the server's SETTINGS (one
    // stream) by then; before them an h2 client may not know the limit.
    let first = std::thread::spawn(move || call(t, "hang", &["s1", "8"]));
    assert!(
        server
            .wait_line("STARTED s1", Duration::from_secs(7))
            .is_some(),
        "the first call should start"
    );
    let second = std::thread::spawn(move || call(t, "hang", &["s2", "8"]));
    assert!(
        server
            .wait_line("STARTED s2", Duration::from_secs(7))
            .is_some(),
        "the second call should run beside the first"
    );
    assert_eq!(connections_to(server.port), 2);
    for pending in [first, second] {
        let r = pending.join().expect("client thread");
        assert_eq!(text(&r, "code"), "DEADLINE_EXCEEDED", "{r}");
    }

    // Unused for keepalive_timeout (1 s), both close.
    let closed = support::poll(Duration::from_secs(5), || {
        (connections_to(server.port) == 0).then_some(())
    });
    assert!(
        closed.is_some(),
        "{} still open",
        connections_to(server.port)
    );
    // And a new call opens one again.
    let r = call(t, "unary", &["again"]);
    assert_eq!(text(&r, "reply"), "again", "{r}");
}

#[test]
fn tls_listener_with_alpn_h2_to_an_h2_upstream_over_tls() {
    let setup = LeveeSetup::new();
    let dir = setup.dir.path().to_owned();
    certs::ca(&dir, "ca");
    certs::leaf(&dir, "ca", "a", "a.test", &["a.test"]);
    certs::leaf(&dir, "ca", "up", "grpc.test", &["grpc.test"]);
    let server = GrpcServer::start(Some((&dir.join("up.pem"), &dir.join("up.key"))));
    let listener = "[listener.tls]\nalpn = [\"h2\", \"http/1.1\"]\n\
                    [[listener.tls.certs]]\ncert = \"a.pem\"\nkey = \"a.key\"\nnames = [\"a.test\"]";
    let upstream =
        "protocol = \"h2\"\n[upstream.app.tls]\nca = \"ca.pem\"\nserver_name = \"grpc.test\"";
    let cfg = config(&setup, listener, &[&server.addr()], upstream, "");
    let levee = setup.start(&cfg);
    let ca = dir.join("ca.pem");
    let t = Target {
        port: levee.port,
        tls: Some((&ca, "a.test")),
    };

    let r = call(t, "unary", &["over-tls"]);
    assert_eq!(text(&r, "code"), "OK", "{r}");
    assert_eq!(text(&r, "reply"), "over-tls");
    assert_eq!(r["trailing"]["x-trail"], "done", "{r}");
    let seen = server
        .wait_line("HEADERS ", Duration::from_secs(5))
        .expect("request metadata");
    assert!(seen.contains("\"x-forwarded-proto\": \"https\""), "{seen}");

    let r = call(t, "fail", &["no such thing"]);
    assert_eq!(text(&r, "code"), "INVALID_ARGUMENT", "{r}");
    assert_eq!(text(&r, "details"), "no such thing");

    let r = call(t, "download", &["3000000"]);
    assert_eq!(r["total"], 3_000_000, "{r}");
    let r = call(t, "chat", &["tls", "h2"]);
    assert_eq!(r["replies"], serde_json::json!(["slt", "2h"]));
}
