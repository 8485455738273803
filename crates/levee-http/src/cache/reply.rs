//! Answering from a stored response: `Age`, `Cache-Status`, HEAD, the
//! client's own conditionals (304) and ranges (206, multipart, 416).

use bytes::Bytes;
use levee_cache::body::Slice;
use levee_cache::freshness::http_date;
use levee_cache::store::Object;

use crate::h1::write::{field, push_u64, reason};
use crate::message::{RequestHead, Version};
use crate::static_files::range::{self, RangeDecision};
use crate::static_files::{BodyPlan, multipart, new_boundary};

/// A response made from a stored object: its head, then the body as
/// slices of memory or of the disk tier's file.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The HTTP/1.1 head.
    pub head: Vec<u8>,
    /// Where in `head` the field lines are (without the status line,
    /// `Content-Length` and `Connection`): what HTTP/2 sends as HEADERS.
    pub fields: std::ops::Range<usize>,
    pub body: Vec<Slice>,
}

impl Answer {
    pub fn body_len(&self) -> u64 {
        self.body.iter().map(Slice::len).sum()
    }
}

/// Builds the answer to `req` from `obj`. `extra` holds whole lines levee
/// adds: `Cache-Status`, a 304's `Set-Cookie` for this client.
pub(crate) fn answer(
    obj: &Object,
    req: &RequestHead,
    age: u64,
    extra_lines: &[u8],
    keep_alive: bool,
) -> Answer {
    let Shape {
        status,
        body,
        extra,
    } = shape(obj, req);
    let replaced = |name: &[u8]| {
        name.eq_ignore_ascii_case(b"content-length")
            || (status == 206 && extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
            || (status != obj.status && status != 304 && name.eq_ignore_ascii_case(b"content-type"))
    };
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    push_u64(&mut head, u64::from(status));
    head.push(b' ');
    head.extend_from_slice(reason(status).as_bytes());
    head.extend_from_slice(b"\r\n");
    let fields_start = head.len();
    if status == obj.status {
        // Nothing to replace (Content-Length is never stored): one copy.
        head.extend_from_slice(obj.visible_head());
    } else {
        for (name, value) in obj.visible_fields() {
            if !replaced(name) {
                field(&mut head, name, value);
            }
        }
    }
    for (name, value) in &extra {
        field(&mut head, name, value);
    }
    head.extend_from_slice(b"Age: ");
    push_u64(&mut head, age);
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(extra_lines);
    let fields = fields_start..head.len();
    // RFC 9110 §8.6: no Content-Length on 204, and a 304 would announce the full body's.
    if status != 304 && status != 204 {
        head.extend_from_slice(b"Content-Length: ");
        push_u64(&mut head, body.iter().map(Slice::len).sum());
        head.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        head.extend_from_slice(b"Connection: close\r\n");
    } else if req.version == Version::Http10 {
        head.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let body = if req.is_head() { Vec::new() } else { body };
    Answer {
        status,
        head,
        fields,
        body,
    }
}

/// Status, body pieces and the fields that replace stored ones.
struct Shape {
    status: u16,
    body: Vec<Slice>,
    extra: Vec<(&'static [u8], Vec<u8>)>,
}

fn shape(obj: &Object, req: &RequestHead) -> Shape {
    let size = obj.body.len();
    let (status, body, extra) = if not_modified(obj, req) {
        (304, Vec::new(), Vec::new())
    } else {
        match ranges(obj, req) {
            RangeDecision::Full => (obj.status, obj.body.all(), Vec::new()),
            RangeDecision::Unsatisfiable => (
                416,
                Vec::new(),
                vec![(
                    &b"Content-Range"[..],
                    format!("bytes */{size}").into_bytes(),
                )],
            ),
            RangeDecision::Partial(parts) => match parts.as_slice() {
                [one] => (
                    206,
                    obj.body.slices(one.start, one.len),
                    vec![(&b"Content-Range"[..], one.content_range(size).into_bytes())],
                ),
                many => {
                    let media = obj
                        .field("content-type")
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_else(|| "application/octet-stream".to_owned());
                    let boundary = new_boundary();
                    let (plan, _) = multipart(many, &media, size, &boundary);
                    let mut body = Vec::new();
                    if let BodyPlan::Multipart { parts, closing } = plan {
                        for p in parts {
                            body.push(Slice::Bytes(Bytes::from(p.preamble)));
                            body.extend(obj.body.slices(p.start, p.len));
                        }
                        body.push(Slice::Bytes(Bytes::from(closing)));
                    }
                    let ct = format!("multipart/byteranges; boundary={boundary}").into_bytes();
                    (206, body, vec![(&b"Content-Type"[..], ct)])
                }
            },
        }
    };
    Shape {
        status,
        body,
        extra,
    }
}

/// The client's `If-None-Match` (preferred) or `If-Modified-Since` holds:
/// it already has this representation (RFC 9110 §13.2.2). Without a stored
/// `Last-Modified`, `If-Modified-Since` is held against the stored `Date`,
/// else the time the response arrived (RFC 9111 §4.3.2).
fn not_modified(obj: &Object, req: &RequestHead) -> bool {
    if !(200..300).contains(&obj.status) {
        return false;
    }
    if let Some(inm) = req.fields.get("if-none-match") {
        let Some(etag) = obj.field("etag") else {
            return false;
        };
        return inm.trim_ascii() == b"*"
            || inm
                .split(|&b| b == b',')
                .any(|t| weak_eq(t.trim_ascii(), etag.trim_ascii()));
    }
    let Some(since) = http_date(req.fields.get("if-modified-since")).flatten() else {
        return false;
    };
    let modified = http_date(obj.field("last-modified"))
        .or_else(|| http_date(obj.field("date")))
        .flatten()
        .unwrap_or(obj.meta.response_time);
    modified <= since
}

/// Weak comparison of entity tags: `W/"x"` equals `"x"`.
fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    let strip = |t: &[u8]| t.strip_prefix(b"W/").unwrap_or(t).to_vec();
    strip(a) == strip(b)
}

/// The ranges to send, honouring `If-Range` (a strong ETag or the exact
/// Last-Modified date must match, else the whole body).
fn ranges(obj: &Object, req: &RequestHead) -> RangeDecision {
    let Some(field) = req.fields.get("range") else {
        return RangeDecision::Full;
    };
    if obj.status != 200 || req.method() != b"GET" {
        return RangeDecision::Full;
    }
    if let Some(if_range) = req.fields.get("if-range") {
        let if_range = if_range.trim_ascii();
        let holds = if if_range.starts_with(b"\"") {
            obj.field("etag")
                .is_some_and(|e| e.trim_ascii() == if_range)
        } else {
            let date = http_date(Some(if_range)).flatten();
            date.is_some() && date == http_date(obj.field("last-modified")).flatten()
        };
        if !holds {
            return RangeDecision::Full;
        }
    }
    range::decide(field, obj.body.len())
}

#[cfg(test)]
mod tests;
