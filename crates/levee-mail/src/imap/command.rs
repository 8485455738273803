//! The pre-login IMAP command parser.
//!
//! Spacing is liberal where Dovecot and nginx are: one or more spaces
//! between the command name and its arguments, between arguments (Python's
//! imaplib writes `a LOGIN alice  {7}` for an empty argument before a
//! literal), inside an `ID` list, and before the CRLF. The tag is followed
//! by exactly one space, as Dovecot requires.
//!
//! Literals are strict. A synchronizing literal `{n}` stops the parser with
//! [`Next::Continue`]: the driver sends a continuation and parses again with
//! `acked` past it. A non-synchronizing literal `{n+}` (LITERAL+) is simply
//! waited for. Sizes above `max_literal` are refused. When a command is
//! refused, [`Refusal::discard`] says how much input belongs to it, counting
//! any non-synchronizing literal data on the rest of the command, so literal
//! bytes are never read as a new command; where that cannot be known safely
//! the connection must close.

/// Bounds on what a client may send before login. A command holds at
/// most `2 × max_line` bytes: its text, and its literals' data.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest literal accepted (credentials, ID values).
    pub max_literal: u64,
    /// Longest command text, CRLFs included, literal data not counted; all
    /// of one command's literals together are bounded by it too.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_literal: 8 * 1024,
            max_line: 64 * 1024,
        }
    }
}

/// A command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: Vec<u8>,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: Vec<u8>,
        pass: Vec<u8>,
    },
    /// `mechanism` is upper-cased; `initial` is the SASL-IR text as sent
    /// (base64, or `=` for an empty response).
    Authenticate {
        mechanism: Vec<u8>,
        initial: Option<Vec<u8>>,
    },
    /// Field/value pairs; `ID NIL` gives none.
    Id(IdParams),
}

/// `ID` field/value pairs (a value may be NIL).
pub type IdParams = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// More input is needed.
    Incomplete,
    /// A synchronizing literal starts at `at`: send `+ …` and parse again with `acked = at`.
    Continue { at: usize },
    /// A command and the bytes it took.
    Command(Tagged, usize),
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    #[error("invalid tag")]
    BadTag,
    #[error("syntax error")]
    Syntax,
    #[error("unknown or unavailable command {}", String::from_utf8_lossy(.0))]
    UnknownCommand(Vec<u8>),
    #[error("literal too large")]
    LiteralTooLarge,
    #[error("command too long")]
    TooLong,
}

/// What to do with the input of a refused command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Drop this many bytes; what follows is the next command.
    Bytes(usize),
    /// The end of the command has not arrived: read more, then parse again.
    NeedMore,
    /// The command's extent cannot be known safely: answer, then close.
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The tag, when one could be read (else answer with `*`).
    pub tag: Option<Vec<u8>>,
    pub error: ImapError,
    pub discard: Discard,
}

/// Parses one command from `buf`. `acked` is the offset up to which
/// synchronizing literals have been given a continuation (0 at first).
pub fn parse(buf: &[u8], acked: usize, limits: &Limits) -> Result<Next, Refusal> {
    let mut cur = Cursor {
        buf,
        pos: 0,
        acked,
        limits,
        literal_data: 0,
        literal_total: 0,
    };
    let tag = match cur.tag() {
        Ok(tag) => tag,
        Err(stop) => return cur.finish(stop, None),
    };
    match command(&mut cur) {
        Ok(command) => Ok(Next::Command(Tagged { tag, command }, cur.pos)),
        Err(stop) => cur.finish(stop, Some(tag)),
    }
}

/// Why the cursor stopped.
enum Stop {
    Incomplete,
    Continue(usize),
    Bad(ImapError),
}

type Step<T> = Result<T, Stop>;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    acked: usize,
    limits: &'a Limits,
    /// Bytes of `buf` that are literal data (a literal still arriving
    /// included): not counted against `max_line` as text.
    literal_data: usize,
    /// Declared sizes of the command's literals so far.
    literal_total: u64,
}

