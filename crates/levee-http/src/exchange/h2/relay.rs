//! Both directions of one stream between an HTTP/2 client and an HTTP/2
//! server, once the request's HEADERS went upstream (proxy/h2.rs): the
//! HTTP/2 end's part of the forward loop's respond phase.
//!
//! ```text
//! request:  client DATA ─▶ server (window given back to the client once the
//!           server's window took the bytes) ─▶ trailers or END_STREAM
//! response: head (within upstream_read) ─▶ HEADERS ─▶ DATA as the client's
//!           window allows ─▶ trailers (gRPC's grpc-status) or END_STREAM
//! ```
//!
//! Both run in the stream's task. A reset on either side resets the other
//! (CANCEL upstream when the client went away; the server's own reason, or
//! INTERNAL_ERROR when its connection was lost, to the client), so neither
//! side is left waiting.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use tokio::time::timeout;

use super::Stream;
use super::head;
use super::send::{Fault, Window, coded, cut_slow, data};
use crate::compress::Encoder;
use crate::exchange::h2_upstream::Downward;
use crate::exchange::{Next, Relayed, StreamEnd as End};
use crate::message::RequestHead;
use crate::shape::Dress;
use crate::site::Site;

/// What the access log needs, filled in as the relay goes (atomics only
/// because the stream's task must be `Send`; one task touches them).
#[derive(Debug, Default)]
struct Progress {
    /// The server's status; 0 before its response head.
    status: AtomicU16,
    /// Response body bytes passed to the client.
    bytes: AtomicU64,
}

/// What bounds the response: how long its head may take, and what the
/// head takes on its way to the client.
#[derive(Debug, Clone, Copy)]
struct Terms<'a> {
    head_timeout: Duration,
    /// Dress, levee's lines, compression, interception (exchange.rs).
    down: Downward<'a>,
    /// The request it answers (compress.rs).
    req: &'a RequestHead,
}

impl Stream {
    /// Relays a stream open on an HTTP/2 server both ways until it ends:
    /// the client's DATA and trailers up, the server's HEADERS, DATA and
    /// trailers down; a reset on either side resets the other. An
    /// intercepted error leaves the stream to the exchange's page.
    pub(crate) async fn relay_h2(
        &mut self,
        head: &RequestHead,
        response: ResponseFuture,
        up: Option<SendStream<Bytes>>,
        site: &Site,
        down: &Downward<'_>,
    ) -> Relayed {
        // `expect` is hop by hop, so the server will not answer it: levee
        // does, now that a server has the request.
        if head.expect_continue
            && up.is_some()
            && let Some(go) = head::with_status(100)
        {
            let _ = self.respond.send_informational(go);
        }
        let terms = Terms {
            head_timeout: site.timeouts.upstream_read,
            down: *down,
            req: head,
        };
        let progress = Progress::default();
        let pre = self.pre.split().freeze();
        let end = run(
            (&mut self.body, pre),
            up,
            &mut self.respond,
            response,
            terms,
            (&progress, &mut self.window),
        )
        .await;
        match end {
            // Nothing went out: the stream takes the page.
            End::Intercepted => {}
            End::ClientGone => (self.headed, self.gone) = (true, true),
            _ => (self.headed, self.closed) = (true, true),
        }
        Relayed {
            end,
            status: progress.status.load(Relaxed),
            bytes: progress.bytes.load(Relaxed),
            next: Next::Close,
        }
    }
}

/// Which side failed while the request body was relayed.
enum Side {
    Client,
    Upstream,
}

/// Relays the request body (`up`: `None` when the request had none) and the
/// response until the stream ends.
async fn run(
    (body, pre): (&mut RecvStream, Bytes),
    up: Option<SendStream<Bytes>>,
    respond: &mut SendResponse<Bytes>,
    response: ResponseFuture,
    terms: Terms<'_>,
    (progress, window): (&Progress, &mut Window),
) -> End {
    let request = async move {
        match up {
            Some(up) => request_body(body, pre, up).await,
            None => Ok(()),
        }
    };
    let response = relay_response(respond, response, terms, progress, window);
    tokio::pin!(request, response);
    let mut request_done = false;
    loop {
        tokio::select! {
            biased;
            end = &mut response => return end,
            r = &mut request, if !request_done => match r {
                // An upstream failure reaches the response side too.
                Ok(()) | Err(Side::Upstream) => request_done = true,
                // The server's stream was reset with CANCEL.
                Err(Side::Client) => return End::ClientGone,
            },
        }
    }
}

