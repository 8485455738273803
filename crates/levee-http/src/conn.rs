//! The life of one HTTP/1 client connection.
//!
//! ```text
//! accept ─▶ [PROXY header] ─▶ [TLS handshake] ─▶ idle ─▶ read head ─▶ route ─▶ act ─▶ log ─┐
//!             (conn/start.rs, when the listener asks)     ▲                                 │
//!                                                         └─────────── keep-alive ◀─────────┘
//! ```
//!
//! `act` is one of proxy, static, redirect, respond, mirrors.
//!
//! While idle a connection holds no buffer: it waits for readability with an
//! empty `BytesMut`, and after the worker's second park tick it gives up
//! its task altogether (idle.rs). The request's work runs inline in the
//! task: boxing it cost a copy of its state per request (docs/architecture.md).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use levee_protect::ConnPermit;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::Instrument;

pub(crate) use crate::exchange::{Client, Next};
use crate::exchange::{Exchange, Reply};
use crate::h1::{HeadError, Parsed, parse_request};
pub use crate::listener::{FirstSteps, ListenerCtx, ListenerTls};
use crate::message::RequestHead;
use crate::origin;
use crate::reuse::{self, Read};
use crate::serve;
use crate::site::Site;
use crate::stream::ClientStream;
use crate::{clock, idle, pace, respond, timed};

mod start;

/// Initial read size for a request head; grows up to `limits.max_header_bytes`.
pub(crate) const HEAD_CHUNK: usize = 4096;

pub use crate::serve::SPAN_TARGET;

/// A connection's span: what every line logged on its behalf carries.
/// At debug level, so off by default: an enabled span costs an allocation
/// when made and, in `EnvFilter`, a shared lock on each poll of its task.
pub fn span(listener: SocketAddr, peer: SocketAddr) -> tracing::Span {
    tracing::debug_span!(target: SPAN_TARGET, "conn", %listener, %peer)
}

/// Serves one client connection until it closes, after the TLS handshake
/// on a TLS listener. `permit` is its place in the listener's connection
/// counts (see `levee_protect::conns`).
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerCtx>,
    permit: Option<ConnPermit>,
) -> impl Future<Output = ()> + Send {
    let _ = stream.set_nodelay(true);
    let client = Client::new(ClientStream::Plain(stream), peer, permit);
    serve_from(client, listener, 0)
}

/// Serves a connection that has already served `served` requests.
pub async fn serve_from(mut client: Client, listener: Arc<ListenerCtx>, mut served: u64) {
    if served == 0 {
        let (steps, h2c) = {
            let s = listener.steps.load();
            let before_http = s.tls.is_some() || s.proxy_protocol.is_some();
            (before_http.then(|| Arc::clone(&s)), s.h2c)
        };
        // Nothing sent yet: past a park tick it waits parked, where it can
        // be shed near the descriptor limit (idle.rs).
        client = match idle::first_byte(client, &listener, steps.as_deref(), h2c).await {
            Some(c) => c,
            None => return,
        };
        if let Some(steps) = steps {
            // Boxed: these steps' state must not widen every connection's task.
            match Box::pin(start::begin(client, &listener, &steps)).await {
                Some(c) => client = c,
                None => return,
            }
        }
        let h2 = crate::stream::negotiated_h2(&client.stream)
            || (h2c
                && match Box::pin(start::h2c_preface(&mut client, &listener)).await {
                    Some(preface) => preface,
                    None => return,
                });
        if h2 {
            // Its own task, and this one ends: awaited here, the HTTP/1
            // task would stay behind it for the connection's whole life.
            tokio::spawn(crate::http2::serve(client, listener).in_current_span());
            return;
        }
    }
    let fd = client.stream.as_raw_fd();
    loop {
        if client.buf.is_empty() {
            client = match next_request(client, &listener, served).await {
                Some(c) => c,
                None => return,
            };
        }
        let pace = listener.shared.site.load().pace;
        // Inline, not boxed: a box cost a copy of this ~5 KB future per
        // request (3 % of CPU per proxied request in A/B runs). The task
        // is this big only while the connection is busy; an idle one parks.
        let next = {
            let exchange = exchange(&mut client, &listener, served);
            let mut exchange = std::pin::pin!(pace::scope(fd, pace, exchange));
            // One clock reading per poll for all the request's steps
            // (clock.rs), polled in place: a wrapping future would copy it.
            std::future::poll_fn(|cx| clock::turn(|| exchange.as_mut().poll(cx))).await
        };
        served += 1;
        match next {
            // Kept alive even while levee drains (a stop, or a binary
            // upgrade): closing now would cut a client whose next request
            // is already on its way. That request is answered with
            // `Connection: close` (serve.rs); a connection that sends
            // none parks, and the sweeper closes it.
            Next::KeepAlive => {}
            Next::Close => return,
            // Boxed: its discard buffer must not sit in every connection's task.
            Next::Linger => return Box::pin(respond::linger_close(client.stream)).await,
        }
    }
}

