//! An HTTP/2 stream's end against a real `h2` client over an in-memory
//! connection: no peer program speaks HTTP/2 frame by frame as tightly as
//! these need (the integration tier's tests/http2_frames.rs drives levee
//! as a whole).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;

use super::Stream;

/// A client's stream and levee's end of it: the request was sent with a
/// body to follow; both connections are driven by tasks of their own.
async fn pair() -> (h2::SendStream<Bytes>, h2::client::ResponseFuture, Stream) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut conn = h2::server::handshake(ours).await.expect("server handshake");
        let (req, respond) = conn.accept().await.expect("a stream").expect("no error");
        // The connection must be polled for frames to move.
        tokio::spawn(async move { while conn.accept().await.is_some() {} });
        (req, respond)
    });
    let (send, conn) = h2::client::handshake(theirs)
        .await
        .expect("client handshake");
    tokio::spawn(conn);
    let mut send = send.ready().await.expect("ready");
    let req = http::Request::post("http://a/").body(()).expect("request");
    let (response, body) = send.send_request(req, false).expect("sent");
    let (req, respond) = server.await.expect("server task");
    let site = crate::Site::build(&levee_config::builtin_static(
        ".".into(),
        "127.0.0.1:1".parse().expect("literal"),
    ))
    .expect("site");
    let stream = Stream::new(req.into_body(), respond, &site, None);
    (body, response, stream)
}

#[tokio::test]
async fn an_http2_stream_is_gone_when_its_client_resets_it() {
    let (mut body, _response, mut stream) = pair().await;
    assert!(
        timeout(Duration::from_millis(20), stream.gone())
            .await
            .is_err()
    );
    assert!(!stream.went_away());
    body.send_reset(h2::Reason::CANCEL);
    assert!(
        timeout(Duration::from_secs(10), stream.gone())
            .await
            .is_ok()
    );
    assert!(stream.went_away());
    // And again: every later wait sees it too.
    assert!(
        timeout(Duration::from_secs(10), stream.gone())
            .await
            .is_ok()
    );
    // The request body itself was never read.
    assert!(stream.pre.is_empty() && stream.received == 0);
}
