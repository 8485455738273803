//! The watch on an HTTP/1 client, over real loopback sockets (an HTTP/2
//! stream's is `exchange/h2/tests.rs`'s).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::*;
use crate::stream::ClientStream;

/// levee's end of a connection (as a `ClientStream`) and the client's.
async fn pair() -> (ClientStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (ours, _) = listener.accept().await.expect("accept");
    (ClientStream::Plain(ours), client)
}

/// Whether `gone` resolves within `wait`.
async fn resolves(stream: &mut ClientStream, spare: &mut BytesMut, wait: Duration) -> bool {
    timeout(wait, gone(stream, spare)).await.is_ok()
}

#[tokio::test]
async fn a_client_that_closes_is_gone() {
    let (mut ours, client) = pair().await;
    let mut spare = BytesMut::new();
    assert!(!resolves(&mut ours, &mut spare, Duration::from_millis(50)).await);
    drop(client);
    assert!(resolves(&mut ours, &mut spare, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_client_that_half_closes_is_gone() {
    let (mut ours, mut client) = pair().await;
    client.shutdown().await.expect("shutdown");
    assert!(resolves(&mut ours, &mut BytesMut::new(), Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_pipelined_request_is_kept_and_the_client_still_watched() {
    let (mut ours, mut client) = pair().await;
    let mut spare = BytesMut::from(&b"GET /1"[..]);
    client
        .write_all(b" HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    // Watched until the bytes are in (generous for a loaded machine); the
    // watch must never take them for a departure.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while spare.len() < 28 && tokio::time::Instant::now() < deadline {
        assert!(!resolves(&mut ours, &mut spare, Duration::from_millis(20)).await);
    }
    assert_eq!(&spare[..], b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    drop(client);
    assert!(resolves(&mut ours, &mut spare, Duration::from_secs(10)).await);
    assert_eq!(spare.len(), 28, "nothing lost, nothing added");
}

#[tokio::test]
async fn the_watch_stops_after_so_much_sent_ahead() {
    let (mut ours, mut client) = pair().await;
    let mut spare = BytesMut::new();
    let writer = tokio::spawn(async move {
        let _ = client.write_all(&vec![b'x'; 4 * SPARE]).await;
        client
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while spare.len() < SPARE && tokio::time::Instant::now() < deadline {
        assert!(!resolves(&mut ours, &mut spare, Duration::from_millis(20)).await);
    }
    assert!(
        (SPARE..SPARE + 512).contains(&spare.len()),
        "{}",
        spare.len()
    );
    // Past the bound it reads no more: the rest stays in the socket.
    assert!(!resolves(&mut ours, &mut spare, Duration::from_millis(50)).await);
    assert!(spare.len() < SPARE + 512);
    writer.abort();
}
