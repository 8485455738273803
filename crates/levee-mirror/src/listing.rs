//! What a mirror says it carries: parsers for `rsync --list-only` output
//! ([`rsync`]) and HTTP directory listings (nginx autoindex, Apache,
//! lighttpd; [`http`]). They do no I/O: bytes go in as they arrive, in any
//! split, and entries come out.

pub mod http;
pub mod rsync;

/// How big a listing says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Exact(u64),
    /// A rounded figure (`1.2M`): the copy is somewhere in `value ± slack`.
    About {
        value: u64,
        slack: u64,
    },
    Unknown,
}

impl Size {
    /// Whether a file of `size` bytes could be the one listed.
    pub fn admits(self, size: u64) -> bool {
        match self {
            Size::Exact(n) => n == size,
            Size::About { value, slack } => value.abs_diff(size) <= slack,
            Size::Unknown => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the listed directory, decoded, without a trailing `/`.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub size: Size,
    /// Seconds since the Unix epoch (UTC), when the listing gives it.
    pub mtime: Option<i64>,
}

/// Longest line kept; a longer one is skipped whole, so a hostile listing
/// cannot make the buffer grow without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// Cuts a byte stream into lines (`\n`, a `\r` before it dropped).
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    /// The current line passed [`MAX_LINE`]: drop it up to its end.
    skipping: bool,
}

impl Lines {
    pub fn push(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8])) {
        while let Some(at) = bytes.iter().position(|&b| b == b'\n') {
            if !self.skipping {
                if self.buf.is_empty() {
                    line(trim_cr(&bytes[..at]));
                } else {
                    self.buf.extend_from_slice(&bytes[..at]);
                    line(trim_cr(&self.buf));
                }
            }
            self.buf.clear();
            self.skipping = false;
            bytes = &bytes[at + 1..];
        }
        if !self.skipping {
            self.buf.extend_from_slice(bytes);
            if self.buf.len() > MAX_LINE {
                self.buf = Vec::new();
                self.skipping = true;
            }
        }
    }

    /// The last line, if it had no newline.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if !self.skipping && !self.buf.is_empty() {
            line(trim_cr(&self.buf));
        }
        self.buf = Vec::new();
        self.skipping = false;
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Seconds since the epoch of a UTC civil time; `None` when out of range.
pub fn civil(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = levee_config::units::days_from_civil(year, month, day)?;
    Some(days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s))
}

/// A month's number from its English abbreviation.
pub fn month(name: &[u8]) -> Option<u32> {
    const NAMES: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = name.to_ascii_lowercase();
    NAMES.iter().position(|n| *n == lower).map(|i| i as u32 + 1)
}

/// A decimal number of at most 18 digits.
pub fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests;