fn command(cur: &mut Cursor<'_>) -> Step<Command> {
    cur.expect(b' ')?;
    let name = cur.atom()?.to_ascii_uppercase();
    let command = match name.as_slice() {
        b"CAPABILITY" => Command::Capability,
        b"NOOP" => Command::Noop,
        b"LOGOUT" => Command::Logout,
        b"STARTTLS" => Command::StartTls,
        b"LOGIN" => {
            cur.sp()?;
            let user = cur.astring()?;
            cur.sp()?;
            let pass = cur.astring()?;
            Command::Login { user, pass }
        }
        b"AUTHENTICATE" => {
            cur.sp()?;
            let mechanism = cur.atom()?.to_ascii_uppercase();
            let initial = match cur.spaces()? {
                0 => None,
                _ if cur.peek()? == b'\r' => None,
                _ => Some(cur.base64()?),
            };
            Command::Authenticate { mechanism, initial }
        }
        b"ID" => {
            cur.sp()?;
            Command::Id(cur.id_params()?)
        }
        _ => return Err(Stop::Bad(ImapError::UnknownCommand(name))),
    };
    cur.spaces()?;
    cur.crlf()?;
    Ok(command)
}

fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

impl Cursor<'_> {
    fn peek(&self) -> Step<u8> {
        self.buf.get(self.pos).copied().ok_or(Stop::Incomplete)
    }

    fn expect(&mut self, b: u8) -> Step<()> {
        if self.peek()? != b {
            return Err(Stop::Bad(ImapError::Syntax));
        }
        self.pos += 1;
        Ok(())
    }

    /// Skips spaces; how many there were. Incomplete at the end of the
    /// input, since more spaces may follow.
    fn spaces(&mut self) -> Step<usize> {
        let start = self.pos;
        while self.peek()? == b' ' {
            self.pos += 1;
        }
        Ok(self.pos - start)
    }

    /// One or more spaces: what separates arguments.
    fn sp(&mut self) -> Step<()> {
        if self.spaces()? == 0 {
            return Err(Stop::Bad(ImapError::Syntax));
        }
        Ok(())
    }

    fn crlf(&mut self) -> Step<()> {
        self.expect(b'\r')?;
        self.expect(b'\n')
    }

    /// One or more bytes accepted by `ok`; the run must be followed by something.
    fn run(&mut self, ok: impl Fn(u8) -> bool) -> Step<&[u8]> {
        let start = self.pos;
        while ok(self.peek()?) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(Stop::Bad(ImapError::Syntax));
        }
        Ok(&self.buf[start..self.pos])
    }

    fn tag(&mut self) -> Step<Vec<u8>> {
        match self.run(|b| is_astring_char(b) && b != b'+') {
            Ok(tag) => Ok(tag.to_vec()),
            Err(Stop::Bad(_)) => Err(Stop::Bad(ImapError::BadTag)),
            Err(other) => Err(other),
        }
    }

    fn atom(&mut self) -> Step<&[u8]> {
        self.run(is_atom_char)
    }

    fn base64(&mut self) -> Step<Vec<u8>> {
        self.run(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            .map(<[u8]>::to_vec)
    }

    fn astring(&mut self) -> Step<Vec<u8>> {
        match self.peek()? {
            b'"' | b'{' => self.string(),
            _ => self.run(is_astring_char).map(<[u8]>::to_vec),
        }
    }

    fn string(&mut self) -> Step<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => Err(Stop::Bad(ImapError::Syntax)),
        }
    }

    fn nstring(&mut self) -> Step<Option<Vec<u8>>> {
        if matches!(self.peek()?, b'"' | b'{') {
            return self.string().map(Some);
        }
        let atom = self.atom()?;
        if atom.eq_ignore_ascii_case(b"NIL") {
            Ok(None)
        } else {
            Err(Stop::Bad(ImapError::Syntax))
        }
    }

    fn quoted(&mut self) -> Step<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let b = self.peek()?;
                    if b != b'"' && b != b'\\' {
                        return Err(Stop::Bad(ImapError::Syntax));
                    }
                    out.push(b);
                }
                b'\r' | b'\n' | 0 => return Err(Stop::Bad(ImapError::Syntax)),
                b => out.push(b),
            }
            self.pos += 1;
            if out.len() as u64 > self.limits.max_literal {
                return Err(Stop::Bad(ImapError::LiteralTooLarge));
            }
        }
    }

    fn literal(&mut self) -> Step<Vec<u8>> {
        self.expect(b'{')?;
        let digits = self.run(|b| b.is_ascii_digit())?;
        if digits.len() > 10 {
            return Err(Stop::Bad(ImapError::LiteralTooLarge));
        }
        let size = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let synchronizing = self.peek()? != b'+';
        if !synchronizing {
            self.pos += 1;
        }
        self.expect(b'}')?;
        self.literal_total += size;
        if size > self.limits.max_literal || self.literal_total > self.limits.max_line as u64 {
            return Err(Stop::Bad(ImapError::LiteralTooLarge));
        }
        self.crlf()?;
        let start = self.pos;
        let end = start + size as usize;
        if self.buf.len() < end {
            self.literal_data += self.buf.len() - start;
            if synchronizing && start > self.acked {
                return Err(Stop::Continue(start));
            }
            return Err(Stop::Incomplete);
        }
        self.literal_data += size as usize;
        self.pos = end;
        Ok(self.buf[start..end].to_vec())
    }

    /// `NIL` or `(field value field value …)`, at most 30 pairs (RFC 2971).
    /// Spaces may pad the list inside its parentheses, as Dovecot allows.
    fn id_params(&mut self) -> Step<IdParams> {
        if self.peek()? != b'(' {
            return self.nstring().and_then(|v| match v {
                None => Ok(Vec::new()),
                Some(_) => Err(Stop::Bad(ImapError::Syntax)),
            });
        }
        self.pos += 1;
        let mut pairs = Vec::new();
        self.spaces()?;
        if self.peek()? == b')' {
            self.pos += 1;
            return Ok(pairs);
        }
        loop {
            let field = self.string()?;
            self.sp()?;
            let value = self.nstring()?;
            pairs.push((field, value));
            if pairs.len() > 30 {
                return Err(Stop::Bad(ImapError::Syntax));
            }
            let spaced = self.spaces()? > 0;
            match self.peek()? {
                b')' => {
                    self.pos += 1;
                    return Ok(pairs);
                }
                _ if spaced => {}
                _ => return Err(Stop::Bad(ImapError::Syntax)),
            }
        }
    }

    fn finish(&self, stop: Stop, tag: Option<Vec<u8>>) -> Result<Next, Refusal> {
        match stop {
            Stop::Incomplete if self.buf.len() - self.literal_data > self.limits.max_line => {
                Err(Refusal {
                    tag,
                    error: ImapError::TooLong,
                    discard: Discard::Close,
                })
            }
            Stop::Incomplete => Ok(Next::Incomplete),
            Stop::Continue(at) => Ok(Next::Continue { at }),
            Stop::Bad(error) => {
                let discard = match error {
                    // The literal's data may follow whatever levee answers.
                    ImapError::LiteralTooLarge => self.discard_literal_too_large(),
                    _ => discard_from(self.buf, self.pos, self.limits),
                };
                Err(Refusal {
                    tag,
                    error,
                    discard,
                })
            }
        }
    }

    /// A synchronizing literal that is too large ends the command: the
    /// client sends its data only after a continuation, which it never gets.
    fn discard_literal_too_large(&self) -> Discard {
        let open = self.buf[..self.pos.min(self.buf.len())]
            .iter()
            .rposition(|&b| b == b'{')
            .unwrap_or(0);
        let rest = &self.buf[open..];
        let Some(close) = rest.iter().position(|&b| b == b'}') else {
            return Discard::Close;
        };
        let synchronizing = close == 0 || rest[close - 1] != b'+';
        if !synchronizing {
            return Discard::Close;
        }
        match rest.get(close + 1..close + 3) {
            Some(b"\r\n") => Discard::Bytes(open + close + 3),
            Some(_) => Discard::Close,
            None => Discard::NeedMore,
        }
    }
}