/// Copies the client's DATA (after `pre`, what was read ahead) and
/// trailers to the server.
async fn request_body(
    body: &mut RecvStream,
    pre: Bytes,
    mut up: SendStream<Bytes>,
) -> Result<(), Side> {
    if !pre.is_empty() {
        data(&mut up, pre, false, &mut Window::unbounded())
            .await
            .map_err(|_| Side::Upstream)?;
    }
    loop {
        let next = tokio::select! {
            next = body.data() => next,
            // The server reset the stream (or it ended its response early):
            // stop reading the client.
            _ = poll_fn(|cx| up.poll_reset(cx)) => return Err(Side::Upstream),
        };
        match next {
            Some(Ok(bytes)) => {
                let n = bytes.len();
                data(&mut up, bytes, false, &mut Window::unbounded())
                    .await
                    .map_err(|_| Side::Upstream)?;
                let _ = body.flow_control().release_capacity(n);
            }
            Some(Err(_)) => {
                up.send_reset(Reason::CANCEL);
                return Err(Side::Client);
            }
            None => break,
        }
    }
    match body.trailers().await {
        Ok(Some(trailers)) => up.send_trailers(trailers).map_err(|_| Side::Upstream),
        Ok(None) => up.send_data(Bytes::new(), true).map_err(|_| Side::Upstream),
        Err(_) => {
            up.send_reset(Reason::CANCEL);
            Err(Side::Client)
        }
    }
}

/// The client's reset reason for a server-side failure: the server's own
/// reset reason, or INTERNAL_ERROR when its connection was lost.
fn reason_for_client(e: &h2::Error) -> Reason {
    match e.reason() {
        Some(r) if e.is_reset() && r != Reason::NO_ERROR => r,
        _ => Reason::INTERNAL_ERROR,
    }
}

/// Waits for the response head, then relays head, body and trailers.
async fn relay_response(
    respond: &mut SendResponse<Bytes>,
    response: ResponseFuture,
    terms: Terms<'_>,
    progress: &Progress,
    window: &mut Window,
) -> End {
    let Terms {
        head_timeout,
        down,
        req,
    } = terms;
    let head = match response_head(respond, response, head_timeout, &down.dress).await {
        Ok(head) => head,
        Err(end) => return end,
    };
    let (parts, recv) = head.into_parts();
    let status = parts.status.as_u16();
    progress.status.store(status, Relaxed);
    if down.intercepts(status) {
        // Dropping `recv` here and the request's side in `run` cancels the
        // server's stream; its connection carries the others on.
        return End::Intercepted;
    }
    // A trailers-only response (gRPC's error answer) ends with its HEADERS.
    let end = recv.is_end_stream();
    let (out, enc) = client_head(parts, &down, req, end);
    let Ok(send) = respond.send_response(out, end) else {
        return End::ClientGone;
    };
    if end {
        return End::Complete;
    }
    relay_body(send, recv, enc, progress, window).await
}

/// The server's response head, within `head_timeout`; else (`Err`) how the
/// stream ended: the client gone, the server's reset passed on, or levee's
/// own 502 or 504.
async fn response_head(
    respond: &mut SendResponse<Bytes>,
    response: ResponseFuture,
    head_timeout: Duration,
    dress: &Dress<'_>,
) -> Result<http::Response<RecvStream>, End> {
    let waited = tokio::select! {
        r = timeout(head_timeout, response) => r,
        _ = poll_fn(|cx| respond.poll_reset(cx)) => return Err(End::ClientGone),
    };
    match waited {
        Err(_) => Err(answer(respond, 504, &dress.own())),
        Ok(Err(e)) if e.is_reset() => {
            respond.send_reset(reason_for_client(&e));
            Err(End::UpstreamReset)
        }
        // The connection was lost (or refused the stream) before a response.
        Ok(Err(_)) => Err(answer(respond, 502, &dress.own())),
        Ok(Ok(head)) => Ok(head),
    }
}

