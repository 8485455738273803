//! Protocol-independent request and response heads.
//!
//! A head keeps the bytes it was parsed from (one `Bytes`, no copy) and the
//! positions of its parts. HTTP/1 fills one straight from the read buffer;
//! HTTP/2 builds the same shape from decoded HPACK fields, so the proxy logic
//! above sees one representation whatever the client spoke.

use bytes::Bytes;

use crate::normal::Normal;

/// A byte range inside a head's raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        // Heads are bounded by `limits.max_header_bytes`, far below u32::MAX.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn of(self, raw: &[u8]) -> &[u8] {
        raw.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// One header field: name and (trimmed) value positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: Span,
    pub value: Span,
}

/// The HTTP version of a message on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    Http2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        }
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// HTTP/1 chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// Header fields with their raw bytes.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    raw: Bytes,
    list: Vec<Field>,
}

/// The list goes back to the worker for the next head (reuse.rs).
impl Drop for Fields {
    fn drop(&mut self) {
        crate::reuse::give_fields(std::mem::take(&mut self.list));
    }
}

impl Fields {
    pub fn new(raw: Bytes, list: Vec<Field>) -> Fields {
        Fields { raw, list }
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.list
            .iter()
            .map(|f| (f.name.of(&self.raw), f.value.of(&self.raw)))
    }

    /// The first value of a field, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn span_of(&self, span: Span) -> &[u8] {
        span.of(&self.raw)
    }
}

/// A request head as the proxy logic sees it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub fields: Fields,
    pub method: Span,
    /// The request target as sent: origin form (`/p?q`) or absolute form.
    pub target: Span,
    pub version: Version,
    /// The authority: from an absolute-form target, else the Host field. Lower case is not guaranteed.
    pub host: Option<Span>,
    pub framing: Framing,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// Field names listed in `Connection` (hop-by-hop for this message), lower-cased.
    pub connection_tokens: Vec<Box<[u8]>>,
    /// The path's normal forms when they differ from the target's
    /// (`normal.rs`); `None` for a path that is already normal.
    pub normal: Option<Box<Normal>>,
}

impl RequestHead {
    pub fn method(&self) -> &[u8] {
        self.fields.span_of(self.method)
    }

    pub fn target(&self) -> &[u8] {
        self.fields.span_of(self.target)
    }

    /// Path and query as the upstream is sent them: the normalised path
    /// (`normal.rs`) unless the route forwards the original
    /// ([`RequestHead::forward_original`]). The cache keys on it too.
    pub fn uri(&self) -> &[u8] {
        match self.normal.as_ref().and_then(|n| n.forward.as_deref()) {
            Some(forward) => forward,
            None => self.original_uri(),
        }
    }

    /// From now on [`RequestHead::uri`] is the client's own path and query
    /// (a route with `forward_path = "original"`).
    pub fn forward_original(&mut self) {
        // An absolute-form target without a path (`http://a?q`) has no
        // origin form of its own to forward.
        if self.original_uri().first() != Some(&b'/') {
            return;
        }
        if let Some(n) = &mut self.normal {
            n.forward = None;
        }
    }

    /// Whether [`RequestHead::uri`] is the client's own path and query.
    pub fn forwards_original(&self) -> bool {
        self.normal.as_ref().is_none_or(|n| n.forward.is_none())
    }

    /// Path and query in origin form as the client sent them, whatever
    /// form the target had.
    pub fn original_uri(&self) -> &[u8] {
        let t = self.target();
        if t.first() == Some(&b'/') {
            return t;
        }
        // absolute-form: scheme://authority/path?query
        match memchr::memmem::find(t, b"://") {
            Some(i) => {
                let rest = &t[i + 3..];
                match memchr::memchr2(b'/', b'?', rest) {
                    Some(j) => &rest[j..],
                    None => b"/",
                }
            }
            None => t,
        }
    }

    /// The path routing, protections, rate-limit keys and static files
    /// act on: decoded and normalised (`normal.rs`), without the query.
    pub fn path(&self) -> &[u8] {
        if let Some(n) = &self.normal {
            return &n.matched;
        }
        let u = self.original_uri();
        match memchr::memchr(b'?', u) {
            Some(i) => &u[..i],
            None => u,
        }
    }

    /// The query without `?`; empty when there is none. A rewrite may
    /// have replaced the client's (rewrite.rs).
    pub fn query(&self) -> &[u8] {
        let u = self.uri();
        match memchr::memchr(b'?', u) {
            Some(i) => &u[i + 1..],
            None => &[],
        }
    }

    /// The host without a port.
    pub fn host_name(&self) -> &[u8] {
        let Some(h) = self.host else { return b"" };
        strip_port(self.fields.span_of(h))
    }

    pub fn is_head(&self) -> bool {
        self.method() == b"HEAD"
    }
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
pub fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match memchr::memchr(b']', host) {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match memchr::memrchr(b':', host) {
        Some(i) => &host[..i],
        None => host,
    }
}

/// A response head from an upstream.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub fields: Fields,
    pub status: u16,
    pub reason: Span,
    pub version: Version,
    pub framing: Framing,
    /// The upstream will keep the connection open after this response.
    pub keep_alive: bool,
    pub connection_tokens: Vec<Box<[u8]>>,
}

/// Whether `name` is among a message's `Connection` tokens (lower-cased).
pub fn listed(tokens: &[Box<[u8]>], name: &[u8]) -> bool {
    tokens.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// Fields that describe one hop and are never forwarded (RFC 9110 §7.6.1).
/// By length first: every field of every relayed head asks.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    let hop: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        6 => &[b"expect"],
        7 => &[b"trailer", b"upgrade"],
        10 => &[b"connection", b"keep-alive"],
        16 => &[b"proxy-connection"],
        17 => &[b"transfer-encoding"],
        _ => return false,
    };
    hop.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Status codes whose responses never carry a body.
pub fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

#[cfg(test)]
mod tests {
    #[test]
    fn hop_by_hop_fields_in_any_case_and_no_others() {
        for name in [
            "Connection",
            "keep-alive",
            "Proxy-Connection",
            "TE",
            "trailer",
            "Transfer-Encoding",
            "UPGRADE",
            "expect",
        ] {
            assert!(super::is_hop_by_hop(name.as_bytes()), "{name}");
        }
        // Same lengths, other names.
        for name in [
            "tx",
            "accept",
            "referer",
            "user-agent",
            "content-location",
            "x-forwarded-proto",
        ] {
            assert!(!super::is_hop_by_hop(name.as_bytes()), "{name}");
        }
    }
}
