//! A logged-in submission session's commands, checked on their way to the
//! backend ([`Filter`]).
//!
//! levee logs the user in to the backend and, with `forward_client_address`,
//! sends XCLIENT first, so the backend trusts levee's address to say who a
//! client is (Postfix `smtpd_authorized_xclient_hosts`). Relayed raw, a
//! client's own `XCLIENT LOGIN=bob` after AUTH would be believed as well. So
//! after AUTH the relay reads the client's bytes at command boundaries:
//!
//! - `XCLIENT` and `XFORWARD` never reach the backend;
//! - `STARTTLS` neither: TLS between the client and the backend would hide
//!   every later command from levee;
//! - `AUTH` neither (RFC 4954 §4 has a second AUTH refused with 503): it
//!   would guess passwords past levee's login guard;
//! - a BDAT line not exactly `BDAT n [LAST]` neither, since backends
//!   disagree on where its chunk ends (Postfix takes a tab, Dovecot does
//!   not, and skips nothing then);
//!
//! and levee answers each of those itself, in its place among the backend's
//! replies. Everything else passes unchanged, byte for byte. The backend's
//! EHLO reply loses its XCLIENT, XFORWARD and STARTTLS lines.
//!
//! **Where a command is.** A line ends at LF, bare or not, as Postfix and
//! Dovecot read it. Its verb is the run of letters after any blanks and
//! control bytes (Postfix skips leading white space: `\tXCLIENT` is XCLIENT
//! to it); a verb that does not start within [`HEAD_MAX`] bytes is refused.
//! Message content is never read as commands: it starts only once the
//! backend answered DATA with 354, so what a client sends behind DATA waits
//! until that reply is known (RFC 2920 has DATA end a pipelined group, so a
//! conforming client waits anyway). It ends at a line of `.` and any CRs
//! after any LF, the earliest end either backend takes (Postfix ends at
//! `\n.\n` and at `.\r\r\n`). A BDAT chunk is its `n` bytes when the backend
//! offered CHUNKING (which obliges it to consume a chunk it refuses, RFC
//! 3030; Postfix and Dovecot do); without, BDAT is an ordinary command.
//!
//! **Replies in order.** Each command passed on owes one reply (a multi-line
//! reply counts at its last line). levee's answer to a refused command goes
//! out once the backend has answered every command before it; until then
//! the client's later bytes wait, as after DATA. Waiting, the filter holds
//! what the last read brought past that point (at most one read), and the
//! relay reads no more from the client. Idle, it holds nothing: its buffers
//! are allocated only while a line's start, an EHLO reply or held bytes
//! need them.
//!
//! It does no I/O: bytes go in, and out to a [`Sink`].

mod lines;

use std::mem;

use lines::{hidden_keyword, is_blank, memchr_lf, strict_bdat};

/// The farthest into a command line its verb may start.
pub const HEAD_MAX: usize = 64;
/// The longest verb this filter knows (`XFORWARD`, `STARTTLS`).
const LONGEST_VERB: usize = 8;
/// The longest BDAT line taken: `BDAT`, 20 digits, `LAST`, spaces and CRLF.
const BDAT_LINE_MAX: usize = 32;
/// The most of a line's start held before its verb is known: every line is
/// decided by then (a verb starting at 63 and the byte after its 8 letters).
const HEAD_LIMIT: usize = HEAD_MAX + LONGEST_VERB + 1;
/// The longest line of an EHLO reply this filter rewrites (RFC 5321
/// allows 512).
pub const EHLO_LINE_MAX: usize = 4096;

/// A command levee answers itself after AUTH, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Xclient,
    Xforward,
    StartTls,
    Auth,
    /// A BDAT line other than `BDAT n [LAST]` with single spaces and CRLF.
    Bdat,
    /// A line whose verb does not start within [`HEAD_MAX`] bytes.
    Unframed,
}

impl Refused {
    pub const ALL: [Refused; 6] = [
        Refused::Xclient,
        Refused::Xforward,
        Refused::StartTls,
        Refused::Auth,
        Refused::Bdat,
        Refused::Unframed,
    ];

    /// The reply levee gives the client.
    pub fn reply(self) -> &'static [u8] {
        match self {
            Refused::Xclient | Refused::Xforward => b"550 5.7.0 Command not permitted\r\n",
            Refused::StartTls => b"503 5.5.1 STARTTLS not available after AUTH\r\n",
            Refused::Auth => b"503 5.5.1 Already authenticated\r\n",
            Refused::Bdat => b"501 5.5.4 Syntax: BDAT count [LAST]\r\n",
            Refused::Unframed => b"500 5.5.2 Syntax error\r\n",
        }
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Xclient => "xclient",
            Refused::Xforward => "xforward",
            Refused::StartTls => "starttls",
            Refused::Auth => "auth",
            Refused::Bdat => "bdat",
            Refused::Unframed => "unframed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("a line of the backend's EHLO reply is longer than {EHLO_LINE_MAX} bytes")]
    EhloLineTooLong,
}

