//! The one normalisation of a request path, done once per request when its
//! head is parsed (HTTP/1 and HTTP/2 alike, `h1::parse_request`), before
//! any decision. No I/O. Policy (docs/http1.md, "Paths"):
//!
//! - two forms come out of one path: the **matched** path, which routing,
//!   protections, rate-limit keys and static files read, and the
//!   **forwarded** path, which the upstream is sent by default;
//! - both resolve `.` and `..` segments (a `..` above the root is refused)
//!   and merge repeated slashes, as nginx does for `location`;
//! - the forwarded path decodes only unreserved characters (`%61` is `a`)
//!   and writes other escapes with upper-case hex; an encoded slash stays
//!   `%2F`, and `;` path parameters stay;
//! - the matched path is fully decoded, `%2F` included (so `/admin%2f`
//!   matches `/admin/`), and drops each segment's `;` parameters (the
//!   servlet convention), so `/admin;x=1/` matches `/admin/`;
//! - a segment that becomes `.` or `..` only once decoded from `%2F` or
//!   stripped of its parameters (`..;x`, `a%2F..`) is refused: backends
//!   disagree on it, and a level climbed in one form but not the other
//!   would let the two forms name different places;
//! - refused as well: a malformed escape, an encoded or raw control byte
//!   (NUL included), a backslash (raw or `%5C`), a raw `#`, and overlong
//!   UTF-8 (`%C0%AE` for `.`); other bytes pass as they are;
//! - case is kept: routing is case-sensitive, as nginx's.
//!
//! Cost: a path that is already normal (no `%`, `;`, `\`, `#`, byte over
//! 0x7F, `//` or `/.`) is scanned once and nothing is allocated; only a
//! path that changes costs the two new forms.

/// Why a path is refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with `/`")]
    NotAbsolute,
    #[error("malformed percent-escape")]
    BadEscape,
    #[error("NUL in the path")]
    Nul,
    #[error("control byte in the path")]
    Control,
    #[error("backslash in the path")]
    Backslash,
    #[error("fragment in the request target")]
    Fragment,
    #[error("`..` above the root")]
    AboveRoot,
    #[error("overlong UTF-8 in the path")]
    Overlong,
    #[error("dot segment hidden by an encoded slash or a path parameter")]
    HiddenDot,
}

/// A path that normalisation changed: both forms, each kept only because
/// it differs from what the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normal {
    /// Decoded, dot segments resolved, slashes merged, `;` parameters dropped.
    pub matched: Box<[u8]>,
    /// The forwarded path with the request's `?query`; `None` when it is
    /// the client's own (or the route forwards the original).
    pub forward: Option<Box<[u8]>>,
}

/// Normalises `path` (origin form, without the query; an empty one is `/`).
/// `query` is the query with its `?`, if any, appended to the forwarded
/// form. `None`: the path is already normal.
pub fn normalise(path: &[u8], query: &[u8]) -> Result<Option<Box<Normal>>, PathError> {
    match path.first() {
        None => {}
        Some(b'/') if is_plain(path) => return Ok(None),
        Some(b'/') => {}
        Some(b'#') => return Err(PathError::Fragment),
        Some(_) => return Err(PathError::NotAbsolute),
    }
    let forward = forward_path(path)?;
    let matched = matched_path(&forward)?;
    let forward = (forward != path).then(|| {
        let mut f = forward;
        f.extend_from_slice(query);
        f.into_boxed_slice()
    });
    if forward.is_none() && matched == path {
        return Ok(None);
    }
    Ok(Some(Box::new(Normal {
        matched: matched.into_boxed_slice(),
        forward,
    })))
}

/// The fast check: nothing in `path` can change or be refused.
fn is_plain(path: &[u8]) -> bool {
    let mut slash = false;
    for &b in path {
        match b {
            b'%' | b';' | b'\\' | b'#' | 0x80.. | ..=b' ' | 0x7F => return false,
            b'/' | b'.' if slash => return false,
            _ => {}
        }
        slash = b == b'/';
    }
    true
}

