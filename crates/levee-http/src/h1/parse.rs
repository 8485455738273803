//! Strict HTTP/1 head parsing.
//!
//! `httparse` does the tokenising (and already refuses obs-fold, whitespace
//! before a colon and control bytes in fields). On top of it this module
//! enforces levee's request-smuggling policy (docs/http1.md):
//!
//! - a bare LF anywhere in a head is refused (only CRLF ends a line);
//! - Content-Length must be digits only; several values must all agree;
//! - Content-Length together with Transfer-Encoding is refused;
//! - Transfer-Encoding must end in `chunked`, and `chunked` is the only
//!   coding levee decodes (others: 501); it is refused in HTTP/1.0;
//! - HTTP/1.1 requests need exactly one Host, HTTP/1.0 at most one;
//! - CONNECT is refused with 501: levee is a reverse proxy, not a tunnel
//!   (what follows a CONNECT would be tunnel bytes, so the connection closes).

use std::mem::MaybeUninit;

use crate::message::{Field, Fields, Framing, RequestHead, ResponseHead, Span, Version};
use crate::normal::{Normal, PathError, normalise};

/// Bounds on a request head, from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_request_line: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

/// Why a head was refused, and so what the peer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request line")]
    BadRequestLine,
    #[error("unsupported HTTP version")]
    BadVersion,
    #[error("malformed header field")]
    BadField,
    #[error("bare LF in head")]
    BareLf,
    #[error("request line too long")]
    RequestLineTooLong,
    #[error("head too large")]
    HeadTooLarge,
    #[error("too many header fields")]
    TooManyFields,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    #[error("Transfer-Encoding does not end in chunked")]
    ChunkedNotFinal,
    #[error("unsupported transfer coding")]
    UnsupportedCoding,
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    ChunkedInHttp10,
    #[error("missing Host")]
    MissingHost,
    #[error("more than one Host")]
    DuplicateHost,
    #[error("invalid Host")]
    BadHost,
    #[error("CONNECT (levee tunnels nothing)")]
    Connect,
    #[error("request target is neither origin nor absolute form")]
    BadTarget,
    #[error("absolute-form target with userinfo or a scheme other than http(s)")]
    BadAbsolute,
    #[error("request path: {0}")]
    BadPath(#[from] PathError),
}

impl HeadError {
    /// The status a client gets for a request head with this fault.
    pub fn status(self) -> u16 {
        match self {
            HeadError::BadVersion => 505,
            HeadError::RequestLineTooLong => 414,
            HeadError::HeadTooLarge | HeadError::TooManyFields => 431,
            HeadError::UnsupportedCoding | HeadError::Connect => 501,
            _ => 400,
        }
    }
}

/// The outcome of feeding bytes to a parser.
#[derive(Debug)]
pub enum Parsed<T> {
    /// `T` and the length of the head in bytes.
    Complete(T, usize),
    Incomplete,
}

/// A parsed request head, as positions into the buffer it came from.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: Span,
    pub target: Span,
    pub version: Version,
    pub fields: Vec<Field>,
    pub host: Option<Span>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub connection_tokens: Vec<Box<[u8]>>,
    /// The path's normal forms, when they differ from the target's.
    pub normal: Option<Box<Normal>>,
}

impl RequestParts {
    /// The head, over `raw` (the bytes it was parsed from).
    pub fn into_head(self, raw: bytes::Bytes) -> RequestHead {
        RequestHead {
            fields: Fields::new(raw, self.fields),
            method: self.method,
            target: self.target,
            version: self.version,
            host: self.host,
            framing: self.framing,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            connection_tokens: self.connection_tokens,
            normal: self.normal,
        }
    }
}

/// A parsed response head, as positions into the buffer it came from.
#[derive(Debug, Clone)]
pub struct ResponseParts {
    pub status: u16,
    pub reason: Span,
    pub version: Version,
    pub fields: Vec<Field>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub connection_tokens: Vec<Box<[u8]>>,
}

impl ResponseParts {
    /// The head, over `raw` (the bytes it was parsed from).
    pub fn into_head(self, raw: bytes::Bytes) -> ResponseHead {
        ResponseHead {
            fields: Fields::new(raw, self.fields),
            status: self.status,
            reason: self.reason,
            version: self.version,
            framing: self.framing,
            keep_alive: self.keep_alive,
            connection_tokens: self.connection_tokens,
        }
    }
}

/// Stack room for header fields; beyond it `max_headers` still applies via a heap array.
const STACK_FIELDS: usize = 128;

