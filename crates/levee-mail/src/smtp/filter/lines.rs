//! What the filter reads in one line, without state: blanks before a verb,
//! the end of a line, a strict `BDAT` line, an EHLO keyword levee hides
//! after AUTH.

/// Bytes a backend may skip before a verb: blanks and control bytes (LF
/// ends the line instead).
pub(super) fn is_blank(b: u8) -> bool {
    (b <= b' ' && b != b'\n') || b == 0x7f
}

pub(super) fn memchr_lf(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

/// The chunk size of `BDAT n [LAST]\r\n` exactly (RFC 3030's grammar, which
/// every backend reads alike).
pub(super) fn strict_bdat(line: &[u8]) -> Option<u64> {
    let rest = line.strip_suffix(b"\r\n")?;
    let (verb, rest) = rest.split_at_checked(5)?;
    if !verb.eq_ignore_ascii_case(b"BDAT ") {
        return None;
    }
    let (digits, last) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if last.is_some_and(|l| !l.eq_ignore_ascii_case(b"LAST"))
        || digits.is_empty()
        || digits.len() > 20
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An EHLO reply line offering what levee refuses after AUTH.
pub(super) fn hidden_keyword(line: &[u8]) -> bool {
    let text = line.get(4..).unwrap_or_default();
    let word = &text[..text
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(text.len())];
    [&b"XCLIENT"[..], b"XFORWARD", b"STARTTLS"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}
