//! POP3 before login (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS).

use crate::Parsed;
use crate::line::{LineError, next_line, verb};

/// Longest command line accepted by default: RFC 2449 allows 255 octets;
/// levee takes more so that bearer tokens fit in `AUTH XOAUTH2`.
pub const DEFAULT_MAX_LINE: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    User(Vec<u8>),
    /// The rest of the line: a password may contain spaces (RFC 1939).
    Pass(Vec<u8>),
    /// `AUTH` alone lists mechanisms; `initial` is the RFC 5034 initial response as sent.
    Auth {
        mechanism: Option<Vec<u8>>,
        initial: Option<Vec<u8>>,
    },
    Stls,
    Quit,
    Noop,
    /// Any other verb, upper-cased (refused before login).
    Other(Vec<u8>),
}

/// Why a line was refused. `-ERR` and, for an over-long line, close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pop3Error {
    #[error("{0}")]
    Line(#[from] LineError),
    #[error("missing argument")]
    MissingArgument,
}

/// Parses one command line. On `Err`, a line-level fault means the input
/// cannot be resynchronised: answer `-ERR` and close.
pub fn parse(buf: &[u8], max_line: usize) -> Result<Parsed<Command>, (Pop3Error, Option<usize>)> {
    let (line, used) = match next_line(buf, max_line) {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(Parsed::Incomplete),
        Err(e) => return Err((e.into(), None)),
    };
    let (name, arg) = verb(line);
    let name = name.to_ascii_uppercase();
    let need = |arg: Option<&[u8]>| match arg {
        Some(a) if !a.is_empty() => Ok(a.to_vec()),
        _ => Err((Pop3Error::MissingArgument, Some(used))),
    };
    let command = match name.as_slice() {
        b"CAPA" => Command::Capa,
        b"USER" => Command::User(need(arg)?),
        b"PASS" => Command::Pass(need(arg)?),
        b"STLS" => Command::Stls,
        b"QUIT" => Command::Quit,
        b"NOOP" => Command::Noop,
        b"AUTH" => match arg {
            None => Command::Auth {
                mechanism: None,
                initial: None,
            },
            Some(rest) => {
                let (mech, initial) = verb(rest);
                Command::Auth {
                    mechanism: Some(mech.to_ascii_uppercase()),
                    initial: initial.map(<[u8]>::to_vec),
                }
            }
        },
        _ => Command::Other(name),
    };
    Ok(Parsed::Complete(command, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &[u8]) -> Command {
        match parse(s, DEFAULT_MAX_LINE) {
            Ok(Parsed::Complete(c, n)) => {
                assert_eq!(n, s.len());
                c
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands() {
        assert_eq!(cmd(b"capa\r\n"), Command::Capa);
        assert_eq!(cmd(b"USER alice\r\n"), Command::User(b"alice".to_vec()));
        assert_eq!(cmd(b"PASS se cret\r\n"), Command::Pass(b"se cret".to_vec()));
        assert_eq!(cmd(b"STLS\r\n"), Command::Stls);
        assert_eq!(
            cmd(b"AUTH PLAIN AGEAYg==\r\n"),
            Command::Auth {
                mechanism: Some(b"PLAIN".to_vec()),
                initial: Some(b"AGEAYg==".to_vec())
            }
        );
        assert_eq!(cmd(b"RETR 1\r\n"), Command::Other(b"RETR".to_vec()));
    }

    #[test]
    fn long_tokens_fit_and_limits_hold() {
        let token = format!("AUTH XOAUTH2 {}\r\n", "A".repeat(2000));
        assert!(matches!(cmd(token.as_bytes()), Command::Auth { .. }));
        let over = format!("USER {}\r\n", "a".repeat(DEFAULT_MAX_LINE));
        assert_eq!(
            parse(over.as_bytes(), DEFAULT_MAX_LINE),
            Err((Pop3Error::Line(LineError::TooLong), None))
        );
        assert_eq!(
            parse(b"USER\r\n", 255),
            Err((Pop3Error::MissingArgument, Some(6)))
        );
    }

    #[test]
    fn every_split() {
        let input = b"USER alice\r\n";
        for split in 1..input.len() {
            assert_eq!(parse(&input[..split], 255), Ok(Parsed::Incomplete));
        }
        assert!(matches!(
            parse(input, 255),
            Ok(Parsed::Complete(Command::User(_), 12))
        ));
    }
}
