//! HTTP/1.x clients of an HTTP/2 upstream: the request went as one HTTP/2
//! stream (proxy/h2.rs), and the response is written back as HTTP/1.1,
//! chunked, its trailers in the last chunk when the client sent `TE:
//! trailers` (a gRPC client over HTTP/1.1 sees `grpc-status` there).
//!
//! ```text
//! [100 Continue] ─▶ request body: the client's framing decoded into DATA
//!   as the server's window allows (exchange/h2/send.rs `relay`); a
//!   response head arriving first stops it
//! ─▶ response head within upstream_read (502 / 504 otherwise)
//! ─▶ HTTP/1.1 head ─▶ chunks ─▶ last chunk (+ trailers)
//! ```
//!
//! The client's own request trailers are not forwarded. An HTTP/1.0
//! client gets the body unframed and the connection closed after it.

use std::pin::Pin;

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{Reason, RecvStream, SendStream};
use tokio::time::timeout;

use super::Client;
use crate::exchange::h2::send::{self, Fault, Source, Window};
use crate::exchange::h2_upstream::Downward;
use crate::exchange::{Next, Relayed, Reply, StreamEnd as End};
use crate::h1::write::{field, reason};
use crate::message::{RequestHead, Version, status_has_no_body};
use crate::respond;
use crate::site::Site;

impl Client {
    /// Relays a stream open on an HTTP/2 server for this HTTP/1 client:
    /// its body up, then the response back as HTTP/1.1. `keep_alive`: the
    /// exchange may leave the connection open. An intercepted error leaves
    /// the connection to the exchange's page.
    pub(crate) async fn relay_h2(
        &mut self,
        req: &RequestHead,
        response: ResponseFuture,
        up: Option<SendStream<Bytes>>,
        site: &Site,
        keep_alive: bool,
        down: &Downward<'_>,
    ) -> Relayed {
        tokio::pin!(response);
        // A response head that came before the whole body was sent, and
        // whether the body was read to its end (the connection may then
        // carry another request).
        let (early, body_read) = match up {
            Some(up) => match self.request_body(req, up, site, response.as_mut()).await {
                Ok(sent) => sent,
                Err(end) => return ended(end, Next::Close),
            },
            None => (None, true),
        };
        let head = match early {
            Some(head) => Ok(head),
            None => tokio::select! {
                biased;
                head = timeout(site.timeouts.upstream_read, &mut response) => head,
                // Dropping the stream's handles cancels it on the server.
                () = self.gone() => return ended(End::ClientGone, Next::Close),
            },
        };
        let head = match head {
            Ok(Ok(head)) => head,
            failed => return self.no_response(req, site, down, failed.is_err()).await,
        };
        let (mut parts, recv) = head.into_parts();
        let status = parts.status.as_u16();
        if down.intercepts(status) {
            // Dropping `recv` cancels the server's stream; its connection
            // carries the others on.
            return Relayed {
                status,
                ..ended(End::Intercepted, Next::Close)
            };
        }
        let framing = Delimit::of(req, status);
        let keep_alive = keep_alive && body_read && framing != Delimit::UntilClose;
        let (out, enc) = client_head(&mut parts, req, down, framing, keep_alive);
        let trailers = wants_trailers(req);
        let (end, bytes) = relay(self, site, out, recv, (framing, enc), trailers).await;
        let next = match end {
            End::Complete if keep_alive => Next::KeepAlive,
            _ => Next::Close,
        };
        Relayed {
            end,
            status,
            bytes,
            next,
        }
    }

    /// Sends the client's body up the server's stream, after the `100
    /// Continue` a client that expects one waits for; a response head that
    /// comes first stops it, and is returned. The `bool`: the body was read
    /// to its end. `Err`: the client's body broke off or was malformed
    /// (the server's stream is reset).
    async fn request_body(
        &mut self,
        req: &RequestHead,
        mut up: SendStream<Bytes>,
        site: &Site,
        response: Pin<&mut ResponseFuture>,
    ) -> Result<(Option<Head>, bool), End> {
        let limit = site.timeouts.client_send;
        if req.expect_continue && self.buf.is_empty() {
            let _ = self.send(b"HTTP/1.1 100 Continue\r\n\r\n", limit).await;
        }
        let mut window = Window::unbounded();
        let src = Source {
            rd: &mut self.stream,
            buf: &mut self.buf,
            framing: req.framing,
            read_timeout: Some(site.timeouts.client_body),
        };
        tokio::select! {
            sent = send::relay(src, &mut up, &mut window, None, None) => {
                if let Err(Fault::Broken) = sent {
                    up.send_reset(Reason::CANCEL);
                    return Err(End::ClientGone);
                }
                // Err(Fault::Gone): the server's stream ended; its answer
                // or reset is read next.
                Ok((None, sent.is_ok()))
            }
            head = response => Ok((Some(head), false)),
        }
    }

    /// levee's own error for a request no server answered: 504 when no
    /// head came within `upstream_read`, else 502.
    async fn no_response(
        &mut self,
        req: &RequestHead,
        site: &Site,
        down: &Downward<'_>,
        timed_out: bool,
    ) -> Relayed {
        let status = if timed_out { 504 } else { 502 };
        let reply = Reply::error(status, &[]).closing();
        let mut bytes = reply.h1(false, req.is_head());
        crate::shape::h1_head(&mut bytes, &down.dress.own().no_hsts());
        let _ = self.send(&bytes, site.timeouts.client_send).await;
        ended(End::Answered(status), Next::Linger)
    }
}

