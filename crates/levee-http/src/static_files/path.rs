//! Turns a request's matched path into segments that are safe to join onto
//! the static root. No filesystem access happens here.
//!
//! The path was decoded and normalised once, when the head was parsed
//! (`normal.rs`): an encoded slash (`%2F`) is an ordinary separator there
//! and an encoded dot (`%2E`) an ordinary dot, so routing and the file
//! system see the same path. It is not decoded again here (a `%` is a
//! file-name byte); the checks are repeated so that this module is safe
//! on its own: `.` segments and empty segments (`//`) are dropped, `..`
//! removes the segment before it, and a `..` with nothing left to remove is
//! rejected rather than clamped, because no honest client produces it.

use std::fmt::Write as _;

/// Why a request path cannot name a file under the root. All map to 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    #[error("request path does not start with '/'")]
    NotAbsolute,
    #[error("NUL byte in request path")]
    Nul,
    #[error("backslash in request path")]
    Backslash,
    #[error("request path climbs above the root")]
    AboveRoot,
}

/// A decoded, normalised request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanPath {
    /// Decoded segments: never empty, never `.` or `..`, never containing `/`,
    /// `\` or NUL. Not necessarily UTF-8 (Unix file names are bytes).
    pub segments: Vec<Vec<u8>>,
    /// The path names a directory: it ended in `/`, `/.` or `/..`.
    pub trailing_slash: bool,
}

impl CleanPath {
    /// The file or directory this path names under `root`.
    pub(crate) fn under(&self, root: &std::path::Path) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let mut full = root.to_path_buf();
        full.extend(self.segments.iter().map(|s| std::ffi::OsStr::from_bytes(s)));
        full
    }

    /// Splits a decoded request path (without its query).
    pub(crate) fn parse(decoded: &[u8]) -> Result<Self, PathError> {
        if decoded.first() != Some(&b'/') {
            return Err(PathError::NotAbsolute);
        }
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
    pub(crate) fn directory_location(&self) -> String {
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

#[cfg(test)]
mod tests;
