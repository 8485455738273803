//! `rsync --list-only -r` output, one entry a line:
//!
//! ```text
//! drwxr-xr-x          4,096 2026/12/06 23:00:00 .
//! -rw-r--r--     12,345,678 2026/12/06 23:00:00 releases/1.0/image.iso
//! lrwxrwxrwx             11 2026/12/06 23:00:00 latest -> releases/1.0
//! ```
//!
//! Sizes may carry digit grouping; times are in the listing process's time
//! zone (the scanner runs rsync with `TZ=UTC`); rsync writes unprintable
//! name bytes as `\#ooo` (octal). Lines that are not entries (a MOTD,
//! warnings) are skipped.

use super::{Entry, Kind, Lines, Size, civil, number};

#[derive(Debug, Default)]
pub struct Parser {
    lines: Lines,
}

impl Parser {
    /// Feeds bytes; every complete entry goes to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Entry>) {
        self.lines.push(bytes, |l| out.extend(line(l)));
    }

    /// Ends the input.
    pub fn finish(&mut self, out: &mut Vec<Entry>) {
        self.lines.finish(|l| out.extend(line(l)));
    }
}

/// One listing line, or `None` for anything else.
pub fn line(l: &[u8]) -> Option<Entry> {
    let (perms, rest) = token(l)?;
    if perms.len() != 10 {
        return None;
    }
    let kind = match perms[0] {
        b'-' => Kind::File,
        b'd' => Kind::Dir,
        b'l' => Kind::Link,
        _ => return None,
    };
    let (size, rest) = token(rest)?;
    let digits: Vec<u8> = size
        .iter()
        .copied()
        .filter(|b| *b != b',' && *b != b'.')
        .collect();
    let size = number(&digits)?;
    let (date, rest) = token(rest)?;
    let (time, rest) = token(rest)?;
    let name = rest.strip_prefix(b" ").unwrap_or(rest);
    let name = match kind {
        Kind::Link => split_arrow(name),
        _ => name,
    };
    let mtime = timestamp(date, time);
    let path = unescape(name)?;
    if path.is_empty() || path == b"." {
        return None;
    }
    Some(Entry {
        path,
        kind,
        size: Size::Exact(size),
        mtime,
    })
}

/// The next space-separated token and what follows it (the separator kept).
fn token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b' ')?;
    let s = &s[start..];
    let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn split_arrow(name: &[u8]) -> &[u8] {
    match name.windows(4).position(|w| w == b" -> ") {
        Some(at) => &name[..at],
        None => name,
    }
}

/// `2026/12/06` and `23:00:00`.
fn timestamp(date: &[u8], time: &[u8]) -> Option<i64> {
    let d: Vec<&[u8]> = date.split(|&b| b == b'/').collect();
    let t: Vec<&[u8]> = time.split(|&b| b == b':').collect();
    let [y, mo, da] = d.as_slice() else {
        return None;
    };
    let (h, mi, s) = match t.as_slice() {
        [h, m, s] => (h, m, Some(s)),
        [h, m] => (h, m, None),
        _ => return None,
    };
    let n = |x: &[u8]| number(x).and_then(|v| u32::try_from(v).ok());
    civil(
        i64::from(n(y)?),
        n(mo)?,
        n(da)?,
        n(h)?,
        n(mi)?,
        s.map_or(Some(0), |s| n(s))?,
    )
}

/// Undoes rsync's `\#ooo` escapes; a path with `..` or a NUL is refused.
fn unescape(name: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'\\'
            && name.get(i + 1) == Some(&b'#')
            && let Some(oct) = name.get(i + 2..i + 5)
            && oct.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = oct.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v).ok()?);
            i += 5;
        } else {
            out.push(name[i]);
            i += 1;
        }
    }
    let path = out.strip_suffix(b"/").unwrap_or(&out).to_vec();
    let bad = path.contains(&0)
        || path
            .split(|&b| b == b'/')
            .any(|p| p == b".." || p.is_empty());
    (!bad || path == b".").then_some(path)
}