/// `b` needs no escape in a URI (RFC 3986 §2.3).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The value of one hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte a `%XX` at `s[i]` stands for.
fn escape_at(s: &[u8], i: usize) -> Result<u8, PathError> {
    match (
        s.get(i + 1).copied().and_then(hex),
        s.get(i + 2).copied().and_then(hex),
    ) {
        (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
        _ => Err(PathError::BadEscape),
    }
}

/// The forwarded form: unreserved characters decoded, other escapes in
/// upper case, dot segments resolved, empty segments merged.
fn forward_path(path: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(path.len() + 1);
    out.push(b'/');
    // Where each kept segment starts in `out`, for `..`.
    let mut starts: Vec<usize> = Vec::new();
    let mut segment = Vec::new();
    let rest = path.strip_prefix(b"/").unwrap_or(path);
    let mut pieces = rest.split(|&b| b == b'/').peekable();
    while let Some(raw) = pieces.next() {
        let last = pieces.peek().is_none();
        segment.clear();
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            match b {
                b'%' => {
                    let d = escape_at(raw, i)?;
                    if unreserved(d) {
                        segment.push(d);
                    } else {
                        segment.push(b'%');
                        segment.push(raw[i + 1].to_ascii_uppercase());
                        segment.push(raw[i + 2].to_ascii_uppercase());
                    }
                    i += 3;
                    continue;
                }
                b'#' => return Err(PathError::Fragment),
                b'\\' => return Err(PathError::Backslash),
                0 => return Err(PathError::Nul),
                b if b.is_ascii_control() => return Err(PathError::Control),
                _ => segment.push(b),
            }
            i += 1;
        }
        match segment.as_slice() {
            b"" => continue,
            b"." => {}
            b".." => {
                let start = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(start);
            }
            // A name is followed by `/` unless it ends the path, so a path
            // ending in `/` or in a dot segment (`/a/.`) names a directory.
            name => {
                starts.push(out.len());
                out.extend_from_slice(name);
                if !last {
                    out.push(b'/');
                }
            }
        }
    }
    Ok(out)
}

/// The matched form of a forwarded path: each segment decoded (`%2F` too)
/// and stripped of its `;` parameters.
fn matched_path(forward: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(forward.len());
    out.push(b'/');
    let body = &forward[1..];
    let ends_in_slash = forward.len() > 1 && forward.last() == Some(&b'/');
    let mut decoded = Vec::new();
    let mut segments = body
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .peekable();
    let mut trailing = ends_in_slash;
    while let Some(segment) = segments.next() {
        // Parameters start at a raw `;` (not `%3B`), and are checked too:
        // they are forwarded.
        decoded.clear();
        let mut params = None;
        let mut i = 0;
        while i < segment.len() {
            match segment[i] {
                b'%' => {
                    decoded.push(escape_at(segment, i)?);
                    i += 3;
                    continue;
                }
                b';' if params.is_none() => params = Some(decoded.len()),
                _ => {}
            }
            decoded.push(segment[i]);
            i += 1;
        }
        check_bytes(&decoded)?;
        if let Some(p) = params {
            decoded.truncate(p);
        }
        let mut last_empty = decoded.is_empty();
        for piece in decoded.split(|&b| b == b'/') {
            last_empty = piece.is_empty();
            match piece {
                b"" => {}
                b"." | b".." => return Err(PathError::HiddenDot),
                name => {
                    if out.last() != Some(&b'/') {
                        out.push(b'/');
                    }
                    out.extend_from_slice(name);
                }
            }
        }
        if segments.peek().is_none() && last_empty {
            trailing = true;
        }
    }
    if trailing && out.last() != Some(&b'/') {
        out.push(b'/');
    }
    Ok(out)
}

/// Refuses decoded bytes no backend should be handed.
fn check_bytes(decoded: &[u8]) -> Result<(), PathError> {
    for (i, &b) in decoded.iter().enumerate() {
        match b {
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            b if b.is_ascii_control() => return Err(PathError::Control),
            // Lead bytes of 2-byte forms of ASCII.
            0xC0 | 0xC1 => return Err(PathError::Overlong),
            0xE0 if matches!(decoded.get(i + 1), Some(0x80..=0x9F)) => {
                return Err(PathError::Overlong);
            }
            0xF0 if matches!(decoded.get(i + 1), Some(0x80..=0x8F)) => {
                return Err(PathError::Overlong);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
