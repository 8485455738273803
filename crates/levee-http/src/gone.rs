//! Noticing that a client went away while levee works for it, so that the
//! upstream work it asked for stops at once (docs/http1.md, "A client that
//! goes away"): the upstream connection is closed, the server's passive
//! health is not charged, and the access log says 499.
//!
//! - An HTTP/1 client is watched through its own socket while levee waits
//!   on the upstream (for a connection, the response head, the next body
//!   bytes): an end of stream or an error means it is gone. A client may
//!   pipeline its next request meanwhile: those bytes are kept in the
//!   connection's buffer, up to [`SPARE`], and then the watch stops (the
//!   next write to the client tells instead). A client that half-closes
//!   its side (`shutdown(SHUT_WR)`) counts as gone, as it does for nginx.
//! - An HTTP/2 stream has no socket of its own: its end waits for the
//!   client's reset of the stream, which the `h2` crate reports also when
//!   the connection ends (`exchange/h2.rs`, `Stream::gone`).
//!
//! Cost on the plain HTTP/1 path: the watch is polled only when the
//! upstream is not ready, and its first poll reads the socket once (the
//! readiness tokio kept from reading the request is stale), which finds
//! nothing and clears it. The connection's next wait for a request then
//! sleeps on that cleared readiness instead of paying the same empty read
//! itself, so a keep-alive exchange makes as many syscalls as before (2.0
//! `recvfrom` per proxied request with and without the watch, strace). The
//! read goes through an uninitialised 512-byte buffer on the stack, so
//! nothing is allocated unless the client really sent something. In user
//! space the watch and the request's origin (origin.rs) cost about 540
//! instructions per proxied keep-alive request, 25.3k -> 25.9k (callgrind,
//! release build, 2,000 requests); most of it is that read going through
//! tokio's readiness.

use std::future::{Future, pending, poll_fn};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

use crate::stream::ClientStream;

/// Bytes a watched client may send ahead (its next requests) before levee
/// stops watching it: a pipelined head is at most `limits.max_header_bytes`
/// (32 KiB by default), and a watch must not turn into a way to make levee
/// buffer a client's uploads.
pub(crate) const SPARE: usize = 64 * 1024;

/// Counts an exchange stopped because its client went away.
pub(crate) fn count() {
    let counters = levee_protect::metrics::counters();
    counters
        .client_gone
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Resolves once the client of `stream` has gone away. Bytes it sends
/// meanwhile are appended to `spare` (the connection's buffer): they are
/// its next request.
pub(crate) async fn gone(stream: &mut ClientStream, spare: &mut BytesMut) {
    poll_fn(|cx| poll_gone(stream, spare, cx)).await
}

fn poll_gone(stream: &mut ClientStream, spare: &mut BytesMut, cx: &mut Context<'_>) -> Poll<()> {
    loop {
        if spare.len() >= SPARE {
            // Watched long enough: from here a failed write tells.
            return Poll::Pending;
        }
        // Left uninitialised: zeroing it would cost more than the read
        // that usually finds nothing.
        let mut scratch = [MaybeUninit::<u8>::uninit(); 512];
        let mut read = ReadBuf::uninit(&mut scratch);
        match Pin::new(&mut *stream).poll_read(cx, &mut read) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(()),
            Poll::Ready(Ok(())) => spare.extend_from_slice(read.filled()),
        }
    }
}

/// A relay's receiver that can be watched for going away (`body.rs`): the
/// client; upstream sockets are never watched this way.
pub(crate) trait Watch {
    fn gone<'a>(&'a mut self, spare: &'a mut BytesMut) -> impl Future<Output = ()> + Send + 'a;
}

impl Watch for ClientStream {
    fn gone<'a>(&'a mut self, spare: &'a mut BytesMut) -> impl Future<Output = ()> + Send + 'a {
        gone(self, spare)
    }
}

impl Watch for levee_upstream::UpstreamStream {
    fn gone<'a>(&'a mut self, _: &'a mut BytesMut) -> impl Future<Output = ()> + Send + 'a {
        pending()
    }
}

#[cfg(test)]
mod tests;
