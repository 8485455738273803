//! One attempt at an HTTP/1 server, three phases: connect (a pooled
//! connection, or a new one with TLS and a PROXY header as the upstream
//! asks), send (the head, with the whole body when levee holds it, else
//! the body streamed after it), receive (the final response head, interim
//! ones passed on). From the connection to the response head the client is
//! watched (gone.rs): one that goes away ends the attempt.

use std::time::Duration;

use bytes::BytesMut;
use levee_upstream::{Dest, Fault, UpstreamStream, pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Missed;
use crate::exchange::Exchange;
use crate::h1::{Parsed, parse_response};
use crate::message::ResponseHead;
use crate::site::Site;
use crate::timed;

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Read size for the upstream response head (and the first body bytes).
pub(crate) const RESPONSE_CHUNK: usize = 16 * 1024;

/// A connection to `dest` with `head` written (and flushed: over TLS the
/// sealed records may wait in rustls otherwise): a pooled one unless
/// `fresh_only` or a PROXY header is due, since a connection that began
/// with one speaks for one client; else a new one, the PROXY header first.
/// The `bool` says whether the connection came from the pool.
pub(crate) async fn open_and_send(
    dest: &Dest<'_>,
    head: &[u8],
    fresh_only: bool,
    t: &levee_config::Timeouts,
) -> Result<(UpstreamStream, bool), (Fault, bool)> {
    let now = crate::clock::now_std();
    let (mut up, reused) = pool::h1::open(dest, fresh_only, t.upstream_connect, now).await?;
    let write = async {
        if let (Some(h), false) = (dest.proxy_header, reused) {
            up.write_all(h).await?;
        }
        up.write_all(head).await?;
        up.flush().await
    };
    match timed::within(t.upstream_write, write).await {
        Err(_) => Err((Fault::WriteTimeout, reused)),
        Ok((Err(e), _)) => Err((Fault::Write(e), reused)),
        Ok((Ok(()), _)) => Ok((up, reused)),
    }
}

/// Connects, sends the request, and reads the final response head.
pub(super) async fn attempt(
    ex: &mut Exchange<'_>,
    site: &Site,
    dest: &Dest<'_>,
    head: &[u8],
    body_in_head: bool,
    fresh_only: bool,
    limit: Option<u64>,
) -> Result<super::Answer, Missed> {
    let t = &site.timeouts;
    // The upstream's work is watched from here to the response head: a
    // client that goes away ends it (gone.rs says what that costs).
    let sent = tokio::select! {
        biased;
        sent = open_and_send(dest, head, fresh_only, t) => sent,
        () = ex.gone() => return Err(Missed::Gone),
    };
    let (mut up, reused) = sent.map_err(|(fault, reused)| Missed::Fault { fault, reused })?;
    if !body_in_head && let Err(fault) = ex.relay_body_h1(&mut up, t, limit).await {
        return Err(match fault.cause() {
            levee_upstream::Cause::Client => Missed::Client(fault),
            _ => Missed::Fault { fault, reused },
        });
    }
    let mut buf = crate::reuse::ServerBuf::new();
    loop {
        let resp = tokio::select! {
            biased;
            resp = read_response_head(&mut up, &mut buf, t.upstream_read, ex.is_head()) => resp,
            () = ex.gone() => return Err(Missed::Gone),
        };
        let resp = resp.map_err(|fault| Missed::Fault { fault, reused })?;
        if !(100..200).contains(&resp.status) || resp.status == 101 {
            return Ok(super::Answer { up, buf, resp });
        }
        // Interim responses: 100 Continue was levee's to give; others go
        // where the client takes them.
        ex.send_interim(&resp, site).await;
    }
}

pub(crate) async fn read_response_head(
    up: &mut UpstreamStream,
    buf: &mut BytesMut,
    limit: Duration,
    request_was_head: bool,
) -> Result<ResponseHead, Fault> {
    loop {
        if !buf.is_empty() {
            match parse_response(buf, MAX_RESPONSE_HEAD, request_was_head) {
                Ok(Parsed::Complete(parts, len)) => {
                    return Ok(parts.into_head(buf.split_to(len).freeze()));
                }
                Ok(Parsed::Incomplete) => {}
                Err(e) => return Err(Fault::BadHead(Box::new(e))),
            }
        }
        buf.reserve(RESPONSE_CHUNK);
        match timed::within(limit, up.read_buf(buf)).await {
            Err(_) => return Err(Fault::ReadTimeout),
            Ok((Err(e), _)) => return Err(Fault::Read(e)),
            Ok((Ok(0), _)) => return Err(Fault::Closed),
            Ok((Ok(_), _)) => {}
        }
    }
}