/// The server's answer to the stream: its response head, or why none came.
type Head = Result<http::Response<RecvStream>, h2::Error>;

/// A relay that ended before the server's status was known.
fn ended(end: End, next: Next) -> Relayed {
    Relayed {
        end,
        status: 0,
        bytes: 0,
        next,
    }
}

/// The HTTP/1.1 head for the server's, and the encoder of its body when
/// the route compresses it (chunks are framed by the relay, so the
/// encoder's output is not); the route's header rules have the last word.
fn client_head(
    parts: &mut http::response::Parts,
    req: &RequestHead,
    down: &Downward<'_>,
    framing: Delimit,
    keep_alive: bool,
) -> (Vec<u8>, Option<Box<crate::compress::Encoder>>) {
    let status = parts.status.as_u16();
    let fields = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    let enc = match framing {
        Delimit::Chunked => crate::compress::encoder_for(down.compress, req, status, fields, false),
        _ => None,
    };
    if let Some(e) = enc.as_deref() {
        crate::compress::edit_map(&mut parts.headers, e.coding());
    }
    crate::compress::etag_for_304_map(req, status, &mut parts.headers);
    let mut out = head_bytes(parts, down.lines, framing, keep_alive);
    crate::shape::h1_head(&mut out, &down.dress);
    (out, enc)
}

/// How the response body is delimited towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimit {
    /// HEAD, 1xx, 204, 304: none.
    None,
    Chunked,
    /// HTTP/1.0: the body until the connection closes.
    UntilClose,
}

impl Delimit {
    fn of(req: &RequestHead, status: u16) -> Delimit {
        if req.is_head() || status_has_no_body(status) {
            Delimit::None
        } else if req.version == Version::Http10 {
            Delimit::UntilClose
        } else {
            Delimit::Chunked
        }
    }
}

/// The HTTP/1.1 response head for the server's HTTP/2 one, with `lines`
/// of levee's own after the server's fields.
fn head_bytes(
    parts: &http::response::Parts,
    lines: &[u8],
    framing: Delimit,
    keep_alive: bool,
) -> Vec<u8> {
    let status = parts.status.as_u16();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (name, value) in &parts.headers {
        if framing != Delimit::None && name == http::header::CONTENT_LENGTH {
            continue;
        }
        field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(lines);
    out.extend_from_slice(match (framing == Delimit::Chunked, keep_alive) {
        (true, true) => b"transfer-encoding: chunked\r\n\r\n".as_slice(),
        (true, false) => b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        (false, true) => b"\r\n",
        (false, false) => b"connection: close\r\n\r\n",
    });
    out
}

/// Writes the head, then the body and trailers as they come; how it ended
/// and the body bytes written.
async fn relay(
    client: &mut Client,
    site: &Site,
    head: Vec<u8>,
    mut recv: RecvStream,
    (framing, mut enc): (Delimit, Option<Box<crate::compress::Encoder>>),
    trailers_wanted: bool,
) -> (End, u64) {
    let limit = site.timeouts.client_send;
    if !respond::send(&mut client.stream, &head, limit).await {
        return (End::ClientGone, 0);
    }
    if framing == Delimit::None {
        return (End::Complete, 0);
    }
    let mut sent = 0;
    loop {
        let next = tokio::select! {
            biased;
            next = recv.data() => next,
            () = client.gone() => return (End::ClientGone, sent),
        };
        let Some(next) = next else { break };
        let Ok(bytes) = next else {
            return (End::UpstreamReset, sent);
        };
        let n = bytes.len();
        if n == 0 {
            continue;
        }
        let coded = match enc.as_deref_mut() {
            None => None,
            Some(e) => match e.push(&bytes) {
                Ok(c) => Some(c),
                Err(_) => return (End::UpstreamReset, sent),
            },
        };
        let body = coded.unwrap_or(&bytes);
        // Empty output would read as the last chunk.
        if !body.is_empty()
            && !respond::send(&mut client.stream, &frame(body, framing), limit).await
        {
            return (End::ClientGone, sent);
        }
        sent += body.len() as u64;
        // The server may send more only once the client took these.
        let _ = recv.flow_control().release_capacity(n);
    }
    let Ok(trailers) = recv.trailers().await else {
        return (End::UpstreamReset, sent);
    };
    if let Some(e) = enc.as_deref_mut() {
        let Ok(tail) = e.finish() else {
            return (End::UpstreamReset, sent);
        };
        sent += tail.len() as u64;
        if !tail.is_empty()
            && !respond::send(&mut client.stream, &frame(tail, framing), limit).await
        {
            return (End::ClientGone, sent);
        }
    }
    if framing == Delimit::Chunked {
        let mut last = b"0\r\n".to_vec();
        for (name, value) in trailers.iter().flatten().filter(|_| trailers_wanted) {
            field(&mut last, name.as_str().as_bytes(), value.as_bytes());
        }
        last.extend_from_slice(b"\r\n");
        if !respond::send(&mut client.stream, &last, limit).await {
            return (End::ClientGone, sent);
        }
    }
    (End::Complete, sent)
}

/// `body` as it goes to the client: one chunk when `framing` is chunked.
fn frame(body: &[u8], framing: Delimit) -> Vec<u8> {
    let n = body.len();
    let mut out = Vec::with_capacity(n + 16);
    if framing == Delimit::Chunked {
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
    }
    out.extend_from_slice(body);
    if framing == Delimit::Chunked {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The client accepts trailers (`TE: trailers`, among other codings).
pub(crate) fn wants_trailers(req: &RequestHead) -> bool {
    req.fields.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case(b"te")
            && value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"))
    })
}
