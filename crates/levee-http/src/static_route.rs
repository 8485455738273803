//! Serving a `static` route: resolve the file (static_files), then write the
//! head and send the bytes with `sendfile` (read and write over TLS).

use levee_config::StaticAction;

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

/// `sendfile` on plain TCP; over TLS the bytes pass through rustls.
async fn send_range(
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
