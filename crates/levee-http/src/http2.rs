//! HTTP/2 to clients (RFC 9113), over TLS after ALPN `h2` or in cleartext
//! with prior knowledge (h2c). The `h2` crate owns the framing, HPACK, flow
//! control and stream states; levee adds limits and floods defences
//! (`[http2]`, `builder`), and serves each stream as an exchange.
//!
//! ```text
//! handshake (SETTINGS) ─▶ accept stream ─▶ spawn its exchange ─┐   (stream.rs)
//!          ▲                                                  │
//!          └──────────────────────────────────────────────────┘
//!  no open stream for `keepalive`, or levee stopping ─▶ GOAWAY ─▶ close
//! ```
//!
//! A stream's head is built from its decoded fields under the HTTP/1 head
//! rules (request.rs), and the stream is one exchange whose end is the
//! stream itself (exchange/h2.rs): proxying, static files, the cache,
//! redirects and the access log are the same code for both protocols,
//! with no HTTP/1 text in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::Instrument;

use bytes::Bytes;

use levee_config::Http2;

use crate::exchange::Client;
use crate::listener::ListenerCtx;

mod request;
mod stream;

/// The `h2` server with the `[http2]` limits. Past them the crate answers
/// as RFC 9113 requires: a header list over the size (or a CONTINUATION
/// flood) is refused, too many early resets (rapid reset, CVE-2023-44487)
/// or error resets end the connection with GOAWAY ENHANCE_YOUR_CALM.
fn builder(limits: &Http2) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_size)
        .initial_window_size(limits.initial_stream_window)
        .initial_connection_window_size(limits.initial_connection_window)
        .max_frame_size(limits.max_frame_size)
        .max_pending_accept_reset_streams(limits.max_pending_resets as usize)
        .max_local_error_reset_streams(Some(limits.max_error_resets as usize))
        // Bounds what one stream's response may queue beyond the window.
        .max_send_buffer_size(64 * 1024);
    b
}

/// What every stream of one connection shares.
struct Conn {
    listener: Arc<ListenerCtx>,
    peer: std::net::SocketAddr,
    hsts: Option<u64>,
    https: bool,
    /// The address the client connected to (for PROXY headers).
    local: Option<std::net::SocketAddr>,
    /// Streams whose exchange still runs, to know when the connection is
    /// idle, and to hold reset streams against `max_concurrent_streams`
    /// until their upstream work has stopped.
    open: AtomicUsize,
    /// Signalled when `open` falls to zero.
    quiet: tokio::sync::Notify,
}

/// Serves an HTTP/2 connection until it closes.
pub(crate) fn serve(client: Client, listener: Arc<ListenerCtx>) -> impl Future<Output = ()> + Send {
    // Taken apart before the future is made: the rest of `Client` (its
    // buffer, the request's origin) would sit in the task for good.
    let Client {
        stream,
        peer,
        permit,
        hsts,
        ..
    } = client;
    connection(stream, peer, permit, hsts, listener)
}

/// The connection's life: the handshake, then each stream accepted and
/// started until the client goes, the connection idles out or levee stops.
async fn connection(
    stream: crate::stream::ClientStream,
    peer: std::net::SocketAddr,
    permit: Option<levee_protect::ConnPermit>,
    hsts: Option<u64>,
    listener: Arc<ListenerCtx>,
) {
    // The permit counts the connection until it closes.
    let _permit = permit;
    let https = crate::stream::is_https(&stream);
    let local = crate::stream::local_addr(&stream);
    let (limits, request_head, keepalive) = {
        let site = listener.shared.site.load();
        (
            site.http2,
            site.timeouts.request_head,
            site.timeouts.keepalive,
        )
    };
    // Only the number: the whole `Http2` would sit in the connection's task.
    let max_streams = limits.max_concurrent_streams as usize;
    // Boxed: the handshake's state (a codec being set up) would otherwise
    // take room in this future beside the connection's for its whole life.
    let Some(mut h2) = Box::pin(handshake(stream, limits, request_head, peer)).await else {
        return;
    };
    let conn = Arc::new(Conn {
        listener,
        peer,
        hsts,
        https,
        local,
        open: AtomicUsize::new(0),
        quiet: tokio::sync::Notify::new(),
    });
    let mut closing = false;
    // Held from a stop's GOAWAY until the connection ends, so that levee
    // waits for it (within `timeouts.grace`) as for a request.
    let mut stopping = None;
    // Before its first stream a connection gets `request_head`, as an
    // HTTP/1 one does for its first request; after, `keepalive`.
    let mut idle_limit = request_head;
    loop {
        let shared = &conn.listener.shared;
        let idle = conn.open.load(Ordering::Acquire) == 0;
        let next = tokio::select! {
            next = h2.accept() => next,
            () = tokio::time::sleep(idle_limit), if idle && !closing => {
                // GOAWAY; `accept` ends once the client has seen it.
                h2.graceful_shutdown();
                closing = true;
                continue;
            }
            // The last open stream ended: start the idle clock.
            () = conn.quiet.notified(), if !idle => continue,
            () = shared.drained(), if !closing => {
                stopping = Some(shared.begin());
                h2.graceful_shutdown();
                closing = true;
                continue;
            }
        };
        match next {
            Some(Ok((req, respond))) => {
                idle_limit = keepalive;
                start_stream(&conn, req, respond, max_streams);
            }
            Some(Err(e)) => {
                tracing::debug!(%peer, error = %e, "HTTP/2 connection error");
                return;
            }
            None => {
                drop(stopping);
                return;
            }
        }
    }
}

/// The client's preface and the SETTINGS exchange, within `request_head`;
/// `None` when the client did not complete them.
async fn handshake(
    stream: crate::stream::ClientStream,
    limits: Http2,
    request_head: std::time::Duration,
    peer: std::net::SocketAddr,
) -> Option<h2::server::Connection<crate::stream::ClientStream, Bytes>> {
    let handshake = builder(&limits).handshake::<_, Bytes>(stream);
    match tokio::time::timeout(request_head, handshake).await {
        Ok(Ok(h2)) => Some(h2),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "HTTP/2 handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// Starts a new stream's exchange as a task of its own.
fn start_stream(
    conn: &Arc<Conn>,
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    max_streams: usize,
) {
    // The h2 crate forgets a stream once it is reset, but its exchange may
    // still be at work: past that many exchanges a new stream is refused,
    // so a client resetting streams as fast as it opens them (rapid reset)
    // keeps no more at work.
    if conn.open.load(Ordering::Acquire) >= max_streams {
        let counters = levee_protect::metrics::counters();
        counters
            .http2_streams_refused
            .fetch_add(1, Ordering::Relaxed);
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    }
    conn.open.fetch_add(1, Ordering::AcqRel);
    let conn = conn.clone();
    tokio::spawn(
        async move {
            stream::serve(req, respond, &conn).await;
            if conn.open.fetch_sub(1, Ordering::AcqRel) == 1 {
                // A permit, should the connection not be waiting yet.
                conn.quiet.notify_one();
            }
        }
        .in_current_span(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, F>(_: impl Fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle connection's task holds this future: the `h2` connection
    /// (1,288 bytes here) and the waits of its loop, not the handshake's
    /// state beside them (3,232 bytes before the handshake was boxed; debug
    /// build).
    #[test]
    fn an_idle_connection_task_stays_small() {
        let size = future_size(serve);
        assert!(
            size <= 2200,
            "the HTTP/2 connection future grew to {size} bytes"
        );
    }
}
