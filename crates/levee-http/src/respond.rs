//! Writing levee's own bytes to a client: the send every HTTP/1 answer
//! goes through, HSTS, a redirect's target, and the lingering close.

use std::time::Duration;

use levee_config::RedirectAction;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::message::RequestHead;
use crate::stream::ClientStream;

/// Writes `bytes` to the client within `limit`. False if the client is gone.
pub(crate) async fn send(stream: &mut ClientStream, bytes: &[u8], limit: Duration) -> bool {
    // Flushed: TLS keeps records it could not send yet until asked.
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    matches!(crate::timed::within(limit, write).await, Ok((Ok(()), _)))
}

/// The `Strict-Transport-Security` line (shape.rs puts it after a head's
/// status line).
pub(crate) fn hsts_line(out: &mut Vec<u8>, max_age: u64) {
    out.extend_from_slice(b"Strict-Transport-Security: max-age=");
    crate::h1::write::push_u64(out, max_age);
    out.extend_from_slice(b"\r\n");
}

/// A redirect's target: `{host}` and `{uri}` in the route's `to` replaced
/// by the request's host and its path with query.
pub(crate) fn location(r: &RedirectAction, req: &RequestHead) -> String {
    let host = req
        .host
        .map(|h| String::from_utf8_lossy(req.fields.span_of(h)).into_owned())
        .unwrap_or_default();
    let uri = String::from_utf8_lossy(req.uri());
    r.to.replace("{host}", &host).replace("{uri}", &uri)
}

/// Stops writing, then reads and discards what the client still sends for a
/// moment, so closing does not reset the connection before the client has
/// read levee's last response (the "lingering close" nginx also does).
pub(crate) async fn linger_close(mut stream: ClientStream) {
    linger(&mut stream).await;
}

/// What [`linger_close`] does, on any stream.
pub(crate) async fn linger(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    // Bounded: a TLS close_notify waits for a client that may not read.
    let _ = timeout(Duration::from_secs(2), stream.shutdown()).await;
    let mut sink = [0u8; 4096];
    let _ = timeout(Duration::from_secs(2), async {
        let mut total = 0usize;
        while total < 256 * 1024 {
            match tokio::io::AsyncReadExt::read(stream, &mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_hsts_line() {
        let mut line = Vec::new();
        super::hsts_line(&mut line, 31536000);
        assert_eq!(line, b"Strict-Transport-Security: max-age=31536000\r\n");
    }
}
