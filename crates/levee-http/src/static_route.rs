//! Serving a `static` route: read and drop the request body, resolve the
//! file (static_files), then write the head and send the bytes through the
//! exchange (`sendfile` on plain HTTP/1, read and written over TLS, DATA
//! frames over HTTP/2).
//!
//! The body is read to its end before any answer, so the answer never
//! races what the client still sends: over HTTP/2 a malformed DATA frame
//! or a body longer than its `content-length` gets the stream error RFC
//! 9113 requires (the `h2` crate checks them as they arrive), and a
//! chunked HTTP/1 body is checked as a proxied one is.
//!
//! A route that compresses serves precompressed siblings and compresses
//! files on the fly (`compressed.rs`).

mod compressed;

use levee_config::StaticAction;

use crate::exchange::{Exchange, Next, Outcome, Reply};
use crate::message::{Framing, RequestHead};
use crate::site::Site;
use crate::static_files::path::CleanPath;
use crate::static_files::{self, BodyPlan, StaticOutcome, StaticRequest};
use crate::static_opts::Decided;

/// Most request body a static route reads (and drops) before answering.
const MOST_BODY: u64 = 1024 * 1024;

pub(crate) async fn serve(ex: &mut Exchange<'_>, site: &Site, action: &StaticAction) -> Outcome {
    let keep_alive = ex.keep_alive && ex.head.framing == Framing::None;
    let most = match site.limits.max_body {
        0 => MOST_BODY,
        max => max.min(MOST_BODY),
    };
    if let Err(status) = ex.drain_body(site, most).await {
        return ex.reply(&Reply::error(status, &[]).closing(), site).await;
    }
    let (decided, precompressed) = resolve(ex, action);
    let outcome = match decided {
        Decided::File(outcome) => outcome,
        // Boxed: a listing is rare, and its reply must not widen every
        // connection's task (conn.rs's size test).
        Decided::Page { content_type, body } => {
            return Box::pin(page(ex, site, content_type, body, keep_alive)).await;
        }
    };
    let head = &ex.head;
    let reply = |status, fields| Reply {
        close: !keep_alive,
        ..Reply::error(status, fields)
    };
    match outcome {
        StaticOutcome::Error {
            status,
            fields,
            cause,
        } => {
            tracing::debug!(path = %String::from_utf8_lossy(head.path()), %cause, "static");
            let extra: Vec<(&str, &[u8])> =
                fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            ex.reply(&reply(status, &extra), site).await
        }
        StaticOutcome::Redirect { location } => {
            let location = directory_location(head).unwrap_or(location);
            let extra = [("Location", location.as_bytes())];
            ex.reply(&reply(301, &extra), site).await
        }
        StaticOutcome::NotModified { mut fields } => {
            // A 304 to the copy levee compressed keeps its weak tag.
            for (name, value) in &mut fields {
                if let Some(weak) = name
                    .eq_ignore_ascii_case("etag")
                    .then(|| crate::compress::etag_for_304(head, 304, value.as_bytes()))
                    .flatten()
                {
                    *value = String::from_utf8_lossy(&weak).into_owned();
                }
            }
            let sent = ex.send_file_head(304, &fields, 0, keep_alive, site).await;
            Outcome::of(304, ex.next_after(sent, keep_alive))
        }
        StaticOutcome::Send {
            status,
            fields,
            file,
            body,
        } => {
            if !precompressed
                && let BodyPlan::Range { start, len } = body
                && let Some(enc) = compressed::encoder(ex, status, &fields, &body)
            {
                let (what, range) = ((status, fields), (start, len));
                return compressed::send(ex, site, what, &file, range, enc, keep_alive).await;
            }
            let mut out = Outcome::of(status, ex.next_after(true, keep_alive));
            let length = body_length(&body);
            if !ex
                .send_file_head(status, &fields, length, keep_alive, site)
                .await
            {
                out.next = Next::Close;
                return out;
            }
            let sent = match body {
                BodyPlan::None => Ok(0),
                BodyPlan::Range { start, len } => ex.send_file(&file, start, len, site).await,
                BodyPlan::Multipart { parts, closing } => {
                    send_parts(ex, site, &file, &parts, &closing).await
                }
            };
            match sent {
                Ok(n) => out.bytes = n,
                Err(e) => {
                    tracing::debug!(peer = %ex.peer, error = %e, "static send stopped");
                    out.next = Next::Close;
                }
            }
            out
        }
    }
}

/// What answers the request: a precompressed sibling the route's
/// compression allows (the `bool`), else the file, or a listing.
fn resolve(ex: &Exchange<'_>, action: &StaticAction) -> (Decided, bool) {
    let head = &ex.head;
    let req = StaticRequest {
        method: head.method(),
        path: head.path(),
        if_none_match: head.fields.get("if-none-match"),
        if_modified_since: head.fields.get("if-modified-since"),
        range: head.fields.get("range"),
        if_range: head.fields.get("if-range"),
    };
    let sibling = ex
        .compress
        .as_deref()
        .and_then(|r| compressed::sibling(action, &req, r, head));
    if let Some(outcome) = sibling {
        return (Decided::File(outcome), true);
    }
    let asked = crate::static_opts::Asked {
        query: head.query(),
        accept: head.fields.get("accept"),
    };
    (crate::static_opts::resolve(action, &req, asked), false)
}

/// Where a directory asked for without its `/` is sent: the client's own
/// path with a `/` added, and its own query. The path looked up may be
/// another (`strip_prefix`, `add_prefix`, a rewrite), but the client must
/// come back through the route it came by. Normalised first, so it can
/// never start with `//`; `None` for a path that does not normalise
/// (refused before any route, so not met here).
fn directory_location(head: &RequestHead) -> Option<String> {
    let own = head.original_uri();
    let (path, query) = own.split_at(memchr::memchr(b'?', own).unwrap_or(own.len()));
    let normal = crate::normal::normalise(path, b"").ok()?;
    let matched = normal.as_deref().map_or(path, |n| &n.matched);
    let mut location = CleanPath::parse(matched).ok()?.directory_location();
    location.push_str(&String::from_utf8_lossy(query));
    Some(location)
}

/// A page levee wrote (a listing), which varies by `Accept`.
async fn page(
    ex: &mut Exchange<'_>,
    site: &Site,
    content_type: &'static str,
    body: Vec<u8>,
    keep_alive: bool,
) -> Outcome {
    let reply = Reply {
        status: 200,
        fields: &[("Vary", b"Accept"), ("Cache-Control", b"no-cache")],
        content_type,
        body: std::borrow::Cow::Owned(body),
        close: !keep_alive,
        error: false,
    };
    ex.reply(&reply, site).await
}

/// The body bytes `plan` sends.
fn body_length(plan: &BodyPlan) -> u64 {
    match plan {
        BodyPlan::None => 0,
        BodyPlan::Range { len, .. } => *len,
        BodyPlan::Multipart { parts, closing } => {
            let parts: u64 = parts.iter().map(|p| p.preamble.len() as u64 + p.len).sum();
            parts + closing.len() as u64
        }
    }
}

async fn send_parts(
    ex: &mut Exchange<'_>,
    site: &Site,
    file: &std::fs::File,
    parts: &[static_files::Part],
    closing: &[u8],
) -> std::io::Result<u64> {
    let mut total = 0;
    for part in parts {
        if !ex.send_bytes(&part.preamble, site).await {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        total += part.preamble.len() as u64;
        total += ex.send_file(file, part.start, part.len, site).await?;
    }
    if !ex.send_bytes(closing, site).await {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    Ok(total + closing.len() as u64)
}
