//! SMTP submission before authentication (RFC 5321, RFC 4954 AUTH, RFC 3207 STARTTLS).

use crate::Parsed;
use crate::line::{LineError, next_line, verb};

/// RFC 5321 command lines are at most 512 octets; RFC 4954 allows AUTH
/// lines (with an initial response) up to 12,288.
pub const MAX_LINE: usize = 512;
pub const MAX_AUTH_LINE: usize = 12_288;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(Vec<u8>),
    Helo(Vec<u8>),
    StartTls,
    Auth {
        mechanism: Vec<u8>,
        initial: Option<Vec<u8>>,
    },
    Rset,
    Noop,
    Quit,
    /// MAIL FROM: refused with `530 5.7.0` before authentication.
    Mail,
    /// Any other verb, upper-cased.
    Other(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    #[error("{0}")]
    Line(#[from] LineError),
    #[error("syntax error in parameters")]
    Syntax,
}

impl SmtpError {
    /// The reply for this fault.
    pub fn reply(&self) -> &'static str {
        match self {
            SmtpError::Line(LineError::TooLong) => "500 5.5.6 Line too long",
            SmtpError::Line(_) => "500 5.5.2 Syntax error",
            SmtpError::Syntax => "501 5.5.4 Syntax error in parameters",
        }
    }
}

/// Parses one command line. `Err((e, None))`: the line cannot be resynchronised (close).
pub fn parse(buf: &[u8]) -> Result<Parsed<Command>, (SmtpError, Option<usize>)> {
    // AUTH lines may be longer than other commands.
    let max = if buf.len() >= 5 && buf[..5].eq_ignore_ascii_case(b"AUTH ") {
        MAX_AUTH_LINE
    } else {
        MAX_LINE
    };
    let (line, used) = match next_line(buf, max) {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(Parsed::Incomplete),
        Err(e) => return Err((e.into(), None)),
    };
    let (name, arg) = verb(line);
    let name = name.to_ascii_uppercase();
    let syntax = (SmtpError::Syntax, Some(used));
    let command = match name.as_slice() {
        b"EHLO" | b"HELO" => {
            let domain = arg.filter(|a| !a.is_empty()).ok_or(syntax)?.to_vec();
            if name == b"EHLO" {
                Command::Ehlo(domain)
            } else {
                Command::Helo(domain)
            }
        }
        b"STARTTLS" if arg.is_none() => Command::StartTls,
        b"AUTH" => {
            let rest = arg.filter(|a| !a.is_empty()).ok_or(syntax)?;
            let (mech, initial) = verb(rest);
            Command::Auth {
                mechanism: mech.to_ascii_uppercase(),
                initial: initial.map(<[u8]>::to_vec),
            }
        }
        b"RSET" => Command::Rset,
        b"NOOP" => Command::Noop,
        b"QUIT" => Command::Quit,
        b"MAIL" => Command::Mail,
        _ => Command::Other(name),
    };
    Ok(Parsed::Complete(command, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let c = |s: &[u8]| match parse(s) {
            Ok(Parsed::Complete(c, _)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c(b"EHLO client.example\r\n"),
            Command::Ehlo(b"client.example".to_vec())
        );
        assert_eq!(c(b"helo x\r\n"), Command::Helo(b"x".to_vec()));
        assert_eq!(c(b"STARTTLS\r\n"), Command::StartTls);
        assert_eq!(
            c(b"AUTH LOGIN\r\n"),
            Command::Auth {
                mechanism: b"LOGIN".to_vec(),
                initial: None
            }
        );
        assert_eq!(c(b"MAIL FROM:<a@b>\r\n"), Command::Mail);
        assert_eq!(c(b"VRFY x\r\n"), Command::Other(b"VRFY".to_vec()));
        assert_eq!(parse(b"EHLO\r\n"), Err((SmtpError::Syntax, Some(6))));
    }

    #[test]
    fn line_limits() {
        let long = format!("NOOP {}\r\n", "x".repeat(600));
        assert_eq!(
            parse(long.as_bytes()).map_err(|e| e.0.reply()),
            Err("500 5.5.6 Line too long")
        );
        let auth = format!("AUTH PLAIN {}\r\n", "A".repeat(4000));
        assert!(matches!(
            parse(auth.as_bytes()),
            Ok(Parsed::Complete(Command::Auth { .. }, _))
        ));
    }
}
