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
pub mod pop3;
pub mod smtp;
mod stream;
mod tls;

pub(crate) use challenge::{SaslReplies, sasl_exchange};
pub use stream::{ClientStream, MailTls};
pub(crate) use tls::{TlsState, start_tls};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use levee_config::model::MailProtocol;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::auth::{Attempt, Decision};
use crate::backend::{self, Backend, Greet};
use crate::front::{FrontState, Frontend};
use crate::guard::{self, Refusal, SessionSlot, Ticket};
use crate::line::{LineError, next_line};
use crate::metrics::{self, Login, Stage, StageGuard};
use crate::sasl::Credentials;
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

/// The outcome of a login attempt, for the protocol to answer.
pub(crate) enum Outcome {
    /// Logged in; `slot` holds the user's place in `max_sessions_per_user`.
    Proxy(Backend, SessionSlot),
    /// The user has `max_sessions_per_user` sessions already.
    TooMany,
    /// Bad credentials (after the delay): the auth service's text, if any.
    Refused {
        message: Option<String>,
        smtp_code: Option<String>,
    },
    /// The auth service or the backend is unavailable.
    Unavailable,
}

/// The text a refusal shows the client: the auth service's or `default`,
/// limited to printable ASCII so it cannot break the reply line.
pub(crate) fn refusal_text(message: &Option<String>, default: &str) -> String {
    match message {
        Some(m)
            if !m.is_empty() && m.len() <= 200 && m.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
        {
            m.clone()
        }
        _ => default.to_owned(),
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

impl Ctx {
    /// Decides `credentials` and, if accepted, logs in to the backend.
    pub(crate) async fn login(&mut self, credentials: &Credentials, greet: Greet<'_>) -> Outcome {
        self.attempts += 1;
        let smtp_helo = match &greet {
            Greet::Smtp { helo } => Some(*helo),
            _ => None,
        };
        let attempt = Attempt {
            protocol: self.state.config.protocol,
            credentials,
            number: self.attempts,
            peer: self.peer,
            smtp_helo,
            ssl: self.tls.info.as_deref(),
        };
        let config = &self.state.config;
        let base = config.auth_fail_delay;
        let rules = crate::guard::Rules {
            pair_limit: config.max_auth_failures,
            user_ceiling: config.max_user_auth_failures,
            window: config.auth_failure_window,
        };
        let protocol = config.protocol;
        // Reserved before the auth service is asked, so concurrent attempts
        // are counted exactly (guard.rs).
        let ticket = match self
            .front
            .guard
            .admit(self.peer.ip(), &credentials.user, rules)
            .await
        {
            Ok(ticket) => ticket,
            Err(Refusal::Blocked { address_failures }) => {
                tracing::info!(peer = %self.peer, "mail login refused: too many failures for this user from this address");
                metrics::login(protocol, Login::Blocked);
                tokio::time::sleep(guard::delay(base, address_failures)).await;
                return Outcome::Refused {
                    message: None,
                    smtp_code: None,
                };
            }
            Err(Refusal::Busy) => {
                tracing::info!(peer = %self.peer, "mail login deferred: too many failures for this user");
                metrics::login(protocol, Login::Blocked);
                return Outcome::Unavailable;
            }
        };
        if !ticket.waited.is_zero() {
            tracing::info!(peer = %self.peer, waited_ms = ticket.waited.as_millis() as u64, "mail login slowed: too many failures for this user");
        }
        let grown = guard::delay(base, ticket.address_failures + 1);
        let refused = async |ticket: Ticket<'_, guard::Shared>,
                             wait: std::time::Duration,
                             message: Option<String>,
                             smtp_code: Option<String>| {
            ticket.settle(guard::Outcome::Failed);
            tokio::time::sleep(wait.max(grown)).await;
            Outcome::Refused { message, smtp_code }
        };
        let mut route = match crate::auth::decide(&self.front, &self.state, &attempt).await {
            Decision::Accept(route) => route,
            Decision::Refuse {
                message,
                wait,
                smtp_code,
            } => {
                metrics::login(protocol, Login::Refused);
                return refused(ticket, wait, message, smtp_code).await;
            }
            Decision::Unavailable(why) => {
                tracing::warn!(peer = %self.peer, reason = %why, "mail auth unavailable");
                metrics::login(protocol, Login::Unavailable);
                return Outcome::Unavailable;
            }
        };
        let Some(slot) = self
            .front
            .guard
            .open_session(&credentials.user, config.max_sessions_per_user)
        else {
            ticket.settle(guard::Outcome::Succeeded);
            metrics::login(protocol, Login::TooMany);
            return Outcome::TooMany;
        };
        if let Some(master) = &self.state.config.master {
            route.user.extend_from_slice(master.separator.as_bytes());
            route.user.extend_from_slice(master.user.as_bytes());
            route.pass = master.password.as_bytes().to_vec();
        }
        let timeouts = backend::Timeouts {
            connect: config.backend_connect_timeout,
            login: config.backend_login_timeout,
        };
        let forward = self
            .state
            .config
            .forward_client_address
            .then_some((self.peer, self.local));
        let proxy_header = config
            .backend_proxy_protocol
            .then(|| crate::proxy_protocol::v2(self.peer, self.local));
        match backend::login(&route, greet, forward, proxy_header, timeouts).await {
            Ok(b) => {
                ticket.settle(guard::Outcome::Succeeded);
                metrics::login(protocol, Login::Ok);
                if let Some(offered) = &b.smtp_extensions {
                    self.front.learn_smtp(offered);
                }
                Outcome::Proxy(b, slot)
            }
            Err(backend::BackendError::Refused(text)) => {
                tracing::info!(peer = %self.peer, backend = %route.backend, "backend refused the login");
                metrics::login(protocol, Login::Refused);
                refused(ticket, base, Some(text), None).await
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, backend = %route.backend, error = %e, "mail backend unavailable");
                let kind = match e {
                    backend::BackendError::Connect(_) => metrics::BackendError::Connect,
                    backend::BackendError::ConnectTimeout | backend::BackendError::LoginTimeout => {
                        metrics::BackendError::Timeout
                    }
                    _ => metrics::BackendError::Protocol,
                };
                metrics::backend_error(protocol, kind);
                metrics::login(protocol, Login::Unavailable);
                Outcome::Unavailable
            }
        }
    }
}

/// Serves one client connection from greeting to close.
pub(crate) async fn run(
    front: Arc<Frontend>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<MailTls>,
) {
    let state = front.state();
    let protocol = state.config.protocol;
    let idle = state.config.idle_timeout;
    let mut stage = StageGuard::enter(protocol, Stage::PreAuth);
    let local = stream.local_addr().unwrap_or(front.addr);
    let mut io = Io {
        stream: ClientStream::plain(stream),
        buf: Vec::new(),
        deadline: Instant::now() + state.config.preauth_timeout,
    };
    let starttls = state.config.starttls;
    let mut ctx = Ctx {
        front,
        state,
        peer,
        local,
        attempts: 0,
        tls: TlsState::default(),
    };
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
    let grace_ms = u32::try_from(ctx.state.config.move_grace.as_millis()).unwrap_or(u32::MAX);
    drop(ctx);
    stage.advance(Stage::Proxying);
    let backend_addr = backend.addr;
    let pipelined = std::mem::take(&mut io.buf);
    let tls = io.stream.is_tls();
    let farewell = Farewell {
        kick: crate::kick::register(user.as_bytes()),
        goodbye: match protocol {
            MailProtocol::Imap => &crate::kick::IMAP,
            MailProtocol::Pop3 => &crate::kick::POP3,
            MailProtocol::Submission => &crate::kick::SMTP,
        },
        grace_ms,
    };
    let mut splice = Splice::new(
        io.stream,
        backend.stream,
        pipelined,
        backend.to_client,
        idle,
    )
    .with_farewell(farewell);
    let (end, counts, refused) = match protocol {
        // Submission reads the client's bytes through its filter
        // (smtp/filter.rs), boxed so that its state sizes submission
        // sessions only; IMAP and POP3 relay them raw.
        MailProtocol::Submission => {
            let chunking = backend
                .smtp_extensions
                .as_ref()
                .is_some_and(|e| e.offers("CHUNKING"));
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
    let end: &str = match &end {
        Ok(crate::splice::End::Closed) => "closed",
        Ok(crate::splice::End::Idle) => "idle timeout",
        Ok(crate::splice::End::Kicked { at_boundary: true }) => "closed on request",
        Ok(crate::splice::End::Kicked { at_boundary: false }) => {
            "closed on request when move_grace ran out"
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => "reset",
        Err(_) => "error",
    };
    tracing::info!(
        peer = %peer,
        protocol = protocol.as_str(),
        user = %user,
        backend = %backend_addr,
        up = counts.0,
        down = counts.1,
        tls,
        end,
        "mail session"
    );
}

#[cfg(test)]
mod tests;