/// Where a head ends (just past its empty line), if it is complete.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    // Built once: `memmem::find` builds one per call, which cost more than
    // the search (bench/README.md, issue 21).
    static END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    let start = from.saturating_sub(3);
    END.find(buf.get(start..)?).map(|i| start + i + 4)
}

/// Parses a request head. `buf` holds everything read so far; its first
/// `searched` bytes are known not to hold the end of the head (so a client
/// sending one byte at a time costs linear, not quadratic, work).
pub fn parse_request(
    buf: &[u8],
    searched: usize,
    limits: &HeadLimits,
) -> Result<Parsed<RequestParts>, HeadError> {
    let Some(end) = head_end(buf, searched) else {
        return incomplete_or_error(buf, limits);
    };
    let head = &buf[..end];
    check_line_endings(head)?;
    let line_len = memchr::memchr(b'\n', head).unwrap_or(end);
    check_size(line_len, end, limits)?;

    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
    let mut heap;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers < STACK_FIELDS {
        &mut stack[..limits.max_headers + 1]
    } else {
        heap = Vec::with_capacity(limits.max_headers + 1);
        heap.resize_with(limits.max_headers + 1, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(head, slots);
    match status {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::BadField),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(httparse::Error::Version) => return Err(version_error(head)),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(HeadError::BadField);
        }
        Err(_) => return Err(HeadError::BadRequestLine),
    }
    if req.headers.len() > limits.max_headers {
        return Err(HeadError::TooManyFields);
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method = span_in(head, req.method.unwrap_or_default().as_bytes());
    let target = span_in(head, req.path.unwrap_or_default().as_bytes());
    let fields = collect_fields(head, req.headers);
    let parts = request_parts(head, method, target, version, fields)?;
    Ok(Parsed::Complete(parts, end))
}

/// The request line's and the head's length against `[limits]`: 414, 431.
pub(crate) fn check_size(
    line_len: usize,
    end: usize,
    limits: &HeadLimits,
) -> Result<(), HeadError> {
    if line_len > limits.max_request_line {
        return Err(HeadError::RequestLineTooLong);
    }
    if end > limits.max_header_bytes {
        return Err(HeadError::HeadTooLarge);
    }
    Ok(())
}

/// The checks and meaning of a request head once tokenised, shared by
/// HTTP/1 (after httparse) and HTTP/2 (a head built from decoded fields,
/// http2/request.rs): CONNECT refused, the target's form checked and its
/// path normalised, framing and Host by the smuggling rules.
pub(crate) fn request_parts(
    head: &[u8],
    method: Span,
    target: Span,
    version: Version,
    fields: Vec<Field>,
) -> Result<RequestParts, HeadError> {
    if method.of(head) == b"CONNECT" {
        return Err(HeadError::Connect);
    }
    let (authority, normal) = read_target(target.of(head))?;
    let semantics = Semantics::read(head, &fields)?;

    let framing = semantics.request_framing(version)?;
    let host = match (version, semantics.host_count) {
        (_, n) if n > 1 => return Err(HeadError::DuplicateHost),
        (Version::Http11, 0) => return Err(HeadError::MissingHost),
        _ => semantics.host,
    };
    if let Some(h) = host
        && !valid_host(h.of(head))
    {
        return Err(HeadError::BadHost);
    }
    let host = authority.map(|a| span_in(head, a)).or(host);
    let keep_alive = match version {
        Version::Http11 => !semantics.close,
        _ => semantics.keep_alive && !semantics.close,
    };
    Ok(RequestParts {
        method,
        target,
        version,
        fields,
        host,
        framing,
        keep_alive,
        expect_continue: semantics.expect_continue,
        connection_tokens: semantics.tokens,
        normal,
    })
}

/// A checked target: the authority of an absolute form, and the path's
/// normal forms when they differ from the target's.
type Target<'a> = (Option<&'a [u8]>, Option<Box<Normal>>);

/// Checks a request target's form and normalises its path: origin form
/// (`/p?q`), or absolute form (`http://host/p?q`) whose authority is
/// returned, to stand for `Host`. `*` (`OPTIONS *`) and authority form
/// (`host:port`, CONNECT's, refused before) are refused: levee routes by
/// path and has nothing to say of the server as a whole.
fn read_target(target: &[u8]) -> Result<Target<'_>, HeadError> {
    let (authority, origin) = if target.first() == Some(&b'/') {
        (None, target)
    } else {
        let (authority, origin) = absolute_form(target)?;
        (Some(authority), origin)
    };
    let (path, query) = match memchr::memchr(b'?', origin) {
        Some(q) => (&origin[..q], &origin[q..]),
        None => (origin, &origin[origin.len()..]),
    };
    // A fragment is never part of a request target (RFC 9112 §3.2); in
    // the path the normalisation refuses it.
    if memchr::memchr(b'#', query).is_some() {
        return Err(HeadError::BadPath(PathError::Fragment));
    }
    Ok((authority, normalise(path, query)?))
}

