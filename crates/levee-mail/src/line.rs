//! CRLF-terminated lines with a length limit, as POP3 and SMTP use them.

/// Why a line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line too long")]
    TooLong,
    #[error("bare LF or CR in line")]
    BareLineBreak,
    #[error("NUL in line")]
    Nul,
}

/// The next line (without its CRLF) and the bytes it took, if complete.
/// `max` bounds the line including CRLF.
pub fn next_line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, LineError> {
    let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() >= max {
            return Err(LineError::TooLong);
        }
        return Ok(None);
    };
    if lf + 1 > max {
        return Err(LineError::TooLong);
    }
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(LineError::BareLineBreak);
    }
    let line = &buf[..lf - 1];
    if line.contains(&b'\r') {
        return Err(LineError::BareLineBreak);
    }
    if line.contains(&0) {
        return Err(LineError::Nul);
    }
    Ok(Some((line, lf + 1)))
}

/// Splits `line` at the first space: (verb, rest).
pub fn verb(line: &[u8]) -> (&[u8], Option<&[u8]>) {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(next_line(b"ab\r\ncd", 10), Ok(Some((&b"ab"[..], 4))));
        assert_eq!(next_line(b"ab\r", 10), Ok(None));
        assert_eq!(next_line(b"ab\ncd", 10), Err(LineError::BareLineBreak));
        assert_eq!(next_line(b"a\rb\r\n", 10), Err(LineError::BareLineBreak));
        assert_eq!(next_line(b"a\0b\r\n", 10), Err(LineError::Nul));
        assert_eq!(next_line(b"0123456789", 10), Err(LineError::TooLong));
        assert_eq!(next_line(b"012345678\r\n", 10), Err(LineError::TooLong));
        assert_eq!(
            next_line(b"01234567\r\n", 10),
            Ok(Some((&b"01234567"[..], 10)))
        );
    }
}