/// Where the filtered bytes go, in order.
pub trait Sink {
    /// Bytes for the backend.
    fn backend(&mut self, bytes: &[u8]);
    /// Bytes for the client: the backend's, and levee's own replies.
    fn client(&mut self, bytes: &[u8]);
    /// A command was refused (its reply follows in its turn).
    fn refused(&mut self, _what: Refused) {}
}

/// Where the client's bytes stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    /// The start of a command line (split across reads: in `head`).
    Head,
    /// The rest of a command line passed on; then `After`.
    Pass(After),
    /// The rest of a refused command line, dropped.
    Drop(Refused),
    /// Message content after DATA's 354.
    Content(Content),
    /// Bytes of a BDAT chunk still to pass.
    Chunk(u64),
}

/// What follows a command line passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Command,
    /// A BDAT chunk of this many bytes.
    Chunk(u64),
}

/// Where message content stands, looking for its end line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    LineStart,
    /// A line that so far is `.` and CRs.
    Dot,
    Text,
}

/// What the client's input waits for: the backend's replies up to and
/// including the one that tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    None,
    /// DATA's: 354 starts message content.
    Data,
    /// EHLO's, which is rewritten on its way.
    Ehlo,
    /// Every reply owed, then levee's own to this refused command.
    Reply(Refused),
}

/// How a command line is treated, from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Refuse(Refused),
    Data,
    Ehlo,
    Bdat(u64),
    Other,
}

/// The backend's side: where its current reply line stands.
#[derive(Debug, Default)]
struct Down {
    /// The line's first bytes: its code and the byte after it.
    start: [u8; 4],
    len: u8,
    /// Set while the EHLO reply is rewritten.
    ehlo: Option<Ehlo>,
}

/// An EHLO reply being rewritten: the line being read, and the last line
/// kept, held until the next shows whether it ends the reply.
#[derive(Debug, Default)]
struct Ehlo {
    line: Vec<u8>,
    kept: Vec<u8>,
    /// Lines done so far (the first is the greeting, always kept).
    lines: u32,
}

/// A logged-in submission session's filter; see the module docs.
#[derive(Debug)]
pub struct Filter {
    up: Up,
    /// A command line's start split across reads, until its verb is known.
    head: Vec<u8>,
    /// Client bytes not read through yet, while the client waits.
    held: Vec<u8>,
    /// Replies the backend owes for the commands passed on.
    owed: u32,
    wait: Wait,
    down: Down,
    /// The backend offered CHUNKING.
    chunking: bool,
    /// Commands refused so far, for the session log.
    refused: u32,
}

impl Filter {
    /// `chunking`: the backend's EHLO offered CHUNKING. `pending`: what the
    /// client sent behind its AUTH, read through before anything newer.
    pub fn new(chunking: bool, pending: Vec<u8>) -> Filter {
        Filter {
            up: Up::Head,
            head: Vec::new(),
            // An empty leftover may still hold the login stage's buffer.
            held: if pending.is_empty() {
                Vec::new()
            } else {
                pending
            },
            owed: 0,
            wait: Wait::None,
            down: Down::default(),
            chunking,
            refused: 0,
        }
    }

    /// Whether the client's input waits for the backend: the relay reads
    /// nothing more from the client until [`Filter::backend_bytes`] frees it.
    pub fn waiting(&self) -> bool {
        self.wait != Wait::None && self.up == Up::Head
    }

    /// Whether client bytes are held for [`Filter::resume`].
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Commands refused so far.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    /// Bytes read from the client. What cannot be read through while the
    /// client waits is held (the relay then reads no more); bytes given
    /// while some are held go behind them.
    pub fn client_bytes(&mut self, data: &[u8], sink: &mut impl Sink) {
        if self.waiting() || self.has_held() {
            self.held.extend_from_slice(data);
            return;
        }
        let used = self.run(data, sink);
        if used < data.len() {
            self.held.extend_from_slice(&data[used..]);
        }
    }

    /// Reads the held bytes through unless the client still waits; true if
    /// it read any.
    pub fn resume(&mut self, sink: &mut impl Sink) -> bool {
        if self.waiting() || !self.has_held() {
            return false;
        }
        let mut held = mem::take(&mut self.held);
        let used = self.run(&held, sink);
        if used < held.len() {
            held.drain(..used);
            self.held = held;
        }
        true
    }