/// How much of a refused command to drop, starting the search at `from`.
/// The same bounds hold as for a command: text up to `max_line`, each
/// literal up to `max_literal`, all literals together up to `max_line`.
fn discard_from(buf: &[u8], from: usize, limits: &Limits) -> Discard {
    let mut i = from.min(buf.len());
    let mut literals = 0u64;
    loop {
        let Some(lf) = buf[i..].iter().position(|&b| b == b'\n') else {
            let text = buf.len() as u64 - literals.min(buf.len() as u64);
            return if text > limits.max_line as u64 {
                Discard::Close
            } else {
                Discard::NeedMore
            };
        };
        let line_end = i + lf + 1;
        let line = &buf[..line_end - 1];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match trailing_literal(line) {
            // No literal, or a synchronizing one the client will not send
            // without a continuation: the command ends here.
            None | Some((_, true)) => return Discard::Bytes(line_end),
            Some((size, false)) => {
                literals += size;
                if size > limits.max_literal || literals > limits.max_line as u64 {
                    return Discard::Close;
                }
                i = line_end + size as usize;
                if i > buf.len() {
                    return Discard::NeedMore;
                }
            }
        }
    }
}

/// `{n}` or `{n+}` at the end of a line: (size, synchronizing).
fn trailing_literal(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let spec = &inner[open + 1..];
    let (digits, synchronizing) = match spec.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (spec, true),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some((size, synchronizing))
}
