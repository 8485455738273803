//! The relay over in-memory pipes (a relay needs no real peer to test).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

use super::{End, Splice};

#[tokio::test]
async fn relays_both_ways_leftovers_first_and_ends_on_close() {
    let (mut client, client_side) = duplex(64);
    let (mut backend, backend_side) = duplex(64);
    let splice = Splice::new(
        client_side,
        backend_side,
        b"a3 SELECT INBOX\r\n".to_vec(),
        b"a2 OK Logged in\r\n".to_vec(),
        Duration::from_secs(60),
    );
    let task = tokio::spawn(splice);
    let mut got = vec![0; 17];
    client.read_exact(&mut got).await.expect("login reply");
    assert_eq!(got, b"a2 OK Logged in\r\n");
    backend
        .read_exact(&mut got)
        .await
        .expect("pipelined command");
    assert_eq!(got, b"a3 SELECT INBOX\r\n");
    // More than the pipe holds at once: the unsent remainder is kept and drained.
    let big = vec![b'x'; 10_000];
    let writer = tokio::spawn(async move {
        backend.write_all(&big).await.expect("write");
        backend
    });
    let mut received = vec![0; 10_000];
    client.read_exact(&mut received).await.expect("relayed");
    assert!(received.iter().all(|&b| b == b'x'));
    let backend = writer.await.expect("writer");
    drop(client);
    drop(backend);
    let end = task.await.expect("join").expect("relay");
    assert_eq!(end, End::Closed);
}

#[tokio::test(start_paused = true)]
async fn idle_session_times_out_and_traffic_defers_it() {
    let (mut client, client_side) = duplex(64);
    let (_backend, backend_side) = duplex(64);
    let task = tokio::spawn(Splice::new(
        client_side,
        backend_side,
        Vec::new(),
        Vec::new(),
        Duration::from_secs(30),
    ));
    tokio::time::sleep(Duration::from_secs(20)).await;
    client.write_all(b"a NOOP\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!task.is_finished(), "traffic 20 s ago keeps it open");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let end = task.await.expect("join").expect("relay");
    assert_eq!(end, End::Idle);
}

#[tokio::test]
async fn a_close_request_waits_for_a_quiet_moment_then_says_farewell() {
    let (mut client, client_side) = duplex(256);
    let (mut backend, backend_side) = duplex(256);
    let farewell = super::Farewell {
        kick: crate::kick::register(b"splice-test-user"),
        line: b"* BYE moved\r\n",
    };
    let task = tokio::spawn(
        Splice::new(
            client_side,
            backend_side,
            Vec::new(),
            Vec::new(),
            Duration::from_secs(60),
        )
        .with_farewell(farewell),
    );
    backend.write_all(b"* 1 EXISTS\r\n").await.expect("write");
    let mut got = vec![0; 12];
    client.read_exact(&mut got).await.expect("relayed");
    assert_eq!(crate::kick::close_user(b"splice-test-user"), 1);
    // Just active: the farewell waits for the session to be quiet.
    tokio::time::sleep(crate::kick::QUIET / 3).await;
    assert!(!task.is_finished());
    let end = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("closed once quiet")
        .expect("join")
        .expect("relay");
    assert_eq!(end, End::Kicked);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.expect("read");
    assert_eq!(rest, b"* BYE moved\r\n");
}