    /// Bytes read from the backend, for the client.
    pub fn backend_bytes(&mut self, data: &[u8], sink: &mut impl Sink) -> Result<(), FilterError> {
        let mut at = 0;
        while at < data.len() {
            if self.down.len == 0
                && self.down.ehlo.is_none()
                && self.owed == 1
                && self.wait == Wait::Ehlo
            {
                self.down.ehlo = Some(Ehlo::default());
            }
            let rest = &data[at..];
            let end = memchr_lf(rest);
            let piece = &rest[..end.map_or(rest.len(), |i| i + 1)];
            let len = usize::from(self.down.len);
            let more = piece.len().min(4 - len);
            self.down.start[len..len + more].copy_from_slice(&piece[..more]);
            self.down.len += more as u8;
            match &mut self.down.ehlo {
                Some(e) => {
                    if e.line.len() + piece.len() > EHLO_LINE_MAX {
                        return Err(FilterError::EhloLineTooLong);
                    }
                    e.line.extend_from_slice(piece);
                }
                None => sink.client(piece),
            }
            at += piece.len();
            if end.is_some() {
                self.reply_line_done(sink);
            }
        }
        Ok(())
    }

    /// Reads client bytes through until they end or the client must wait;
    /// how many it took.
    fn run(&mut self, data: &[u8], sink: &mut impl Sink) -> usize {
        let mut at = 0;
        while at < data.len() && !self.waiting() {
            let rest = &data[at..];
            at += match self.up {
                Up::Head => self.line_start(rest, sink),
                Up::Pass(after) => match memchr_lf(rest) {
                    None => {
                        sink.backend(rest);
                        rest.len()
                    }
                    Some(lf) => {
                        sink.backend(&rest[..=lf]);
                        self.up = match after {
                            After::Command | After::Chunk(0) => Up::Head,
                            After::Chunk(n) => Up::Chunk(n),
                        };
                        lf + 1
                    }
                },
                Up::Drop(what) => match memchr_lf(rest) {
                    None => rest.len(),
                    Some(lf) => {
                        self.up = Up::Head;
                        if self.owed == 0 {
                            sink.client(what.reply());
                        } else {
                            self.wait = Wait::Reply(what);
                        }
                        lf + 1
                    }
                },
                Up::Content(mut content) => {
                    let (n, ended) = content.scan(rest);
                    sink.backend(&rest[..n]);
                    self.up = if ended {
                        // The message's own reply.
                        self.owed = self.owed.saturating_add(1);
                        Up::Head
                    } else {
                        Up::Content(content)
                    };
                    n
                }
                Up::Chunk(left) => {
                    let n = usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()));
                    sink.backend(&rest[..n]);
                    let left = left - n as u64;
                    self.up = if left == 0 { Up::Head } else { Up::Chunk(left) };
                    n
                }
            };
        }
        at
    }

    /// At a command line's start: decides it, or holds its start until it
    /// can. How many bytes of `rest` it took (0 when it decided from `rest`
    /// alone: the line is then read on in its new state).
    fn line_start(&mut self, rest: &[u8], sink: &mut impl Sink) -> usize {
        // Never past this line: `head` holds one line's start at most.
        let line = &rest[..memchr_lf(rest).map_or(rest.len(), |i| i + 1)];
        if self.head.is_empty() {
            if let Some(decided) = self.classify(line) {
                self.begin(decided, sink);
                return 0;
            }
            self.head.extend_from_slice(line);
            return line.len();
        }
        let take = line.len().min(HEAD_LIMIT - self.head.len());
        self.head.extend_from_slice(&line[..take]);
        let Some(decided) = self.classify(&self.head) else {
            return take;
        };
        self.begin(decided, sink);
        // The held start is the line's: read it through in the new state.
        let head = mem::take(&mut self.head);
        let used = self.run(&head, sink);
        debug_assert_eq!(used, head.len(), "a head ends at the latest with its line");
        take
    }

    /// Sets the state a decided line is read in.
    fn begin(&mut self, line: Line, sink: &mut impl Sink) {
        let after = match line {
            Line::Refuse(what) => {
                self.refused = self.refused.saturating_add(1);
                sink.refused(what);
                self.up = Up::Drop(what);
                return;
            }
            Line::Data => {
                self.wait = Wait::Data;
                After::Command
            }
            Line::Ehlo => {
                self.wait = Wait::Ehlo;
                After::Command
            }
            Line::Bdat(n) => After::Chunk(n),
            Line::Other => After::Command,
        };
        // Counted before its first byte goes: a backend may answer a line
        // too long for it before its end (Dovecot does).
        self.owed = self.owed.saturating_add(1);
        self.up = Up::Pass(after);
    }

    /// How the command line starting `p` is treated, once `p` shows it:
    /// `None` while it does not (`p` then has no LF and is shorter than
    /// [`HEAD_LIMIT`]). Depends only on the line, never on where reads split it.
    fn classify(&self, p: &[u8]) -> Option<Line> {
        let decided = self.decide(p);
        // Every line is decided within HEAD_LIMIT bytes; should one not be,
        // it is refused rather than held for ever.
        if decided.is_none() && p.len() >= HEAD_LIMIT {
            return Some(Line::Refuse(Refused::Unframed));
        }
        decided
    }

    fn decide(&self, p: &[u8]) -> Option<Line> {
        let blank = p.iter().position(|&b| !is_blank(b)).unwrap_or(p.len());
        if blank >= HEAD_MAX {
            return Some(Line::Refuse(Refused::Unframed));
        }
        let word = &p[blank..];
        let letters = word
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(word.len());
        if letters > LONGEST_VERB {
            return Some(Line::Other);
        }
        if letters == word.len() {
            return None;
        }
        let verb = &word[..letters];
        let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);
        Some(if is(b"XCLIENT") {
            Line::Refuse(Refused::Xclient)
        } else if is(b"XFORWARD") {
            Line::Refuse(Refused::Xforward)
        } else if is(b"STARTTLS") {
            Line::Refuse(Refused::StartTls)
        } else if is(b"AUTH") {
            Line::Refuse(Refused::Auth)
        } else if is(b"DATA") {
            Line::Data
        } else if is(b"EHLO") {
            Line::Ehlo
        } else if is(b"BDAT") && self.chunking {
            if blank > 0 {
                return Some(Line::Refuse(Refused::Bdat));
            }
            let Some(lf) = memchr_lf(p) else {
                return (p.len() >= BDAT_LINE_MAX).then_some(Line::Refuse(Refused::Bdat));
            };
            strict_bdat(&p[..=lf]).map_or(Line::Refuse(Refused::Bdat), Line::Bdat)
        } else {
            Line::Other
        })
    }

    /// A backend reply line ended.
    fn reply_line_done(&mut self, sink: &mut impl Sink) {
        let len = usize::from(self.down.len);
        let last = len < 4 || self.down.start[3] != b'-';
        let code = self.down.start[..len.min(3)]
            .iter()
            .try_fold(0u16, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u16::from(d - b'0'))
            })
            .filter(|_| len >= 3);
        self.down.len = 0;
        if let Some(e) = &mut self.down.ehlo {
            e.line_done(last, sink);
            if last {
                self.down.ehlo = None;
            }
        }
        if !last || self.owed == 0 {
            // Mid-reply, or a reply nobody asked for (a 421 before closing).
            return;
        }
        self.owed -= 1;
        if self.owed > 0 {
            return;
        }
        match mem::replace(&mut self.wait, Wait::None) {
            // Only once the DATA line is all through: a reply before its end
            // is to a line too long, never a 354.
            Wait::Data if code == Some(354) && self.up == Up::Head => {
                self.up = Up::Content(Content::LineStart);
            }
            Wait::Reply(what) => sink.client(what.reply()),
            _ => {}
        }
    }
}