/// Waits for the next request's first bytes holding no buffer (the worker
/// keeps it for the next head read, reuse.rs), within `request_head` for a
/// new connection and `keepalive` after a request; past the worker's
/// second park tick the connection parks without its task (idle.rs). The
/// client back once bytes came; `None` once it closed or timed out.
async fn next_request(
    mut client: Client,
    listener: &Arc<ListenerCtx>,
    served: u64,
) -> Option<Client> {
    let buf = std::mem::take(&mut client.buf);
    if buf.capacity() > 0 {
        reuse::give_read(Read::Client, buf, HEAD_CHUNK);
    }
    // Only the two it needs: the whole `Timeouts` would sit in the task.
    let (request_head, keepalive) = {
        let t = &listener.shared.site.load().timeouts;
        (idle::head_limit(t.request_head), t.keepalive)
    };
    let ready = crate::stream::ready(&mut client.stream, &mut client.buf);
    if served == 0 {
        return matches!(timeout(request_head, ready).await, Ok(Ok(()))).then_some(client);
    }
    if keepalive <= idle::PARK_AFTER {
        return matches!(timeout(keepalive, ready).await, Ok(Ok(()))).then_some(client);
    }
    let quiet = tokio::select! {
        biased;
        r = ready => match r {
            Ok(()) => false,
            Err(_) => return None,
        },
        () = idle::quiet() => true,
    };
    if !quiet {
        return Some(client);
    }
    // The wait took one to two park ticks; the clock is read here, not on
    // every wait.
    let deadline = std::time::Instant::now() + (keepalive - idle::PARK_AFTER);
    idle::park(client, listener.clone(), served, deadline)
}

/// Why no request head could be read.
enum HeadRead {
    /// The client closed or went quiet before sending anything.
    Closed,
    /// The head did not complete within `timeouts.request_head`.
    Timeout,
    Bad(HeadError),
}

/// One request and its response: read head, then the phases after it
/// (serve.rs), then log.
async fn exchange(client: &mut Client, listener: &ListenerCtx, served: u64) -> Next {
    let shared = &listener.shared;
    let site = shared.site.load_full();
    let started = clock::now_std();
    let head = match read_head(client, &site).await {
        Ok(head) => head,
        Err(HeadRead::Closed) => return Next::Close,
        Err(HeadRead::Timeout) => return refuse(client, &site, started, 408).await,
        Err(HeadRead::Bad(e)) => {
            tracing::debug!(peer = %client.peer, error = %e, "bad request head");
            return refuse(client, &site, started, e.status()).await;
        }
    };
    let https = crate::stream::is_https(&client.stream);
    let origin = origin::resolve(&head, client.peer.ip(), https, site.trust(listener.addr));
    let _in_flight = listener.shared.begin();
    let id = serve::request_id(&site, &head, &origin);
    let span = serve::request_span(&head, &id);
    let mut ex = Exchange::h1(head, origin, client);
    ex.id = id;
    // A span no subscriber wants (the default: `levee::span` is off) is not
    // wrapped around the request, whose every poll would enter and leave it.
    let (done, routed) = if span.is_disabled() {
        serve::serve(&mut ex, listener.addr, shared, &site, served).await
    } else {
        serve::serve(&mut ex, listener.addr, shared, &site, served)
            .instrument(span)
            .await
    };
    let route = Some(serve::route_stats(routed));
    serve::log(
        &site,
        origin.ip,
        Some((&ex.head, &id)),
        &done,
        started,
        route,
    );
    done.next
}

/// Answers a request whose head could not be read, logs it, and closes.
async fn refuse(client: &mut Client, site: &Site, started: Instant, status: u16) -> Next {
    let reply = Reply::error(status, &[]).closing();
    let _ = client
        .send(&reply.h1(false, false), site.timeouts.client_send)
        .await;
    let outcome = crate::exchange::Outcome {
        bytes: reply.body_len(false),
        ..crate::exchange::Outcome::of(status, Next::Linger)
    };
    serve::log(site, client.peer.ip(), None, &outcome, started, None);
    Next::Linger
}

/// Reads until a complete request head is buffered, within `timeouts.request_head`.
async fn read_head(client: &mut Client, site: &Site) -> Result<RequestHead, HeadRead> {
    // Set when a read first has to wait: a head already in the socket costs
    // no clock reading.
    let mut deadline = None;
    // Shorter near the descriptor limit: one relaxed load of a flag that
    // changes only when the pressure does (idle.rs).
    let limit = idle::head_limit(site.timeouts.request_head);
    let mut searched = 0;
    loop {
        if !client.buf.is_empty() {
            match parse_request(&client.buf, searched, &site.head_limits) {
                Ok(Parsed::Complete(parts, len)) => {
                    return Ok(parts.into_head(client.buf.split_to(len).freeze()));
                }
                Ok(Parsed::Incomplete) => searched = client.buf.len(),
                Err(e) => return Err(HeadRead::Bad(e)),
            }
        }
        if client.buf.capacity() == 0 {
            client.buf = reuse::read_buf(Read::Client, HEAD_CHUNK);
        } else {
            client.buf.reserve(HEAD_CHUNK);
        }
        let read = client.stream.read_buf(&mut client.buf);
        match timed::by(&mut deadline, limit, read).await {
            Err(_) if client.buf.is_empty() => return Err(HeadRead::Closed),
            Err(_) => return Err(HeadRead::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadRead::Closed),
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// A busy connection's task, the request's work inline (docs/architecture.md).
    #[tokio::test]
    async fn connection_future_stays_bounded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let site = crate::Site::build(&levee_config::builtin_static(".".into(), addr)).unwrap();
        let ctx = std::sync::Arc::new(super::ListenerCtx::new(addr, crate::Shared::new(site)));
        let permit = ctx.conns.admit(addr.ip(), &Default::default()).ok();
        let fut = super::serve(stream, addr, ctx, permit);
        let size = std::mem::size_of_val(&fut);
        // Only a busy connection has a task (idle ones park without one,
        // idle.rs), and it holds the request's state inline: boxing it cost
        // a 5 KB copy per request. The guard catches buffers or large
        // futures creeping in: 5,352 bytes in a debug build (4.9 KB
        // release) before issue 18's request shaping; 6,192 with the
        // request id held inline (65 bytes), the header rules' state and
        // the compression settings, across the awaits that keep them.
        // Rewrites and listings are boxed; only busy connections pay it.
        assert!(size <= 6 * 1024 + 256, "serve() future is {size} bytes");
    }
}