/// The head the client gets, and the encoder of its body when the route
/// compresses it: the server's fields, the coding's edits, levee's lines,
/// then the route's header rules, which have the last word.
fn client_head(
    parts: http::response::Parts,
    down: &Downward<'_>,
    req: &RequestHead,
    end: bool,
) -> (http::Response<()>, Option<Box<Encoder>>) {
    let status = parts.status.as_u16();
    let mut out = http::Response::new(());
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    let enc = match down.compress {
        Some(rules) if !end => {
            let fields = out
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
            crate::compress::encoder_for(Some(rules), req, status, fields, false)
        }
        _ => None,
    };
    if let Some(e) = enc.as_deref() {
        crate::compress::edit_map(out.headers_mut(), e.coding());
    }
    crate::compress::etag_for_304_map(req, status, out.headers_mut());
    head::append_lines(out.headers_mut(), down.lines);
    crate::shape::h2_head(out.headers_mut(), &down.dress);
    (out, enc)
}

/// The server's DATA to the client as its window allows (coded, when
/// compressing), each piece's room given back to the server once the
/// client took it; then the trailers, or END_STREAM.
async fn relay_body(
    mut send: SendStream<Bytes>,
    mut recv: RecvStream,
    mut enc: Option<Box<Encoder>>,
    progress: &Progress,
    window: &mut Window,
) -> End {
    loop {
        let next = tokio::select! {
            next = recv.data() => next,
            _ = poll_fn(|cx| send.poll_reset(cx)) => return End::ClientGone,
        };
        match next {
            Some(Ok(bytes)) => {
                let n = bytes.len();
                let bytes = match enc.as_deref_mut() {
                    None => bytes,
                    Some(e) => match coded(e, &bytes, false) {
                        Some(c) => c,
                        None => {
                            send.send_reset(Reason::INTERNAL_ERROR);
                            return End::UpstreamReset;
                        }
                    },
                };
                let sent = bytes.len() as u64;
                match data(&mut send, bytes, false, window).await {
                    Ok(()) => {}
                    Err(Fault::Slow) => {
                        cut_slow(&mut send);
                        return End::ClientGone;
                    }
                    Err(_) => return End::ClientGone,
                }
                progress.bytes.fetch_add(sent, Relaxed);
                // The server may send more only once the client took these.
                let _ = recv.flow_control().release_capacity(n);
            }
            Some(Err(e)) => {
                send.send_reset(reason_for_client(&e));
                return End::UpstreamReset;
            }
            None => break,
        }
    }
    let trailers = recv.trailers().await;
    // A compressed body's end goes before the trailers (or with END_STREAM).
    if let (Ok(t), Some(e)) = (&trailers, enc.as_deref_mut()) {
        let Some(tail) = coded(e, &[], true) else {
            send.send_reset(Reason::INTERNAL_ERROR);
            return End::UpstreamReset;
        };
        progress.bytes.fetch_add(tail.len() as u64, Relaxed);
        if data(&mut send, tail, t.is_none(), window).await.is_err() {
            return End::ClientGone;
        }
        if t.is_none() {
            return End::Complete;
        }
    }
    let sent = match trailers {
        Ok(Some(trailers)) => send.send_trailers(trailers),
        Ok(None) => send.send_data(Bytes::new(), true),
        Err(e) => {
            send.send_reset(reason_for_client(&e));
            return End::UpstreamReset;
        }
    };
    match sent {
        Ok(()) => End::Complete,
        Err(_) => End::ClientGone,
    }
}

/// Answers the stream with a bodiless status of levee's own (no response
/// head came): gRPC clients read 502 and 504 as UNAVAILABLE.
fn answer(respond: &mut SendResponse<Bytes>, status: u16, d: &Dress<'_>) -> End {
    let Some(mut r) = head::with_status(status) else {
        respond.send_reset(Reason::INTERNAL_ERROR);
        return End::Answered(status);
    };
    crate::shape::h2_head(r.headers_mut(), d);
    if respond.send_response(r, true).is_err() {
        respond.send_reset(Reason::INTERNAL_ERROR);
    }
    End::Answered(status)
}
