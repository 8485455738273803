//! Responses compressed on the fly (gzip, Brotli, zstd): which coding a
//! request accepts (`offer`), whether a response is worth compressing
//! (`worth`), and what compressing changes in its head (`edit_fields`),
//! all without I/O; the encoder that streams a body is in `encoder.rs`.
//!
//! It is a stage of the respond phase (docs/architecture.md): each relay
//! that hands a response body to a client (an HTTP/1 or HTTP/2 server's,
//! to an HTTP/1 or HTTP/2 client) asks [`Exchange::encoder`] once it has
//! the response head, and with an encoder passes every piece of body data
//! through it, flushed, so a streamed response (SSE) still streams. A
//! route that does not compress costs one `None` check per response.
//!
//! [`Exchange::encoder`]: crate::exchange::Exchange::encoder

mod encoder;

use levee_config::{Coding, Compress};

pub(crate) use encoder::Encoder;

use crate::message::{RequestHead, Version};

/// The coding to compress the response to `req` with, under `rules`: the
/// first of [`ranked`]. `None` when the client accepts none of them, or
/// when the response must not be compressed whatever it is: a HEAD, a
/// Range request (the ranges are of the identity body), an HTTP/1.0
/// client (no chunked coding to end a body of unknown length).
pub(crate) fn offer(rules: &Compress, req: &RequestHead) -> Option<Coding> {
    if req.is_head() || req.version == Version::Http10 || req.fields.get("range").is_some() {
        return None;
    }
    ranked(rules, req).first().copied()
}

/// The codings of `rules.prefer` the client's `Accept-Encoding` accepts,
/// best first: the highest q-value, ties going to the earlier in
/// `prefer`; `q=0` refuses a coding, `*` stands for those not named. No
/// `Accept-Encoding` at all: none (identity).
pub(crate) fn ranked(rules: &Compress, req: &RequestHead) -> Vec<Coding> {
    let mut q = [None::<u16>; 3];
    let mut star = None;
    let mut any = false;
    for (name, value) in req.fields.iter() {
        if !name.eq_ignore_ascii_case(b"accept-encoding") {
            continue;
        }
        any = true;
        for (token, weight) in accepted(value) {
            if token == b"*" {
                star = Some(weight);
            } else if let Some(c) = coding_of(token) {
                let slot = &mut q[index(c)];
                // A coding listed twice: the larger weight (lenient).
                *slot = Some(slot.map_or(weight, |w| w.max(weight)));
            }
        }
    }
    if !any {
        return Vec::new();
    }
    let mut out: Vec<(Coding, u16)> = rules
        .prefer
        .iter()
        .map(|&c| (c, q[index(c)].or(star).unwrap_or(0)))
        .filter(|&(_, w)| w > 0)
        .collect();
    // Stable: equal weights keep `prefer`'s order.
    out.sort_by_key(|&(_, w)| std::cmp::Reverse(w));
    out.into_iter().map(|(c, _)| c).collect()
}

fn index(c: Coding) -> usize {
    match c {
        Coding::Gzip => 0,
        Coding::Brotli => 1,
        Coding::Zstd => 2,
    }
}

fn coding_of(token: &[u8]) -> Option<Coding> {
    if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
        Some(Coding::Gzip)
    } else if token.eq_ignore_ascii_case(b"br") {
        Some(Coding::Brotli)
    } else if token.eq_ignore_ascii_case(b"zstd") {
        Some(Coding::Zstd)
    } else {
        None
    }
}

/// The codings of one `Accept-Encoding` value with their weights in
/// thousandths (`q=0.5` is 500). An entry whose weight does not parse is
/// left out.
fn accepted(value: &[u8]) -> impl Iterator<Item = (&[u8], u16)> {
    value.split(|&b| b == b',').filter_map(|entry| {
        let mut parts = entry.split(|&b| b == b';');
        let token = parts.next()?.trim_ascii();
        if token.is_empty() {
            return None;
        }
        let mut weight = 1000;
        for param in parts {
            let param = param.trim_ascii();
            if let Some(q) = param
                .strip_prefix(b"q=")
                .or_else(|| param.strip_prefix(b"Q="))
            {
                weight = qvalue(q)?;
            }
        }
        Some((token, weight))
    })
}