impl Ehlo {
    /// The current line is complete: keep it (sending the one kept before)
    /// or drop it; on the last line, send what is kept, made the last.
    fn line_done(&mut self, last: bool, sink: &mut impl Sink) {
        let line = mem::take(&mut self.line);
        let keep = self.lines == 0 || !hidden_keyword(&line);
        self.lines = self.lines.saturating_add(1);
        if keep {
            if !self.kept.is_empty() {
                sink.client(&self.kept);
            }
            self.kept = line;
        }
        if last {
            if !keep && let Some(sep @ b'-') = self.kept.get_mut(3) {
                *sep = b' ';
            }
            sink.client(&self.kept);
        }
    }
}

impl Content {
    /// How much of `data` is message content, through its end line if that
    /// is in `data`; true when it ended.
    fn scan(&mut self, data: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < data.len() {
            match *self {
                Content::Text => match memchr_lf(&data[i..]) {
                    None => return (data.len(), false),
                    Some(lf) => {
                        i += lf + 1;
                        *self = Content::LineStart;
                    }
                },
                Content::LineStart => {
                    *self = match data[i] {
                        b'.' => Content::Dot,
                        b'\n' => Content::LineStart,
                        _ => Content::Text,
                    };
                    i += 1;
                }
                Content::Dot => match data[i] {
                    b'\r' => i += 1,
                    b'\n' => return (i + 1, true),
                    _ => {
                        *self = Content::Text;
                        i += 1;
                    }
                },
            }
        }
        (data.len(), false)
    }
}

#[cfg(test)]
mod tests;
