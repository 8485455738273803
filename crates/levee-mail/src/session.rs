//! A mail session's life, the same for IMAP, POP3 and submission:
//!
//! 1. **greet** and read commands until the client logs in, under the
//!    listener's pre-auth deadline and error/command limits (`session/imap.rs`,
//!    `session/pop3.rs`, `session/smtp.rs`, which drive the parsers);
//! 2. **decide** the login: `auth_http` or the user map ([`crate::auth`]);
//! 3. **log in to the backend** it names ([`crate::backend`]); a backend
//!    that refuses or does not answer gets the client an immediate
//!    "unavailable";
//! 4. **relay** bytes both ways until either side closes or the session
//!    idles out ([`crate::splice`]); submission's client bytes go through
//!    its filter ([`crate::smtp::filter`]).
//!
//! On a TLS listener the handshake comes before the greeting (implicit
//! TLS); on a STARTTLS listener it comes when the client asks, and what the
//! client pipelined behind its STARTTLS in the clear is thrown away first
//! ([`start_tls`]).
//!
//! The pre-auth part is boxed and freed before the relay starts, so a
//! logged-in session costs only the relay's state.

mod challenge;
pub mod imap;
mod login;
pub mod pop3;
pub mod smtp;
mod stream;
mod tls;

pub(crate) use challenge::{SaslReplies, sasl_exchange};
pub(crate) use login::{Denied, refusal_text};
pub use stream::{ClientStream, MailTls};
pub(crate) use tls::{TlsState, start_tls};

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use levee_config::model::MailProtocol;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::front::{FrontState, Frontend};
use crate::guard::SessionSlot;
use crate::line::{LineError, next_line};
use crate::metrics::{Stage, StageGuard};
use crate::splice::{Farewell, Splice};

/// Why reading from the client stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The pre-auth deadline passed.
    Timeout,
    /// The client closed or the socket failed.
    Closed,
    /// levee is stopping.
    Shutdown,
    /// The STARTTLS handshake failed or timed out.
    Handshake,
}

/// What one read reserves; a buffer past this is shrunk once handled.
const KEEP_BUF: usize = 2048;

