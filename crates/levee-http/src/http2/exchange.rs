//! One HTTP/2 stream, served as one HTTP/1 exchange over a pipe: the
//! request head is handed over parsed, its body and the response flow
//! through the pipe, and the three run side by side in the stream's task.
//! A stream routed to an HTTP/2 upstream goes to `upstream.rs` instead.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use h2::{Reason, RecvStream, server::SendResponse};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Conn, Pipe, request, response};
use crate::access_log::Entry;
use crate::conn::{Client, serve_request};
use crate::h1::{Parsed, parse_request};
use crate::message::{RequestHead, Version};
use crate::origin;
use crate::pace;
use crate::stream::{ClientStream, Secure};

/// Pipe capacity each way: with the stream windows, what one stream may
/// hold in levee.
const PIPE: usize = 32 * 1024;

pub(super) async fn serve(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    conn: &Conn,
) {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let has_body = !body.is_end_stream();
    let (raw, chunked) = match request::to_h1(&parts, has_body) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(peer = %conn.peer, error = %e, "malformed HTTP/2 request");
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return;
        }
    };
    let site = conn.listener.shared.site.load_full();
    let len = raw.len();
    let mut head = match parse_request(&raw, 0, &site.head_limits) {
        Ok(Parsed::Complete(p, n)) if n == len => p.into_head(Bytes::from(raw)),
        other => {
            let status = match other {
                Err(e) => e.status(),
                _ => 400,
            };
            refuse(&mut respond, conn, &site, started, status);
            return;
        }
    };
    head.version = Version::Http2;
    // A route to an HTTP/2 upstream is relayed stream to stream.
    if let Some(routed) = super::upstream::route(&site, conn, &head) {
        let routed = routed.clone();
        return super::upstream::serve(body, respond, conn, &site, head, &routed, started).await;
    }
    let origin = origin_of(conn, &site, &head);
    let is_head = head.is_head();

    let (canceller, cancel) = crate::gone::cancel();
    let (ours, theirs) = tokio::io::duplex(PIPE);
    let mut client = Client {
        stream: ClientStream::Tls(Box::new(Secure::Http2(Pipe {
            io: ours,
            fd: conn.fd,
            local: conn.local,
            https: conn.https,
            cancel,
        }))),
        peer: conn.peer,
        buf: BytesMut::new(),
        permit: None,
        hsts: conn.hsts,
        origin,
    };
    // In flight until the response is out, not only until the request
    // path is done with it.
    let _in_flight = conn.listener.shared.begin();
    // Minimum progress as for HTTP/1: the relay drains the pipe only as
    // the client's window allows, so time the request path spends blocked
    // on the pipe is time spent waiting on the client.
    let pipe_fd = conn.fd;
    let work = pace::scope(pipe_fd, site.pace, async {
        let served = serve_request(&mut client, &conn.listener, &site, &mut head, 0).await;
        // Closing the pipe ends a response delimited by its end.
        drop(client);
        served
    });
    let mut window = response::Window::client(&site);
    let (rd, wr) = tokio::io::split(theirs);
    let relay = async {
        let up = request_body(body, wr, chunked);
        let down = response::relay(rd, &mut respond, is_head, &mut window);
        tokio::pin!(up, down);
        let relayed = tokio::select! {
            biased;
            r = &mut down => r,
            () = &mut up => down.await,
        };
        if relayed.is_err() {
            // The client reset the stream or its connection ended: the
            // request path stops its upstream work (gone.rs), at once.
            canceller.fire();
        }
    };
    let ((mut done, routed), ()) = tokio::join!(work, relay);
    if canceller.fired() {
        done.status = 499;
        done.bytes = window.sent();
    }
    done.log(&site, origin.ip, &head, started, routed.map(|r| &*r.stats));
}

/// Who a stream's request is for (origin.rs).
pub(super) fn origin_of(conn: &Conn, site: &crate::Site, head: &RequestHead) -> origin::Origin {
    let trust = site.trust(conn.listener.addr);
    origin::resolve(head, conn.peer.ip(), conn.https, trust)
}

/// Copies the request body into the pipe, chunked when it has no length.
/// Window is given back to the client only once the bytes are in the
/// pipe, so a slow upstream slows the client.
async fn request_body(mut body: RecvStream, mut wr: impl AsyncWrite + Unpin, chunked: bool) {
    let mut complete = true;
    while let Some(data) = body.data().await {
        let Ok(data) = data else {
            complete = false;
            break;
        };
        let n = data.len();
        let wrote = if n == 0 {
            Ok(())
        } else if chunked {
            let size = format!("{n:x}\r\n");
            async {
                wr.write_all(size.as_bytes()).await?;
                wr.write_all(&data).await?;
                wr.write_all(b"\r\n").await
            }
            .await
        } else {
            wr.write_all(&data).await
        };
        if wrote.is_err() {
            return;
        }
        let _ = body.flow_control().release_capacity(n);
    }
    if complete && chunked {
        let _ = wr.write_all(b"0\r\n\r\n").await;
    }
    // An end of stream, so a body cut short is not waited for.
    let _ = wr.shutdown().await;
}

/// Answers a request the HTTP/1 head rules refuse, and logs it.
fn refuse(
    respond: &mut SendResponse<Bytes>,
    conn: &Conn,
    site: &crate::Site,
    started: Instant,
    status: u16,
) {
    let mut r = http::Response::new(());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let _ = respond.send_response(r, true);
    site.access_log.log(&Entry {
        client: conn.peer.ip(),
        request: None,
        status,
        bytes: 0,
        request_time: started.elapsed(),
        upstream_time: None,
        upstream: None,
    });
}