/// RFC 9110 §12.4.2's qvalue: `0`, `1`, `0.xxx`, `1.000`.
pub(crate) fn qvalue(q: &[u8]) -> Option<u16> {
    let (int, frac) = match q.iter().position(|&b| b == b'.') {
        Some(dot) => (&q[..dot], &q[dot + 1..]),
        None => (q, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        let digit = frac.get(i).map_or(0, |d| u16::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a response with `status` and `fields` is compressed under
/// `rules`: a status with a body that is not a partial one (not 1xx, 204,
/// 206, 304), no `Content-Encoding` of its own (`identity` aside), no
/// `Cache-Control: no-transform`, a `Content-Type` among `types`, and a
/// `Content-Length`, if it has one, of at least `min_length`.
pub(crate) fn worth<'a>(
    rules: &Compress,
    status: u16,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> bool {
    if status < 200 || matches!(status, 204 | 206 | 304) {
        return false;
    }
    let mut typed = false;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"content-encoding") {
            if !value.trim_ascii().eq_ignore_ascii_case(b"identity") {
                return false;
            }
        } else if name.eq_ignore_ascii_case(b"cache-control") {
            let no_transform = value
                .split(|&b| b == b',')
                .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"));
            if no_transform {
                return false;
            }
        } else if name.eq_ignore_ascii_case(b"content-type") {
            typed = type_listed(&rules.types, value);
            if !typed {
                return false;
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            if length.is_some_and(|n| n < rules.min_length) {
                return false;
            }
        }
    }
    typed
}

/// `value` (a `Content-Type`, parameters and all) is one of `types`
/// (lower-case; `text/*` for a whole top-level type).
pub(crate) fn type_listed(types: &[String], value: &[u8]) -> bool {
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    types.iter().any(|t| match t.strip_suffix("/*") {
        Some(top) => {
            essence.len() > top.len() + 1
                && essence[..top.len()].eq_ignore_ascii_case(top.as_bytes())
                && essence[top.len()] == b'/'
        }
        None => essence.eq_ignore_ascii_case(t.as_bytes()),
    })
}

/// The encoder for the response to `req` (`status`, `fields`) when its
/// route compresses (`rules`), the client accepts a coding and the
/// response is worth it; `chunked`: its output framed as HTTP/1.1 chunks.
/// Boxed: a relay that does not compress carries one pointer for it.
pub(crate) fn encoder_for<'a>(
    rules: Option<&Compress>,
    req: &RequestHead,
    status: u16,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    chunked: bool,
) -> Option<Box<Encoder>> {
    let rules = rules?;
    let coding = offer(rules, req)?;
    if !worth(rules, status, fields) {
        return None;
    }
    match Encoder::new(coding, rules, chunked) {
        Ok(e) => Some(Box::new(e)),
        Err(e) => {
            tracing::debug!(error = %e, "compress: no encoder, the response goes as it is");
            None
        }
    }
}

/// The response's fields (hop-by-hop ones already left out) as they go
/// with a body compressed to `coding`, to `emit`: no `Content-Length` (the
/// length is the compressed body's, unknown before its end), no
/// `Accept-Ranges` (ranges would be of the compressed body, which differs
/// from one response to the next), a strong `ETag` made weak (the bytes
/// are no longer the ones it named), `Accept-Encoding` added to `Vary`
/// (merged into the response's own), and `Content-Encoding`.
pub(crate) fn edit_fields<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    coding: Coding,
    mut emit: impl FnMut(&[u8], &[u8]),
) {
    let mut varied = false;
    let mut scratch = Vec::new();
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"accept-ranges")
            || name.eq_ignore_ascii_case(b"content-encoding")
        {
            continue;
        }
        if name.eq_ignore_ascii_case(b"etag") && !value.starts_with(b"W/") {
            scratch.clear();
            scratch.extend_from_slice(b"W/");
            scratch.extend_from_slice(value);
            emit(name, &scratch);
        } else if name.eq_ignore_ascii_case(b"vary") && !varied {
            varied = true;
            let covered = value.split(|&b| b == b',').any(|t| {
                let t = t.trim_ascii();
                t == b"*" || t.eq_ignore_ascii_case(b"accept-encoding")
            });
            if covered || value.trim_ascii().is_empty() {
                emit(name, if covered { value } else { b"Accept-Encoding" });
            } else {
                scratch.clear();
                scratch.extend_from_slice(value);
                scratch.extend_from_slice(b", Accept-Encoding");
                emit(name, &scratch);
            }
        } else {
            emit(name, value);
        }
    }
    emit(b"Content-Encoding", coding.token().as_bytes());
    if !varied {
        emit(b"Vary", b"Accept-Encoding");
    }
}

/// The `ETag` a server's 304 goes to the client with, when not its own: a
/// client revalidating a copy levee compressed names the tag as that
/// copy's 200 carried it, weak (`If-None-Match: W/"x"`), and the server
/// answers with the strong `"x"`; relayed as it is, the client would keep
/// a strong validator for bytes it does not name. A 304 carries the
/// `ETag` its 200 would have (RFC 9110 §15.4.5), so it goes weak, as the
/// cache's own 304s do.
pub(crate) fn etag_for_304(req: &RequestHead, status: u16, etag: &[u8]) -> Option<Vec<u8>> {
    if status != 304 || etag.starts_with(b"W/") {
        return None;
    }
    let held_weak = req
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"if-none-match"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .any(|tag| tag.trim_ascii().strip_prefix(b"W/") == Some(etag));
    held_weak.then(|| [&b"W/"[..], etag].concat())
}

/// [`etag_for_304`] on an HTTP/2 head's fields.
pub(crate) fn etag_for_304_map(req: &RequestHead, status: u16, headers: &mut http::HeaderMap) {
    let weak = headers
        .get(http::header::ETAG)
        .and_then(|v| etag_for_304(req, status, v.as_bytes()))
        .and_then(|w| http::HeaderValue::from_bytes(&w).ok());
    if let Some(weak) = weak {
        headers.insert(http::header::ETAG, weak);
    }
}

/// The fields of `Name: value` lines (CRLF or LF ended), values trimmed;
/// a line without a colon is left out.
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    text.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// [`edit_fields`] on an HTTP/2 head's fields.
pub(crate) fn edit_map(headers: &mut http::HeaderMap, coding: Coding) {
    let old = std::mem::take(headers);
    let fields = old
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    edit_fields(fields, coding, |n, v| {
        crate::exchange::h2::append_field(headers, n, v);
    });
}

#[cfg(test)]
mod tests;
