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
        goodbye: &crate::kick::IMAP,
        grace_ms: 5_000,
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
    assert_eq!(end, End::Kicked { at_boundary: true });
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.expect("read");
    assert_eq!(rest, crate::kick::IMAP.line);
}

/// A splice relaying `client_side` to a backend that answers each command
/// line with `TAG OK done` after `delay`, closable for `user`.
fn answering_backend(
    user: &[u8],
    grace_ms: u32,
    delay: Duration,
) -> (
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<std::io::Result<End>>,
) {
    let (client, client_side) = duplex(4096);
    let (backend, backend_side) = duplex(4096);
    tokio::spawn(async move {
        let (read, mut write) = tokio::io::split(backend);
        let mut lines = tokio::io::BufReader::new(read);
        let mut line = String::new();
        while tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
            .await
            .is_ok_and(|n| n > 0)
        {
            let tag = line.split(' ').next().unwrap_or("*").to_owned();
            tokio::time::sleep(delay).await;
            let answer = format!("* 1 EXISTS\r\n{tag} OK done\r\n");
            if write.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            line.clear();
        }
    });
    let farewell = super::Farewell {
        kick: crate::kick::register(user),
        goodbye: &crate::kick::IMAP,
        grace_ms,
    };
    let splice = Splice::new(
        client_side,
        backend_side,
        Vec::new(),
        Vec::new(),
        Duration::from_secs(60),
    )
    .with_farewell(farewell);
    (client, tokio::spawn(splice))
}

/// Asks `user`'s one session to close; how it ended and how long after.
async fn close(
    user: &[u8],
    task: tokio::task::JoinHandle<std::io::Result<End>>,
) -> (End, Duration) {
    let asked = tokio::time::Instant::now();
    assert_eq!(crate::kick::close_user(user), 1);
    let end = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("closed within a minute")
        .expect("join")
        .expect("relay");
    (end, asked.elapsed())
}

