//! An HTTP/1 client's requests to an HTTP/2 upstream (`protocol = "h2c"`):
//! the translation both ways, and a stream's reset or silence on either
//! side reaching the other.

use std::time::Duration;

use crate::support::{
    End, Fake, Gate, Levee, Reply, abandon, eventually, finish, get, read_until, send,
};

fn h2c(fake: &Fake, upstream: &str, timeouts: &str) -> Levee {
    Levee::proxy(
        &[fake.addr],
        &format!("protocol = \"h2c\"\n{upstream}"),
        timeouts,
    )
}

#[test]
fn an_answer_in_data_frames_reaches_an_http1_client_chunked() {
    let fake = Fake::h2c(vec![
        Reply::status(200)
            .header("x-from", "fake")
            .data(b"hello ")
            .delay(Duration::from_millis(50))
            .data(b"h2"),
    ]);
    let levee = h2c(&fake, "", "");

    let r = get(levee.addr, "/grpc.Service/Call");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.complete, "{r:?}");
    assert_eq!(r.text(), "hello h2");
    assert!(
        r.head.to_ascii_lowercase().contains("x-from: fake"),
        "{r:?}"
    );

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/grpc.Service/Call");
    // levee reads trailers, and gRPC servers insist it says so.
    assert!(
        seen[0]
            .headers
            .contains(&("te".to_string(), "trailers".to_string()))
    );
}

#[test]
fn a_stream_reset_before_the_head_is_502() {
    let fake = Fake::h2c(vec![Reply::only(End::Reset)]);
    let levee = h2c(&fake, "retries = 1\nmax_fails = 0", "");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 502, "{r:?}");
    // The stream was opened: it is not moved (nor is there a server to).
    assert_eq!(fake.requests(), 1);
}

#[test]
fn a_stream_reset_mid_body_cuts_the_client_response() {
    // The reset waits until the client has the head and the first bytes:
    // one sent with them could overtake them inside levee's h2 client.
    let gate = Gate::new();
    let fake = Fake::h2c(vec![
        Reply::status(200)
            .data(b"part")
            .wait(&gate)
            .then(End::Reset),
    ]);
    let levee = h2c(&fake, "", "");

    let mut conn = send(
        levee.addr,
        "GET / HTTP/1.1\r\nHost: fake.test\r\nConnection: close\r\n\r\n",
    );
    let mut raw = Vec::new();
    assert!(read_until(&mut conn, &mut raw, b"part"), "{raw:?}");
    gate.open();
    let r = finish(conn, raw);
    assert_eq!(r.status, 200, "{r:?}");
    // No last chunk: the client can tell the body is not whole.
    assert!(!r.complete, "{r:?}");
    assert_eq!(r.text(), "part");
}

#[test]
fn no_head_within_upstream_read_is_504_and_the_stream_cancelled() {
    let fake = Fake::h2c(vec![Reply::only(End::Hang)]);
    let levee = h2c(&fake, "", "upstream_read = \"200ms\"");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 504, "{r:?}");
    assert!(
        eventually(|| fake.cancelled() == ["CANCEL"]),
        "the timed-out stream was not cancelled: {:?}",
        fake.cancelled()
    );
}

#[test]
fn a_client_gone_before_the_answer_cancels_the_stream() {
    let fake = Fake::h2c(vec![Reply::only(End::Hang)]);
    let levee = h2c(&fake, "", "");

    assert_eq!(abandon(&levee, &fake), ["CANCEL"]);
}
