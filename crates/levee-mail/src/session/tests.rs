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
    // 936 in a debug build today; an inline TLS handshake adds 1,360.
    assert!(size <= 1280, "a session's task grew to {size} bytes");
}
