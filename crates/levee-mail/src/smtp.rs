//! SMTP submission before authentication (RFC 5321, RFC 4954 AUTH, RFC 3207
//! STARTTLS), and the service extensions levee may offer on a backend's
//! behalf before AUTH ([`Extensions`]). After AUTH: [`filter`].

pub mod filter;

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

/// The extensions levee may advertise before AUTH when its backends offer
/// them (nginx's `smtp_capabilities`): the config's list, since
/// `smtp_capabilities` takes the same.
pub use levee_config::model::SMTP_EXTENSIONS as SAFE_EXTENSIONS;

/// What levee says before AUTH when it has neither learned nor been told.
pub const DEFAULT_EXTENSIONS: [&str; 2] = ["PIPELINING", "8BITMIME"];

/// Safe extensions, each an EHLO keyword upper-cased with its parameter
/// (only SIZE has one: the largest message, in bytes; 0 or none: no limit stated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    /// In [`SAFE_EXTENSIONS`] order.
    keywords: Vec<&'static str>,
    size: Option<u64>,
}

impl Extensions {
    /// From keyword lines as written in a config (`"SIZE 10240000"`) or an
    /// EHLO reply; anything not safe is left out. An unparsable SIZE
    /// parameter leaves SIZE out.
    pub fn from_keywords<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Extensions {
        let mut found = Extensions {
            keywords: Vec::new(),
            size: None,
        };
        for line in lines {
            let (word, param) = verb(line.trim_ascii());
            let Some(&safe) = SAFE_EXTENSIONS
                .iter()
                .find(|s| s.as_bytes().eq_ignore_ascii_case(word))
            else {
                continue;
            };
            if safe == "SIZE" {
                match param.map(|p| std::str::from_utf8(p.trim_ascii()).map(str::parse::<u64>)) {
                    None => found.size = Some(0),
                    Some(Ok(Ok(n))) => found.size = Some(n),
                    Some(_) => continue,
                }
            }
            if !found.keywords.contains(&safe) {
                found.keywords.push(safe);
            }
        }
        found
            .keywords
            .sort_by_key(|k| SAFE_EXTENSIONS.iter().position(|s| s == k));
        found
    }

    /// The safe extensions of a backend's whole EHLO reply (`250-…` lines,
    /// the first being its greeting).
    pub fn from_ehlo_reply(reply: &[u8]) -> Extensions {
        Extensions::from_keywords(
            reply
                .split(|&b| b == b'\n')
                .skip(1)
                .filter_map(|l| l.get(4..)),
        )
    }

    /// Whether `keyword` (upper case) is among them.
    pub fn offers(&self, keyword: &str) -> bool {
        self.keywords.contains(&keyword)
    }

    /// What both offer, the smaller SIZE: safe for a client of either.
    pub fn common(&self, other: &Extensions) -> Extensions {
        let size = match (self.size, other.size) {
            (Some(0), s) | (s, Some(0)) => s,
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        Extensions {
            keywords: self
                .keywords
                .iter()
                .filter(|k| other.keywords.contains(k) && (**k != "SIZE" || size.is_some()))
                .copied()
                .collect(),
            size,
        }
    }

    /// Appends `250-KEYWORD[ PARAM]\r\n` lines.
    pub fn write_ehlo_lines(&self, out: &mut Vec<u8>) {
        for k in &self.keywords {
            out.extend_from_slice(b"250-");
            out.extend_from_slice(k.as_bytes());
            if *k == "SIZE"
                && let Some(n) = self.size.filter(|&n| n > 0)
            {
                out.extend_from_slice(format!(" {n}").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_keep_only_what_is_safe_to_offer_for_a_backend() {
        let postfix = b"250-postfix.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME ADDR\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
        let p = Extensions::from_ehlo_reply(postfix);
        // What the relay after AUTH asks: does the backend take BDAT?
        assert!(p.offers("CHUNKING") && !p.offers("XCLIENT"));
        let mut out = Vec::new();
        p.write_ehlo_lines(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n"
        );
        // The greeting line is not a keyword, even when it looks like one.
        assert_eq!(
            Extensions::from_ehlo_reply(b"250-SIZE\r\n250 8BITMIME\r\n"),
            Extensions::from_keywords([&b"8BITMIME"[..]])
        );
        // Two backends: what both offer, the smaller size.
        let other = Extensions::from_keywords([&b"size 5000"[..], b"8bitmime", b"PIPELINING"]);
        let both = p.common(&other);
        let mut out = Vec::new();
        both.write_ehlo_lines(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "250-PIPELINING\r\n250-SIZE 5000\r\n250-8BITMIME\r\n"
        );
        // SIZE without a limit, and one with a broken parameter.
        let unlimited = Extensions::from_keywords([&b"SIZE"[..]]);
        assert_eq!(
            unlimited.common(&other),
            Extensions::from_keywords([&b"SIZE 5000"[..]])
        );
        assert_eq!(
            Extensions::from_keywords([&b"SIZE lots"[..]]),
            Extensions::from_keywords([])
        );
    }

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
