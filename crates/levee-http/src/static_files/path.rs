//! Turns a raw, percent-encoded request path into segments that are safe to
//! join onto the static root. No filesystem access happens here.
//!
//! The path is decoded exactly once, then split on `/`, so an encoded slash
//! (`%2F`) is an ordinary separator and an encoded dot (`%2E`) an ordinary dot:
//! every check runs on the decoded form, which is the form the filesystem sees.
//! `.` segments and empty segments (`//`) are dropped; `..` removes the segment
//! before it, and a `..` with nothing left to remove is rejected rather than
//! clamped, because no honest client produces it.

use std::fmt::Write as _;

/// Why a request path cannot name a file under the root. All map to 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("request path does not start with '/'")]
    NotAbsolute,
    #[error("malformed percent-escape in request path")]
    BadEscape,
    #[error("NUL byte in request path")]
    Nul,
    #[error("backslash in request path")]
    Backslash,
    #[error("request path climbs above the root")]
    AboveRoot,
}

/// A decoded, normalised request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanPath {
    /// Decoded segments: never empty, never `.` or `..`, never containing `/`,
    /// `\` or NUL. Not necessarily UTF-8 (Unix file names are bytes).
    pub segments: Vec<Vec<u8>>,
    /// The path names a directory: it ended in `/`, `/.` or `/..`.
    pub trailing_slash: bool,
}

impl CleanPath {
    /// Parses and normalises a raw request path (without its query).
    pub fn parse(raw: &[u8]) -> Result<Self, PathError> {
        if raw.first() != Some(&b'/') {
            return Err(PathError::NotAbsolute);
        }
        let decoded = percent_decode(raw)?;
        if decoded.contains(&0) {
            return Err(PathError::Nul);
        }
        // Backslash is a legal Unix file-name byte, but it is a separator to
        // Windows tools and to some caches in front of us; refusing it closes
        // `..\` tricks for everyone downstream.
        if decoded.contains(&b'\\') {
            return Err(PathError::Backslash);
        }
        let mut segments: Vec<Vec<u8>> = Vec::new();
        let mut trailing_slash = false;
        // `decoded` starts with '/', so the first piece is always empty.
        for piece in decoded.split(|&b| b == b'/').skip(1) {
            trailing_slash = true;
            match piece {
                b"" | b"." => {}
                b".." => {
                    segments.pop().ok_or(PathError::AboveRoot)?;
                }
                name => {
                    segments.push(name.to_vec());
                    trailing_slash = false;
                }
            }
        }
        Ok(Self {
            segments,
            trailing_slash,
        })
    }

    /// The canonical, percent-encoded form of this path with a trailing `/`,
    /// for a `Location` field. Slashes are merged, so it can never start with
    /// `//` (which a browser would read as another host).
    pub fn directory_location(&self) -> String {
        let mut out = String::from("/");
        for segment in &self.segments {
            for &b in segment {
                if is_path_safe(b) {
                    out.push(char::from(b));
                } else {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "%{b:02X}");
                }
            }
            out.push('/');
        }
        out
    }
}

/// RFC 3986 `pchar` minus `%`, plus nothing that needs quoting in a header.
fn is_path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let [hi, lo, after @ ..] = tail else {
                return Err(PathError::BadEscape);
            };
            let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo)) else {
                return Err(PathError::BadEscape);
            };
            out.push(hi << 4 | lo);
            rest = after;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
