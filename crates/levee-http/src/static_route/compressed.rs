//! A static route's compressed answers (compress.rs): a precompressed
//! sibling of the file (`app.js.br` beside `app.js`, nginx's
//! `gzip_static`), or the file compressed on the fly.
//!
//! A sibling is served to a client that accepts its coding, with the
//! original's `Content-Type`, its own `ETag` and `Last-Modified` (distinct
//! from the original's, so a cache never takes one for the other), and
//! ranges of its own bytes. Unlike nginx, a sibling older than the file
//! is not served: a file updated without its siblings would otherwise
//! send the old content to most clients while `curl` saw the new. Only a
//! file that exists has siblings looked up (no `try_files` fallback). A
//! sibling gets the route's `expires` fields as its original would (by
//! the original's extension for `expires_by_extension`). A directory's
//! index file has its siblings looked up as the file itself would
//! (`/docs/` from `/docs/index.html.gz`).

use std::os::unix::fs::FileExt;

use levee_config::{Coding, Compress, StaticAction};

use crate::compress::Encoder;
use crate::exchange::{Exchange, Next, Outcome};
use crate::message::RequestHead;
use crate::site::Site;
use crate::static_files::{self, BodyPlan, StaticError, StaticOutcome, StaticRequest};

type Fields = Vec<(&'static str, String)>;

fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn modified(fields: &Fields) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(field(fields, "Last-Modified")?).ok()
}

/// The answer from a precompressed sibling of the requested file (or of
/// the index file a directory is answered with), when the route has
/// `precompressed`, the client accepts a coding whose sibling exists, and
/// that sibling is not older than the file. Costs the original's resolve
/// and one more per coding tried.
pub(super) fn sibling(
    action: &StaticAction,
    req: &StaticRequest<'_>,
    rules: &Compress,
    head: &RequestHead,
) -> Option<StaticOutcome> {
    // A hidden path is left to the route's dotfiles rule (static_opts.rs),
    // as is any path `try_files` would have to find.
    if !rules.precompressed || crate::static_opts::hidden(&action.options, req.path).is_some() {
        return None;
    }
    let codings = crate::compress::ranked(rules, head);
    if codings.is_empty() {
        return None;
    }
    // The file itself gives the type and the date its siblings must reach.
    let (served, original) = original(action, req.path)?;
    if crate::static_opts::hidden(&action.options, &served).is_some() {
        return None;
    }
    let content_type = field(&original, "Content-Type")?.to_owned();
    let since = modified(&original)?;
    let file = StaticRequest {
        path: &served,
        ..*req
    };
    let mut outcome = codings
        .into_iter()
        .find_map(|coding| answer(action, &file, coding, &content_type, since))?;
    // The expiry a client without the coding gets (a directory's is by its
    // first index name, static_opts.rs).
    crate::static_opts::expire(action, req.path, &mut outcome);
    Some(outcome)
}

/// The path of the file that answers `path`, with the fields a HEAD of it
/// gets: `path` itself, or for a directory (`/docs/`) its first index
/// file, as `static_files` picks it.
fn original(action: &StaticAction, path: &[u8]) -> Option<(Vec<u8>, Fields)> {
    let head = |path: &[u8]| {
        static_files::resolve(
            action,
            &StaticRequest {
                method: b"HEAD",
                path,
                ..StaticRequest::default()
            },
        )
    };
    if !path.ends_with(b"/") {
        return match head(path) {
            StaticOutcome::Send { fields, .. } => Some((path.to_vec(), fields)),
            _ => None,
        };
    }
    for name in static_files::index_names(&action.index) {
        let candidate = [path, name.as_bytes()].concat();
        match head(&candidate) {
            StaticOutcome::Send { fields, .. } => return Some((candidate, fields)),
            // Passed over as the index lookup passes them over.
            StaticOutcome::Redirect { .. }
            | StaticOutcome::Error {
                cause: StaticError::NotFound | StaticError::NotRegular,
                ..
            } => {}
            _ => return None,
        }
    }
    None
}