/// The authority and the rest (`/p?q`, `?q` or empty) of an absolute-form
/// target. Its authority gets the checks a `Host` gets, and no userinfo
/// (`http://user@host/`): it would be read as the host by some and not by
/// others. Schemes other than http and https are not levee's to serve.
fn absolute_form(target: &[u8]) -> Result<(&[u8], &[u8]), HeadError> {
    let Some(i) = memchr::memmem::find(target, b"://") else {
        return Err(HeadError::BadTarget);
    };
    let scheme = &target[..i];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return Err(HeadError::BadAbsolute);
    }
    let rest = &target[i + 3..];
    let end = memchr::memchr3(b'/', b'?', b'#', rest).unwrap_or(rest.len());
    let authority = &rest[..end];
    if memchr::memchr(b'@', authority).is_some() {
        return Err(HeadError::BadAbsolute);
    }
    if authority.is_empty() || !valid_host(authority) {
        return Err(HeadError::BadHost);
    }
    Ok((authority, &rest[end..]))
}

/// Parses an upstream's response head. Faults here become 502s.
pub fn parse_response(
    buf: &[u8],
    max_bytes: usize,
    request_was_head: bool,
) -> Result<Parsed<ResponseParts>, HeadError> {
    let Some(end) = head_end(buf, 0) else {
        if buf.len() > max_bytes {
            return Err(HeadError::HeadTooLarge);
        }
        return Ok(Parsed::Incomplete);
    };
    let head = &buf[..end];
    check_line_endings(head)?;
    let mut slots = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::BadField),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(httparse::Error::Version) => return Err(HeadError::BadVersion),
        Err(_) => return Err(HeadError::BadField),
    }
    let status = res.code.unwrap_or(0);
    let version = match res.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let reason = span_in(head, res.reason.unwrap_or_default().as_bytes());
    let fields = collect_fields(head, res.headers);
    let semantics = Semantics::read(head, &fields)?;
    let framing = if request_was_head || crate::message::status_has_no_body(status) {
        Framing::None
    } else if let Some(fault) = semantics.te_fault {
        // A coding levee cannot undo (`gzip, chunked`; `gzip` until close):
        // relayed, its bytes would reach the client as if they were the
        // body, since `Transfer-Encoding` is hop-by-hop and not passed on.
        return Err(fault);
    } else if semantics.chunked_final {
        Framing::Chunked
    } else if semantics.has_te {
        Framing::UntilClose
    } else if let Some(n) = semantics.length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let keep_alive = framing != Framing::UntilClose
        && match version {
            Version::Http11 => !semantics.close,
            _ => semantics.keep_alive && !semantics.close,
        };
    Ok(Parsed::Complete(
        ResponseParts {
            status,
            reason,
            version,
            fields,
            framing,
            keep_alive,
            connection_tokens: semantics.tokens,
        },
        end,
    ))
}

fn incomplete_or_error<T>(buf: &[u8], limits: &HeadLimits) -> Result<Parsed<T>, HeadError> {
    let line_done = memchr::memchr(b'\n', buf);
    if line_done.is_none() && buf.len() > limits.max_request_line {
        return Err(HeadError::RequestLineTooLong);
    }
    if buf.len() > limits.max_header_bytes {
        return Err(HeadError::HeadTooLarge);
    }
    // A request line ended by a bare LF will never complete properly.
    if let Some(i) = line_done
        && (i == 0 || buf[i - 1] != b'\r')
    {
        return Err(HeadError::BareLf);
    }
    // A complete request line without a version (HTTP/0.9) is refused now,
    // not after the head deadline. Empty lines before it are allowed.
    let body = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .map_or(&buf[..0], |s| &buf[s..]);
    if let Some(end) = memchr::memmem::find(body, b"\r\n") {
        let line = &body[..end];
        let spaces = line.iter().filter(|&&b| b == b' ').count();
        let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
        if spaces != 2 || !version.starts_with(b"HTTP/") {
            return Err(HeadError::BadRequestLine);
        }
    }
    Ok(Parsed::Incomplete)
}