/// The client connection during pre-auth: its stream, bytes read but not
/// yet used, and the deadline to be logged in by.
pub(crate) struct Io<S> {
    pub stream: S,
    pub buf: Vec<u8>,
    pub deadline: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// Reads more into `buf`.
    pub(crate) async fn fill(&mut self) -> Result<(), Stop> {
        self.buf.reserve(KEEP_BUF);
        let read = tokio::time::timeout_at(self.deadline, self.stream.read_buf(&mut self.buf));
        tokio::select! {
            read = read => match read {
                Err(_) => Err(Stop::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => Err(Stop::Closed),
                Ok(Ok(_)) => Ok(()),
            },
            () = crate::shutdown::stopping() => Err(Stop::Shutdown),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout_at(self.deadline, write).await {
            Err(_) => Err(Stop::Timeout),
            Ok(Err(_)) => Err(Stop::Closed),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// [`Io::send`], unless `bytes` is empty.
    pub(crate) async fn send_some(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.send(bytes).await
    }

    /// Drops the first `n` bytes, the command just handled. A buffer that
    /// grew for a large command (a 30 KB IMAP `ID`) is given back then, so
    /// a session waiting for its next command holds no more than before.
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        if self.buf.capacity() > KEEP_BUF && self.buf.len() <= KEEP_BUF {
            if self.buf.is_empty() {
                self.buf = Vec::new();
            } else {
                self.buf.shrink_to(KEEP_BUF);
            }
        }
    }

    /// The next CRLF line (a SASL response), at most `max` bytes.
    pub(crate) async fn line(&mut self, max: usize) -> Result<Result<Vec<u8>, LineError>, Stop> {
        loop {
            match next_line(&self.buf, max) {
                Ok(Some((line, used))) => {
                    let line = line.to_vec();
                    self.consume(used);
                    return Ok(Ok(line));
                }
                Ok(None) => self.fill().await?,
                Err(e) => return Ok(Err(e)),
            }
        }
    }
}

/// What a protocol's pre-auth stage ends with.
pub(crate) enum PreAuth {
    /// Logged in: relay from here. `user` is for the session log.
    Proxy {
        backend: Backend,
        user: String,
        slot: SessionSlot,
    },
    /// The session ended before login (logout, limits, timeout, close).
    Ended(&'static str),
}

/// Refused commands and commands before login, counted against the listener's limits.
pub(crate) struct Budget {
    errors: u32,
    commands: u32,
    max_errors: u32,
    max_commands: u32,
}

impl Budget {
    pub(crate) fn new(config: &levee_config::model::MailListener) -> Budget {
        Budget {
            errors: 0,
            commands: 0,
            max_errors: config.max_errors,
            max_commands: config.max_commands,
        }
    }

    /// Counts a refused command or failed login; true when that was one too many.
    pub(crate) fn error(&mut self) -> bool {
        self.errors += 1;
        self.errors >= self.max_errors
    }

    /// Counts a command; true when it is over the limit.
    pub(crate) fn command(&mut self) -> bool {
        self.commands += 1;
        self.commands > self.max_commands
    }
}

/// Where a pre-auth command leaves the session: waiting for the next
/// command, or ended (`Break`).
pub(crate) type Step = ControlFlow<PreAuth>;

/// Answers `text`; the session waits for the next command.
pub(crate) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    text: &[u8],
) -> Result<Step, Stop> {
    io.send(text).await?;
    Ok(ControlFlow::Continue(()))
}

/// Answers the refusal `text` of a command or a login, counted against the
/// error budget: when that was one too many, the session ends after `bye`
/// (nothing, if empty).
pub(crate) async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    budget: &mut Budget,
    text: &[u8],
    bye: &[u8],
) -> Result<Step, Stop> {
    io.send(text).await?;
    if budget.error() {
        io.send_some(bye).await?;
        return Ok(ControlFlow::Break(PreAuth::Ended("too many errors")));
    }
    Ok(ControlFlow::Continue(()))
}

/// What a line-based protocol (POP3, SMTP) says when a client breaks its
/// limits; an empty line says nothing more.
pub(crate) struct LineLimits {
    /// After the error reply to a line whose end cannot be found.
    pub unframed: &'static [u8],
    /// After the error reply that used up the error budget.
    pub too_many_errors: &'static [u8],
    /// To the command over the command budget.
    pub too_many_commands: &'static [u8],
}

/// The client's next command, reading as needed. A line that does not
/// parse is answered with `reply(error)` and counts against the error
/// budget; `Ok(Err(_))` is how the session ends when a limit is passed.
pub(crate) async fn next_command<S, C, E>(
    io: &mut Io<S>,
    budget: &mut Budget,
    parse: impl Fn(&[u8]) -> Result<crate::Parsed<C>, (E, Option<usize>)>,
    reply: impl Fn(&E) -> String,
    limits: &LineLimits,
) -> Result<Result<C, PreAuth>, Stop>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let command = loop {
        match parse(&io.buf) {
            Ok(crate::Parsed::Incomplete) => io.fill().await?,
            Ok(crate::Parsed::Complete(c, used)) => {
                io.consume(used);
                break c;
            }
            Err((e, used)) => {
                io.send(reply(&e).as_bytes()).await?;
                let Some(used) = used else {
                    io.send_some(limits.unframed).await?;
                    return Ok(Err(PreAuth::Ended("bad line")));
                };
                io.consume(used);
                if budget.error() {
                    io.send_some(limits.too_many_errors).await?;
                    return Ok(Err(PreAuth::Ended("too many errors")));
                }
            }
        }
    };
    if budget.command() {
        io.send_some(limits.too_many_commands).await?;
        return Ok(Err(PreAuth::Ended("too many commands")));
    }
    Ok(Ok(command))
}

/// What a protocol tells a client it stops talking to before login.
pub(crate) struct Closing {
    pub timeout: &'static [u8],
    pub shutdown: &'static [u8],
}

/// Ends a protocol's pre-auth stage: on a timeout or a stop the client is
/// told so (with a moment of its own, the deadline having passed).
pub(crate) async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<S>,
    result: Result<PreAuth, Stop>,
    closing: &Closing,
) -> PreAuth {
    let (reply, why) = match result {
        Ok(p) => return p,
        Err(Stop::Closed) => return PreAuth::Ended("client closed"),
        Err(Stop::Handshake) => return PreAuth::Ended("TLS handshake failed"),
        Err(Stop::Timeout) => (closing.timeout, "pre-auth timeout"),
        Err(Stop::Shutdown) => (closing.shutdown, "levee stopping"),
    };
    io.deadline = Instant::now() + std::time::Duration::from_secs(1);
    let _ = io.send(reply).await;
    PreAuth::Ended(why)
}

/// Per-session facts the login step needs.
pub(crate) struct Ctx {
    pub front: Arc<Frontend>,
    pub state: Arc<FrontState>,
    pub peer: SocketAddr,
    /// The listener address the client reached.
    pub local: SocketAddr,
    pub attempts: u32,
    pub tls: TlsState,
}

