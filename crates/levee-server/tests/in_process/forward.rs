//! The forward loop against HTTP/1 fakes: which failures move a request to
//! another server and how many times, what status each failure gives the
//! client, a client's cancel reaching the upstream, and passive ejection.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{End, Fake, Levee, Reply, abandon, eventually, get, request};

/// A POST with a small body: read whole before a server is contacted, so
/// only its method keeps levee from sending it again.
fn post(levee: &Levee) -> crate::support::Response {
    request(levee.addr, "POST", "/form", "a=1")
}

fn addrs(fakes: &[&Fake]) -> Vec<SocketAddr> {
    fakes.iter().map(|f| f.addr).collect()
}

fn total(fakes: &[&Fake]) -> usize {
    fakes.iter().map(|f| f.requests()).sum()
}

#[test]
fn a_get_reset_before_its_answer_moves_to_the_next_server() {
    let bad = Fake::http1(vec![Reply::only(End::Reset)]);
    let good = Fake::http1(vec![Reply::with_body(200, "good")]);
    let levee = Levee::proxy(&addrs(&[&bad, &good]), "retries = 1\nmax_fails = 0", "");

    for _ in 0..4 {
        let r = get(levee.addr, "/");
        assert_eq!((r.status, r.text().as_str()), (200, "good"), "{r:?}");
    }
    // Round robin sent some of the four to the bad server first.
    assert!(bad.requests() >= 1, "the bad server was never tried");
    assert_eq!(good.requests(), 4);
}

#[test]
fn retries_stop_at_the_limit_and_try_each_server_once() {
    let fakes: Vec<Fake> = (0..4)
        .map(|_| Fake::http1(vec![Reply::only(End::Reset)]))
        .collect();
    let all: Vec<&Fake> = fakes.iter().collect();
    let levee = Levee::proxy(&addrs(&all), "retries = 2\nmax_fails = 0", "");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 502, "{r:?}");
    // The first try and two retries, each to a server not tried yet.
    assert_eq!(total(&all), 3);
    assert!(fakes.iter().all(|f| f.requests() <= 1));
}

#[test]
fn a_post_reset_before_its_answer_is_not_resent() {
    let a = Fake::http1(vec![Reply::only(End::Reset)]);
    let b = Fake::http1(vec![Reply::only(End::Reset)]);
    let levee = Levee::proxy(&addrs(&[&a, &b]), "retries = 1\nmax_fails = 0", "");

    let r = post(&levee);
    assert_eq!(r.status, 502, "{r:?}");
    // The server may have acted on it: one try only.
    assert_eq!(total(&[&a, &b]), 1);

    // The same failure moves a GET: retries are on.
    let r = get(levee.addr, "/");
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(total(&[&a, &b]), 3);
}

#[test]
fn retry_on_status_moves_idempotent_requests_only() {
    let a = Fake::http1(vec![Reply::with_body(503, "busy a")]);
    let b = Fake::http1(vec![Reply::with_body(503, "busy b")]);
    let levee = Levee::proxy(&addrs(&[&a, &b]), "retries = 1\nmax_fails = 0", "");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().starts_with("busy"), "{r:?}");
    assert_eq!(total(&[&a, &b]), 2, "a GET goes to the second server");

    let r = post(&levee);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(total(&[&a, &b]), 3, "a POST stays with its server's answer");
}

#[test]
fn no_answer_within_upstream_read_is_504_and_not_resent() {
    let a = Fake::http1(vec![Reply::only(End::Hang)]);
    let b = Fake::http1(vec![Reply::only(End::Hang)]);
    let levee = Levee::proxy(
        &addrs(&[&a, &b]),
        "retries = 1\nmax_fails = 0",
        "upstream_read = \"200ms\"",
    );

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 504, "{r:?}");
    // The server may still be working on it: no second server is asked.
    assert_eq!(total(&[&a, &b]), 1);
    // And the request it never answered is given up.
    assert!(
        eventually(|| a.cancelled().len() + b.cancelled().len() == 1),
        "levee kept the timed-out upstream request open"
    );
}

#[test]
fn a_refused_connect_is_502() {
    // Bound but not listening: a connect is refused, and the port stays
    // ours for the test's length.
    let closed =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    closed
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let addr = closed
        .local_addr()
        .expect("address")
        .as_socket()
        .expect("an IP address");
    let levee = Levee::proxy(&[addr], "retries = 0", "");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 502, "{r:?}");
}

#[test]
fn a_close_mid_body_cuts_the_client_response() {
    let fake = Fake::http1(vec![
        Reply::status(200)
            .header("content-length", "100")
            .data(b"0123456789")
            .then(End::Close),
    ]);
    let levee = Levee::proxy(&[fake.addr], "retries = 1", "");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 200, "{r:?}");
    // The client sees a cut body, never a whole one of the wrong length.
    assert!(!r.complete, "{r:?}");
    assert_eq!(r.text(), "0123456789");
    assert_eq!(fake.requests(), 1, "a response under way is not retried");
}

#[test]
fn a_body_in_delayed_chunks_arrives_whole() {
    let fake = Fake::http1(vec![
        Reply::status(200)
            .header("transfer-encoding", "chunked")
            .data(b"5\r\nhello\r\n")
            .delay(Duration::from_millis(50))
            .data(b"6\r\n world\r\n")
            .delay(Duration::from_millis(50))
            .data(b"0\r\n\r\n"),
    ]);
    let levee = Levee::proxy(&[fake.addr], "", "");

    let r = get(levee.addr, "/");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.complete, "{r:?}");
    assert_eq!(r.text(), "hello world");
}

#[test]
fn a_client_gone_before_the_answer_closes_the_upstream_request() {
    let fake = Fake::http1(vec![Reply::only(End::Hang)]);
    // upstream_read stays at 60 s: only the client's going can end it.
    let levee = Levee::proxy(&[fake.addr], "", "");

    // The fake's read ends: levee closed the upstream connection.
    assert_eq!(abandon(&levee, &fake), ["closed"]);
}

#[test]
fn max_fails_failures_eject_a_server_for_fail_timeout() {
    let bad = Fake::http1(vec![Reply::only(End::Reset)]);
    let good = Fake::http1(vec![Reply::with_body(200, "good")]);
    let levee = Levee::proxy(
        &addrs(&[&bad, &good]),
        "retries = 1\nmax_fails = 1\nfail_timeout = \"60s\"",
        "",
    );

    for _ in 0..8 {
        let r = get(levee.addr, "/");
        assert_eq!(r.status, 200, "{r:?}");
    }
    // One failure ejected it: no later request was sent its way.
    assert_eq!(bad.requests(), 1);
    assert_eq!(good.requests(), 8);
}

#[test]
fn the_only_server_is_never_ejected() {
    let only = Fake::http1(vec![Reply::only(End::Reset)]);
    let levee = Levee::proxy(&[only.addr], "retries = 0\nmax_fails = 1", "");

    for _ in 0..3 {
        let r = get(levee.addr, "/");
        // Its own failure each time, never "no server" (503).
        assert_eq!(r.status, 502, "{r:?}");
    }
    assert_eq!(only.requests(), 3);
}
