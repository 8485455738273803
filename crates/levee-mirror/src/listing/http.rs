//! HTTP directory listings: nginx `autoindex`, Apache `mod_autoindex`
//! (table or preformatted), lighttpd. Each link to a child of the listed
//! directory is an entry; the text after it on the same line gives the
//! modification time and the size when the server writes them:
//!
//! ```text
//! <a href="image.iso">image.iso</a>        06-Dec-2026 23:00     12345678
//! <tr><td><a href="image.iso">image.iso</a></td><td>2026-12-06 23:00 </td><td> 12M</td></tr>
//! ```
//!
//! nginx gives exact sizes (its default); Apache rounds them (`1.2M`), so
//! those come out as [`Size::About`] and the scanner confirms a match with
//! a HEAD request. Times are taken as UTC (nginx's default; Apache writes
//! local time, which `mtime_tolerance` absorbs).

use super::{Entry, Kind, Lines, Size, civil, month, number};

#[derive(Debug, Default)]
pub struct Parser {
    lines: Lines,
}

impl Parser {
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Entry>) {
        self.lines.push(bytes, |l| line(l, out));
    }

    pub fn finish(&mut self, out: &mut Vec<Entry>) {
        self.lines.finish(|l| line(l, out));
    }
}

/// The entries of one line (one per link to a child).
pub fn line(l: &[u8], out: &mut Vec<Entry>) {
    let mut rest = l;
    while let Some(at) = find_ci(rest, b"<a ") {
        let tag = &rest[at..];
        let tail_start = find_ci(tag, b"</a>").map_or(tag.len(), |e| e + 4);
        let href = attribute(&tag[..tail_start], b"href");
        rest = &tag[tail_start..];
        let Some(href) = href else { continue };
        let Some((path, kind)) = child(&href) else {
            continue;
        };
        let until = find_ci(rest, b"<a ").unwrap_or(rest.len());
        let text = strip_tags(&rest[..until]);
        let (mtime, size) = facts(&text);
        out.push(Entry {
            path,
            kind,
            size: if kind == Kind::Dir {
                Size::Unknown
            } else {
                size
            },
            mtime,
        });
    }
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// The value of `name="..."` (or single-quoted) inside a tag.
fn attribute(tag: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let end = tag.iter().position(|&b| b == b'>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let mut from = 0;
    while let Some(at) = find_ci(&tag[from..], name) {
        let after = &tag[from + at + name.len()..];
        let after = after.strip_prefix(b"=").map(|a| {
            let q = a.first().copied();
            (q, a)
        });
        if let Some((Some(q @ (b'"' | b'\'')), a)) = after {
            let value = &a[1..];
            let close = value.iter().position(|&b| b == q)?;
            return Some(entities(&value[..close]));
        }
        from += at + name.len();
    }
    None
}

/// `&amp;` `&lt;` `&gt;` `&quot;` `&#39;` `&#NN;`, the ones listings use.
fn entities(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&'
            && let Some(len) = s[i..].iter().take(8).position(|&b| b == b';')
        {
            let name = &s[i + 1..i + len];
            let ch = match name {
                b"amp" => Some(b'&'),
                b"lt" => Some(b'<'),
                b"gt" => Some(b'>'),
                b"quot" => Some(b'"'),
                b"apos" => Some(b'\''),
                [b'#', digits @ ..] => number(digits).and_then(|n| u8::try_from(n).ok()),
                _ => None,
            };
            if let Some(c) = ch {
                out.push(c);
                i += len + 1;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// A link to a direct child of the listed directory: its decoded name and
/// whether it is a directory. Parent, sort, absolute and foreign links are not.
fn child(href: &[u8]) -> Option<(Vec<u8>, Kind)> {
    let href = href.strip_prefix(b"./").unwrap_or(href);
    if href.is_empty()
        || matches!(href[0], b'?' | b'/' | b'#')
        || href.windows(3).any(|w| w == b"://")
        || href.contains(&b'?')
    {
        return None;
    }
    let decoded = percent_decode(href)?;
    let (name, kind) = match decoded.strip_suffix(b"/") {
        Some(n) => (n.to_vec(), Kind::Dir),
        None => (decoded, Kind::File),
    };
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return None;
    }
    Some((name, kind))
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let v = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())?;
            out.push(v);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

fn strip_tags(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut inside = false;
    for &b in s {
        match b {
            b'<' => {
                inside = true;
                out.push(b' ');
            }
            b'>' => inside = false,
            _ if !inside => out.push(b),
            _ => {}
        }
    }
    entities(&out)
}

/// The modification time and size in the text after a link.
fn facts(text: &[u8]) -> (Option<i64>, Size) {
    let tokens: Vec<&[u8]> = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    let mut mtime = None;
    let mut size = Size::Unknown;
    let mut i = 0;
    while i < tokens.len() {
        if mtime.is_none()
            && let Some(day) = date(tokens[i])
        {
            let (h, m, s) = tokens
                .get(i + 1)
                .and_then(|t| clock(t))
                .unwrap_or((0, 0, 0));
            mtime = civil(day.0, day.1, day.2, h, m, s);
            i += 2;
            continue;
        }
        if mtime.is_some() && size == Size::Unknown {
            size = amount(tokens[i]);
        }
        i += 1;
    }
    (mtime, size)
}

/// `06-Dec-2026`, `2026-12-06` or `2026-Dec-06`.
fn date(t: &[u8]) -> Option<(i64, u32, u32)> {
    let parts: Vec<&[u8]> = t.split(|&b| b == b'-').collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let n = |x: &[u8]| number(x);
    let (y, mo, d) = if a.len() == 4 {
        (n(a)?, month(b).map(u64::from).or_else(|| n(b))?, n(c)?)
    } else {
        (n(c)?, u64::from(month(b)?), n(a)?)
    };
    Some((
        i64::try_from(y).ok()?,
        u32::try_from(mo).ok()?,
        u32::try_from(d).ok()?,
    ))
}

fn clock(t: &[u8]) -> Option<(u32, u32, u32)> {
    let parts: Vec<u32> = t
        .split(|&b| b == b':')
        .map(|p| number(p).and_then(|n| u32::try_from(n).ok()))
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m] => Some((*h, *m, 0)),
        [h, m, s] => Some((*h, *m, *s)),
        _ => None,
    }
}

/// `12345`, `12K`, `1.2M`, `3.5 GiB`-style suffixes, `-`.
fn amount(t: &[u8]) -> Size {
    let digits_end = t
        .iter()
        .position(|b| !b.is_ascii_digit() && *b != b'.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Size::Unknown;
    }
    let scale: u64 = match unit.first().map(u8::to_ascii_uppercase) {
        None => return number(num).map_or(Size::Unknown, Size::Exact),
        Some(b'K') => 1 << 10,
        Some(b'M') => 1 << 20,
        Some(b'G') => 1 << 30,
        Some(b'T') => 1 << 40,
        Some(b'B') if unit.len() == 1 => return number(num).map_or(Size::Unknown, Size::Exact),
        _ => return Size::Unknown,
    };
    let (int, frac) = match num.iter().position(|&b| b == b'.') {
        Some(at) => (&num[..at], &num[at + 1..]),
        None => (num, &b""[..]),
    };
    let Some(whole) = number(int) else {
        return Size::Unknown;
    };
    let tenths = frac
        .first()
        .map_or(0, |d| u64::from(d.saturating_sub(b'0')));
    let value = whole
        .saturating_mul(scale)
        .saturating_add(tenths * scale / 10);
    // A rounded figure is off by up to one unit of its last digit.
    let slack = if frac.is_empty() {
        scale
    } else {
        scale / 10 + 1
    };
    Size::About { value, slack }
}