/// The sibling for `coding` as the answer, if it exists and is fresh.
fn answer(
    action: &StaticAction,
    req: &StaticRequest<'_>,
    coding: Coding,
    content_type: &str,
    since: std::time::SystemTime,
) -> Option<StaticOutcome> {
    let mut path = req.path.to_vec();
    path.extend_from_slice(coding.suffix().as_bytes());
    let sib = StaticRequest {
        path: &path,
        ..*req
    };
    let mark = |fields: &mut Fields| {
        fields.push(("Content-Encoding", coding.token().to_owned()));
        fields.push(("Vary", "Accept-Encoding".to_owned()));
    };
    match static_files::resolve(action, &sib) {
        StaticOutcome::Send {
            status,
            mut fields,
            file,
            body,
        } => {
            if modified(&fields)? < since {
                return None;
            }
            for (name, value) in &mut fields {
                // A multipart answer keeps its own type; its parts say the sibling's.
                if name.eq_ignore_ascii_case("Content-Type") && !value.starts_with("multipart/") {
                    content_type.clone_into(value);
                }
            }
            mark(&mut fields);
            Some(StaticOutcome::Send {
                status,
                fields,
                file,
                body,
            })
        }
        StaticOutcome::NotModified { mut fields } => {
            mark(&mut fields);
            Some(StaticOutcome::NotModified { fields })
        }
        _ => None,
    }
}

/// The encoder for a whole file sent with `status` and `fields`, when the
/// route compresses and the client and the file qualify.
pub(super) fn encoder(
    ex: &Exchange<'_>,
    status: u16,
    fields: &Fields,
    body: &BodyPlan,
) -> Option<Box<Encoder>> {
    if status != 200 || !matches!(body, BodyPlan::Range { .. }) || ex.compress.is_none() {
        return None;
    }
    ex.encoder(
        status,
        fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    )
}

/// The field names a compressed static answer has: resolve's and compress.rs's.
const NAMES: &[&str] = &[
    "Last-Modified",
    "ETag",
    "Content-Type",
    "Content-Encoding",
    "Vary",
];

/// Read from the file at a time.
const PIECE: usize = 16 * 1024;

/// Sends `len` bytes of `file` from `start` compressed by `enc`: the head
/// (`fields` as compressing changes them; chunked on HTTP/1.1), then each
/// piece compressed and flushed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    ex: &mut Exchange<'_>,
    site: &Site,
    (status, fields): (u16, Fields),
    file: &std::fs::File,
    (start, len): (u64, u64),
    mut enc: Box<Encoder>,
    keep_alive: bool,
) -> Outcome {
    let mut head: Fields = Vec::with_capacity(fields.len() + 2);
    let named = fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    crate::compress::edit_fields(named, enc.coding(), |n, v| {
        if let Some(name) = NAMES.iter().find(|s| s.as_bytes().eq_ignore_ascii_case(n)) {
            head.push((name, String::from_utf8_lossy(v).into_owned()));
        }
    });
    if !ex.is_h2() {
        head.push(("Transfer-Encoding", "chunked".to_owned()));
    }
    let mut out = Outcome::of(status, ex.next_after(true, keep_alive));
    // Unknown length: an HTTP/2 stream ends with the last piece (send_end).
    if !ex
        .send_file_head(status, &head, u64::MAX, keep_alive, site)
        .await
    {
        out.next = Next::Close;
        return out;
    }
    let mut buf = vec![0u8; PIECE];
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from((len - done).min(PIECE as u64)).unwrap_or(PIECE);
        let read = match file.read_at(&mut buf[..want], start + done) {
            Ok(0) | Err(_) => {
                // The file shrank or failed: the head is out, close.
                out.next = Next::Close;
                return out;
            }
            Ok(n) => n,
        };
        done += read as u64;
        let sent = match enc.push(&buf[..read]) {
            Ok(coded) => {
                out.bytes += coded.len() as u64;
                ex.send_bytes(coded, site).await
            }
            Err(_) => false,
        };
        if !sent {
            out.next = Next::Close;
            return out;
        }
    }
    let ended = match enc.finish() {
        Ok(tail) => {
            out.bytes += tail.len() as u64;
            ex.send_end(tail, site).await
        }
        Err(_) => false,
    };
    if !ended {
        out.next = Next::Close;
    }
    out
}
