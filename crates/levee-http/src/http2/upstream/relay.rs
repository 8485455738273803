//! Both directions of one stream between an HTTP/2 client and an HTTP/2
//! server, once the request's HEADERS went upstream.
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

use crate::exchange::h2::send::{Fault, Window, cut_slow, data};

/// How the stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The response went out whole, trailers included.
    Complete,
    /// The client reset the stream or its connection ended (the server's
    /// stream was cancelled).
    ClientGone,
    /// The server reset the stream or its connection was lost (the client's
    /// stream was reset).
    UpstreamReset,
    /// No response head came: levee answered with this status.
    Answered(u16),
}

/// What the access log needs, filled in as the relay goes (atomics only
/// because the stream's task must be `Send`; one task touches them).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The server's status; 0 before its response head.
    pub status: AtomicU16,
    /// Response body bytes passed to the client.
    pub bytes: AtomicU64,
}

/// What bounds the response: how long its head may take, and the HSTS
/// field a TLS listener adds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    pub head_timeout: Duration,
    pub hsts: Option<u64>,
    /// How long the client may keep its window shut (minimum progress).
    pub window: Window,
}

/// Which side failed while the request body was relayed.
enum Side {
    Client,
    Upstream,
}

/// Relays the request body (`up`: `None` when the request had none) and the
/// response until the stream ends.
pub(crate) async fn run(
    body: RecvStream,
    up: Option<SendStream<Bytes>>,
    respond: &mut SendResponse<Bytes>,
    response: ResponseFuture,
    terms: Terms,
    progress: &Progress,
) -> End {
    let request = async move {
        match up {
            Some(up) => request_body(body, up).await,
            None => Ok(()),
        }
    };
    let response = relay_response(respond, response, terms, progress);
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

/// Copies the client's DATA and trailers to the server.
async fn request_body(mut body: RecvStream, mut up: SendStream<Bytes>) -> Result<(), Side> {
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
    terms: Terms,
    progress: &Progress,
) -> End {
    let Terms {
        head_timeout,
        hsts,
        mut window,
    } = terms;
    let waited = tokio::select! {
        r = timeout(head_timeout, response) => r,
        _ = poll_fn(|cx| respond.poll_reset(cx)) => return End::ClientGone,
    };
    let head = match waited {
        Err(_) => return super::answer(respond, 504, hsts),
        Ok(Err(e)) if e.is_reset() => {
            respond.send_reset(reason_for_client(&e));
            return End::UpstreamReset;
        }
        // The connection was lost (or refused the stream) before a response.
        Ok(Err(_)) => return super::answer(respond, 502, hsts),
        Ok(Ok(head)) => head,
    };
    let (parts, mut recv) = head.into_parts();
    progress.status.store(parts.status.as_u16(), Relaxed);
    let mut out = http::Response::new(());
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    super::add_hsts(out.headers_mut(), hsts);
    // A trailers-only response (gRPC's error answer) ends with its HEADERS.
    let end = recv.is_end_stream();
    let Ok(mut send) = respond.send_response(out, end) else {
        return End::ClientGone;
    };
    if end {
        return End::Complete;
    }
    loop {
        let next = tokio::select! {
            next = recv.data() => next,
            _ = poll_fn(|cx| send.poll_reset(cx)) => return End::ClientGone,
        };
        match next {
            Some(Ok(bytes)) => {
                let n = bytes.len();
                match data(&mut send, bytes, false, &mut window).await {
                    Ok(()) => {}
                    Err(Fault::Slow) => {
                        cut_slow(&mut send);
                        return End::ClientGone;
                    }
                    Err(_) => return End::ClientGone,
                }
                progress.bytes.fetch_add(n as u64, Relaxed);
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
    let sent = match recv.trailers().await {
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