/// Serves one client connection from greeting to close: open it (TLS
/// first on an implicit-TLS listener), the protocol's pre-auth stage up to
/// a login, then the relay.
pub(crate) async fn run(
    front: Arc<Frontend>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<MailTls>,
) {
    let state = front.state();
    let protocol = state.config.protocol;
    let mut stage = StageGuard::enter(protocol, Stage::PreAuth);
    let starttls = state.config.starttls;
    let (mut io, mut ctx) = open(front, state, stream, peer);
    // Boxed: a handshake's state (a whole rustls connection) would
    // otherwise size the session's task for its whole life.
    match Box::pin(tls::begin(&mut io, tls, starttls)).await {
        Ok(state) => ctx.tls = state,
        Err(why) => {
            tracing::debug!(peer = %peer, error = %why, "TLS handshake failed");
            return;
        }
    }
    // Boxed so its buffers and state are freed before the relay starts.
    let preauth = match protocol {
        MailProtocol::Imap => Box::pin(imap::preauth(&mut io, &mut ctx)).await,
        MailProtocol::Pop3 => Box::pin(pop3::preauth(&mut io, &mut ctx)).await,
        MailProtocol::Submission => Box::pin(smtp::preauth(&mut io, &mut ctx)).await,
    };
    let (backend, user, _slot) = match preauth {
        PreAuth::Proxy {
            backend,
            user,
            slot,
        } => (backend, user, slot),
        PreAuth::Ended(why) => {
            tracing::info!(peer = %peer, protocol = protocol.as_str(), attempts = ctx.attempts, end = why, "mail session");
            return;
        }
    };
    // Read here, not held across the pre-auth stage: the task stays as small.
    let idle = ctx.state.config.idle_timeout;
    let grace_ms = u32::try_from(ctx.state.config.move_grace.as_millis()).unwrap_or(u32::MAX);
    drop(ctx);
    stage.advance(Stage::Proxying);
    // The relay (step 4) runs here rather than in a function of its own:
    // an async function's arguments would be kept beside the state built
    // from them, and the session's task would grow by both.
    let backend_addr = backend.addr;
    let tls = io.stream.is_tls();
    let chunking = backend
        .smtp_extensions
        .as_ref()
        .is_some_and(|e| e.offers("CHUNKING"));
    let mut splice = Splice::new(io.stream, backend.stream, io.buf, backend.to_client, idle)
        .with_farewell(farewell(protocol, &user, grace_ms));
    let (end, counts, refused) = match protocol {
        // Submission reads the client's bytes through its filter
        // (smtp/filter.rs), boxed so that its state sizes submission
        // sessions only; IMAP and POP3 relay them raw.
        MailProtocol::Submission => {
            let mut splice = Box::new(splice.filtered(chunking));
            let end = (&mut *splice).await;
            (end, splice.counts, splice.relay().refused())
        }
        MailProtocol::Imap | MailProtocol::Pop3 => {
            let end = (&mut splice).await;
            (end, splice.counts, 0)
        }
    };
    if refused > 0 {
        tracing::warn!(peer = %peer, user = %user, refused, "submission commands refused after AUTH (XCLIENT, XFORWARD, STARTTLS, AUTH or a malformed BDAT)");
    }
    tracing::info!(
        peer = %peer,
        protocol = protocol.as_str(),
        user = %user,
        backend = %backend_addr,
        up = counts.0,
        down = counts.1,
        tls,
        end = end_text(&end),
        "mail session"
    );
}

/// A new session's client side and the facts logins need. Not async: an
/// async function's arguments would be kept in the session's task.
fn open(
    front: Arc<Frontend>,
    state: Arc<FrontState>,
    stream: TcpStream,
    peer: SocketAddr,
) -> (Io<ClientStream>, Ctx) {
    let local = stream.local_addr().unwrap_or(front.addr);
    let io = Io {
        stream: ClientStream::plain(stream),
        buf: Vec::new(),
        deadline: Instant::now() + state.config.preauth_timeout,
    };
    let ctx = Ctx {
        front,
        state,
        peer,
        local,
        attempts: 0,
        tls: TlsState::default(),
    };
    (io, ctx)
}

/// What the relay says before it closes a session on request (`kick`).
fn farewell(protocol: MailProtocol, user: &str, grace_ms: u32) -> Farewell {
    Farewell {
        kick: crate::kick::register(user.as_bytes()),
        goodbye: match protocol {
            MailProtocol::Imap => &crate::kick::IMAP,
            MailProtocol::Pop3 => &crate::kick::POP3,
            MailProtocol::Submission => &crate::kick::SMTP,
        },
        grace_ms,
    }
}

/// How a relay ended, for the session's log line.
fn end_text(end: &io::Result<crate::splice::End>) -> &'static str {
    match end {
        Ok(crate::splice::End::Closed) => "closed",
        Ok(crate::splice::End::Idle) => "idle timeout",
        Ok(crate::splice::End::Kicked { at_boundary: true }) => "closed on request",
        Ok(crate::splice::End::Kicked { at_boundary: false }) => {
            "closed on request when move_grace ran out"
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => "reset",
        Err(_) => "error",
    }
}

#[cfg(test)]
mod tests;
