//! Serving a `static` route: read and drop the request body, resolve the
//! file (static_files), then write the head and send the bytes with
//! `sendfile` (read and write over TLS).
//!
//! The body is read to its end before any answer, so the answer never
//! races what the client still sends: over HTTP/2 a malformed DATA frame
//! or a body longer than its `content-length` gets the stream error RFC
//! 9113 requires (the `h2` crate checks them as they arrive), and a
//! chunked HTTP/1 body is checked as a proxied one is.

use bytes::Buf;
use levee_config::StaticAction;

use crate::body::RELAY_CHUNK;
use crate::h1::ChunkedDecoder;
use crate::pace::{self, PaceError};

use crate::conn::{Client, Done, Next};
use crate::h1::write::{date, field, status_line};
use crate::message::{Framing, RequestHead};
use crate::respond;
use crate::site::Site;
use crate::static_files::{self, BodyPlan, StaticOutcome, StaticRequest};
use crate::stream::ClientStream;

pub async fn serve(
    client: &mut Client,
    site: &Site,
    head: &RequestHead,
    action: &StaticAction,
    done: &mut Done,
) {
    let keep_alive = done.next == Next::KeepAlive && head.framing == Framing::None;
    if let Err(status) = drain_body(client, head, site).await {
        let bytes = respond::error(status, &[], false, head.is_head());
        done.reply(client, site, head, bytes).await;
        return;
    }
    let req = StaticRequest {
        method: head.method(),
        path: head.path(),
        if_none_match: head.fields.get("if-none-match"),
        if_modified_since: head.fields.get("if-modified-since"),
        range: head.fields.get("range"),
        if_range: head.fields.get("if-range"),
    };
    let head_only = head.is_head();
    match static_files::resolve(action, &req) {
        StaticOutcome::Error {
            status,
            fields,
            cause,
        } => {
            tracing::debug!(path = %String::from_utf8_lossy(head.path()), %cause, "static");
            let extra: Vec<(&str, &[u8])> =
                fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            let bytes = respond::error(status, &extra, keep_alive, head_only);
            done.reply(client, site, head, bytes).await;
        }
        StaticOutcome::Redirect { mut location } => {
            if let Some(q) = head.uri().iter().position(|&b| b == b'?') {
                location.push_str(&String::from_utf8_lossy(&head.uri()[q..]));
            }
            let extra = [("Location", location.as_bytes())];
            let bytes = respond::error(301, &extra, keep_alive, head_only);
            done.reply(client, site, head, bytes).await;
        }
        StaticOutcome::NotModified { fields } => {
            let mut out = file_head(304, &fields, keep_alive);
            respond::add_hsts(&mut out, client.hsts);
            done.reply(client, site, head, out).await;
        }
        StaticOutcome::Send {
            status,
            fields,
            file,
            body,
        } => {
            let mut out = file_head(status, &fields, keep_alive);
            respond::add_hsts(&mut out, client.hsts);
            done.status = status;
            if head.framing != Framing::None {
                done.next = Next::Linger;
            }
            if !respond::send(&mut client.stream, &out, site.timeouts.client_send).await {
                done.next = Next::Close;
                return;
            }
            let sent = match body {
                BodyPlan::None => Ok(0),
                BodyPlan::Range { start, len } => {
                    send_range(&mut client.stream, &file, start, len, site).await
                }
                BodyPlan::Multipart { parts, closing } => {
                    send_parts(client, site, &file, &parts, &closing).await
                }
            };
            match sent {
                Ok(n) => done.bytes = n,
                Err(e) => {
                    tracing::debug!(peer = %client.peer, error = %e, "static send stopped");
                    done.next = Next::Close;
                }
            }
        }
    }
}

/// Most request body a static route reads (and drops) before answering.
const MOST_BODY: u64 = 1024 * 1024;

/// Reads the request body to its end and drops it, under the client's
/// minimum progress: 400 if it ends early or is malformed, 408 if it
/// stalls, 413 past [`MOST_BODY`] (or `limits.max_body`). A client that
/// asked `Expect: 100-continue` is answered at once instead, without its
/// body (RFC 9110 §10.1.1).
async fn drain_body(client: &mut Client, head: &RequestHead, site: &Site) -> Result<(), u16> {
    let most = match site.limits.max_body {
        0 => MOST_BODY,
        max => max.min(MOST_BODY),
    };
    let mut chunks = ChunkedDecoder::default();
    let mut left = match head.framing {
        Framing::None | Framing::UntilClose => return Ok(()),
        _ if head.expect_continue => return Ok(()),
        Framing::Length(n) if n > most => return Err(413),
        Framing::Length(n) => n,
        Framing::Chunked => u64::MAX,
    };
    loop {
        if head.framing == Framing::Chunked {
            let fed = chunks.feed(&client.buf).map_err(|_| 400u16)?;
            if chunks.data_len > most {
                return Err(413);
            }
            client.buf.advance(fed.consumed);
            if fed.done {
                return Ok(());
            }
        } else {
            let take = client
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            client.buf.advance(take);
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
        }
        client.buf.reserve(RELAY_CHUNK);
        match pace::read_buf(
            &mut client.stream,
            &mut client.buf,
            site.timeouts.client_body,
        )
        .await
        {
            Ok(0) | Err(PaceError::Io(_)) => return Err(400),
            Ok(_) => {}
            Err(PaceError::TimedOut) => return Err(408),
        }
    }
}

async fn send_parts(
    client: &mut Client,
    site: &Site,
    file: &std::fs::File,
    parts: &[static_files::Part],
    closing: &[u8],
) -> std::io::Result<u64> {
    let mut total = 0;
    for part in parts {
        if !respond::send(
            &mut client.stream,
            &part.preamble,
            site.timeouts.client_send,
        )
        .await
        {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        total += part.preamble.len() as u64;
        total += send_range(&mut client.stream, file, part.start, part.len, site).await?;
    }
    if !respond::send(&mut client.stream, closing, site.timeouts.client_send).await {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    Ok(total + closing.len() as u64)
}

fn file_head(status: u16, fields: &[(&'static str, String)], keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    status_line(&mut out, status);
    out.extend_from_slice(b"Server: levee\r\nDate: ");
    date(&mut out);
    out.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        field(&mut out, name.as_bytes(), value.as_bytes());
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `sendfile` on plain TCP; over TLS the bytes pass through rustls. The
/// cache sends disk tier bodies with it too.
pub(crate) async fn send_range(
    stream: &mut ClientStream,
    file: &std::fs::File,
    start: u64,
    len: u64,
    site: &Site,
) -> std::io::Result<u64> {
    match stream {
        ClientStream::Plain(s) => static_files::send_range(s, file, start, len).await,
        tls => static_files::write_range(tls, file, start, len, site.timeouts.client_send).await,
    }
}