/// The client: a command every 100 ms, so never 300 ms of silence.
/// Once a move is asked for, it is closed between two commands, after the
/// last answer is complete, well before the grace.
#[tokio::test(start_paused = true)]
async fn a_busy_client_is_closed_at_the_next_command_boundary() {
    let (client, task) = answering_backend(b"splice-busy", 30_000, Duration::from_millis(5));
    let (mut read, mut write) = tokio::io::split(client);
    let sender = tokio::spawn(async move {
        for n in 0.. {
            if write
                .write_all(format!("n{n} NOOP\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let (end, took) = close(b"splice-busy", task).await;
    assert_eq!(end, End::Kicked { at_boundary: true });
    assert!(took < Duration::from_millis(200), "closed after {took:?}");
    let mut got = Vec::new();
    read.read_to_end(&mut got).await.expect("read");
    let text = String::from_utf8_lossy(&got);
    // Every command was answered in full; the goodbye follows an answer.
    let bye = String::from_utf8_lossy(crate::kick::IMAP.line);
    assert!(text.ends_with(&format!(" OK done\r\n{bye}")), "{text}");
    sender.abort();
}

/// A session that never reaches a boundary (a client trickling a literal
/// the backend never answers) is closed when `move_grace` runs out.
#[tokio::test(start_paused = true)]
async fn a_session_without_a_boundary_is_closed_when_the_grace_runs_out() {
    let (client, task) = answering_backend(b"splice-trickle", 1_000, Duration::ZERO);
    let (mut read, mut write) = tokio::io::split(client);
    let sender = tokio::spawn(async move {
        let _ = write.write_all(b"a APPEND INBOX {100000+}\r\n").await;
        loop {
            if write.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (end, took) = close(b"splice-trickle", task).await;
    assert_eq!(end, End::Kicked { at_boundary: false });
    assert!(
        took >= Duration::from_millis(1_000) && took < Duration::from_millis(1_100),
        "closed after {took:?}"
    );
    let mut got = Vec::new();
    read.read_to_end(&mut got).await.expect("read");
    assert!(got.ends_with(crate::kick::IMAP.line), "{got:?}");
    sender.abort();
}

/// An idle logged-in session is mostly this struct; what the move logic
/// added lives in padding and in a word of the shared `Kick`, not in more
/// bytes per session (bench/README.md measures idle sessions).
#[test]
fn the_relay_state_does_not_grow() {
    type Session = Splice<crate::session::ClientStream, tokio::net::TcpStream>;
    // 216 bytes when levee-mail is built alone, 224 in the workspace build,
    // where other crates' tokio features widen its timer.
    assert!(
        std::mem::size_of::<Session>() <= 224,
        "{}",
        std::mem::size_of::<Session>()
    );
    assert!(std::mem::size_of::<crate::kick::Kick>() <= 48);
}

/// A backend that answers each command line with `250 N`, numbered, and
/// sends what it read on `lines`.
fn numbering_backend(
    backend: tokio::io::DuplexStream,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (read, mut write) = tokio::io::split(backend);
        let mut lines = tokio::io::BufReader::new(read);
        let mut line = String::new();
        let mut n = 0;
        while tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
            .await
            .is_ok_and(|n| n > 0)
        {
            n += 1;
            let _ = tx.send(std::mem::take(&mut line));
            if write
                .write_all(format!("250 {n}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// A submission relay over pipes: the client's and the backend's ends.
/// `pending`: what the login stage read behind AUTH; `to_client`: its reply.
fn submission_relay(
    pending: &[u8],
    to_client: &[u8],
) -> (
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<std::io::Result<End>>,
) {
    let (client, client_side) = duplex(4096);
    let (backend, backend_side) = duplex(4096);
    let splice = Splice::new(
        client_side,
        backend_side,
        pending.to_vec(),
        to_client.to_vec(),
        Duration::from_secs(60),
    )
    .filtered(true);
    (client, backend, tokio::spawn(splice))
}

/// Submission: levee answers XCLIENT itself, between the replies to the
/// commands around it, and the backend never reads it, not even when it
/// was pipelined behind AUTH (the leftover the login stage read).
#[tokio::test]
async fn a_submission_relay_answers_xclient_itself_in_order() {
    let (mut client, backend, task) = submission_relay(
        b"xclient LOGIN=bob\r\n",
        b"235 2.7.0 Authentication successful\r\n",
    );
    let mut seen = numbering_backend(backend);
    client
        .write_all(b"MAIL FROM:<a@b>\r\n\tXCLIENT LOGIN=bob\r\nRCPT TO:<c@d>\r\n")
        .await
        .expect("write");
    let expected = "235 2.7.0 Authentication successful\r\n550 5.7.0 Command not permitted\r\n250 1\r\n550 5.7.0 Command not permitted\r\n250 2\r\n";
    let mut got = vec![0; expected.len()];
    client.read_exact(&mut got).await.expect("replies");
    assert_eq!(String::from_utf8_lossy(&got), expected);
    drop(client);
    let end = task.await.expect("join").expect("relay");
    assert_eq!(end, End::Closed);
    let mut lines = Vec::new();
    while let Some(l) = seen.recv().await {
        lines.push(l);
    }
    assert_eq!(lines, ["MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n"]);
}

/// A client waiting for DATA's reply from a backend that closes instead is
/// closed too, not left until the idle timeout.
#[tokio::test(start_paused = true)]
async fn a_client_waiting_on_a_backend_that_closed_is_closed() {
    let (mut client, mut backend, task) = submission_relay(b"", b"");
    client
        .write_all(b"DATA\r\nSubject: held\r\n")
        .await
        .expect("write");
    let mut got = vec![0; 6];
    backend.read_exact(&mut got).await.expect("DATA");
    assert_eq!(got, b"DATA\r\n");
    drop(backend);
    let end = task.await.expect("join");
    assert!(matches!(end, Ok(End::Closed) | Err(_)), "{end:?}");
}