fn version_error(head: &[u8]) -> HeadError {
    let line = &head[..memchr::memchr(b'\r', head).unwrap_or(head.len())];
    let last = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    let looks_versioned = last.len() == 8
        && last.starts_with(b"HTTP/")
        && last[5].is_ascii_digit()
        && last[6] == b'.'
        && last[7].is_ascii_digit();
    if looks_versioned && line.iter().filter(|&&b| b == b' ').count() == 2 {
        HeadError::BadVersion
    } else {
        HeadError::BadRequestLine
    }
}

/// Every LF follows a CR, and every CR comes before an LF: each LF having
/// its own CR, as many CRs as LFs means none is left over (one vectorised
/// count, not a search per CR: bench/README.md, issue 21).
fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    let mut lines = 0;
    for i in memchr::memchr_iter(b'\n', head) {
        if i == 0 || head[i - 1] != b'\r' {
            return Err(HeadError::BareLf);
        }
        lines += 1;
    }
    if memchr::memchr_iter(b'\r', head).count() != lines {
        return Err(HeadError::BadField);
    }
    Ok(())
}

/// A byte httparse takes in a request target (visible ASCII, obs-text).
pub(crate) fn is_target_byte(b: u8) -> bool {
    matches!(b, b'!'..=0x7e | 0x80..=0xff)
}

fn span_in(base: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    Span::new(start, start + part.len())
}

/// The fields as positions in `head`, in a list the worker kept (reuse.rs).
fn collect_fields(head: &[u8], headers: &[httparse::Header<'_>]) -> Vec<Field> {
    let mut list = crate::reuse::fields();
    list.extend(headers.iter().map(|h| Field {
        name: span_in(head, h.name.as_bytes()),
        value: span_in(head, trim(h.value)),
    }));
    list
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else { return &v[..0] };
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(start);
    &v[start..=end]
}

/// What the framing- and connection-related fields of a head say.
#[derive(Default)]
struct Semantics {
    length: Option<u64>,
    has_te: bool,
    chunked_final: bool,
    te_fault: Option<HeadError>,
    host: Option<Span>,
    host_count: usize,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    tokens: Vec<Box<[u8]>>,
}

impl Semantics {
    fn read(head: &[u8], fields: &[Field]) -> Result<Semantics, HeadError> {
        let mut s = Semantics::default();
        for f in fields {
            let name = f.name.of(head);
            let value = f.value.of(head);
            if name.eq_ignore_ascii_case(b"content-length") {
                for part in value.split(|&b| b == b',') {
                    let n = parse_length(trim(part))?;
                    match s.length {
                        Some(prev) if prev != n => return Err(HeadError::ConflictingContentLength),
                        _ => s.length = Some(n),
                    }
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                s.read_codings(value);
            } else if name.eq_ignore_ascii_case(b"host") {
                s.host_count += 1;
                s.host = Some(f.value);
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        s.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        s.keep_alive = true;
                    } else if !token.is_empty() {
                        s.tokens.push(token.to_ascii_lowercase().into_boxed_slice());
                    }
                }
            } else if name.eq_ignore_ascii_case(b"expect") {
                s.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
            }
        }
        Ok(s)
    }

    fn read_codings(&mut self, value: &[u8]) {
        for coding in value.split(|&b| b == b',').map(trim) {
            if coding.is_empty() {
                continue;
            }
            if self.chunked_final {
                // Something follows `chunked`: it is no longer the final coding.
                self.te_fault = Some(HeadError::ChunkedNotFinal);
            }
            self.has_te = true;
            if coding.eq_ignore_ascii_case(b"chunked") {
                if self.chunked_final {
                    self.te_fault = Some(HeadError::ChunkedNotFinal);
                }
                self.chunked_final = true;
            } else {
                self.chunked_final = false;
                if self.te_fault.is_none() {
                    self.te_fault = Some(HeadError::UnsupportedCoding);
                }
            }
        }
    }

    fn request_framing(&self, version: Version) -> Result<Framing, HeadError> {
        if self.has_te {
            if self.length.is_some() {
                return Err(HeadError::LengthAndChunked);
            }
            if version == Version::Http10 {
                return Err(HeadError::ChunkedInHttp10);
            }
            if !self.chunked_final {
                return Err(HeadError::ChunkedNotFinal);
            }
            if let Some(fault) = self.te_fault {
                return Err(fault);
            }
            return Ok(Framing::Chunked);
        }
        Ok(match self.length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

fn parse_length(v: &[u8]) -> Result<u64, HeadError> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::BadContentLength);
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn valid_host(h: &[u8]) -> bool {
    !h.iter().any(|b| {
        matches!(b, b' ' | b'\t' | b'/' | b'\\' | b'@' | b'?' | b'#') || b.is_ascii_control()
    })
}
