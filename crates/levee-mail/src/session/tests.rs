use levee_config::model::{AuthHttp, MailAuth, MailListener, MailProtocol};

use crate::Frontend;

/// An idle logged-in session costs its task, allocated once at the size of
/// the largest state `run` ever waits in. What only the pre-auth stage or a
/// handshake needs is boxed and freed; this keeps it so (bench/README.md).
#[tokio::test]
async fn a_session_task_stays_small() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (server, peer) = listener.accept().await.expect("accept");
    let auth = MailAuth::Http(AuthHttp {
        url: "http://127.0.0.1:1/".to_owned(),
        address: "127.0.0.1:1".to_owned(),
        host: "127.0.0.1:1".to_owned(),
        uri: "/".to_owned(),
        timeout: std::time::Duration::from_secs(1),
        headers: Vec::new(),
        keepalive: 0,
        negative_ttl: std::time::Duration::ZERO,
    });
    let front =
        Frontend::new(addr, &MailListener::new(MailProtocol::Imap, auth)).expect("frontend");
    let session = super::run(front, server, peer, None);
    let size = std::mem::size_of_val(&session);
    println!("session task: {size} bytes");
    // 960 in a debug build of levee-mail today; an inline TLS handshake
    // adds 1,360, and submission's filter, were it not boxed with its
    // relay, 144.
    assert!(size <= 1100, "a session's task grew to {size} bytes");
}

/// IMAP takes a 30 KB command before login (a client's `ID`); the buffer
/// that grew for it is given back once it is handled, so a session waiting
/// for its next command costs what it did before.
#[test]
fn a_large_command_does_not_keep_its_buffer() {
    let (stream, _peer) = tokio::io::duplex(64);
    let mut io = super::Io {
        stream,
        buf: vec![b'x'; 31_808],
        deadline: tokio::time::Instant::now(),
    };
    io.consume(31_808);
    assert_eq!(io.buf.capacity(), 0, "freed once handled");
    // A pipelined command behind it stays, in a buffer of the usual size.
    io.buf = vec![b'x'; 40_000];
    io.consume(39_990);
    assert_eq!(io.buf, b"xxxxxxxxxx");
    assert!(
        io.buf.capacity() <= super::KEEP_BUF,
        "{}",
        io.buf.capacity()
    );
    // An ordinary buffer is kept for the next read, as before.
    io.buf = Vec::with_capacity(super::KEEP_BUF);
    io.buf.extend_from_slice(b"a NOOP\r\n");
    io.consume(8);
    assert_eq!(io.buf.capacity(), super::KEEP_BUF);
}
