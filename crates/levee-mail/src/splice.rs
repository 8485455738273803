//! Relaying a logged-in session's bytes both ways without per-session buffers.
//!
//! `copy_bidirectional` keeps two 8 KB buffers per session for its whole
//! life, which is most of what an idle IMAP session would cost. Here each
//! direction is polled for readability with no buffer: a read goes into one
//! per-worker scratch buffer and is written on at once, inside the same
//! poll. Only when the far side cannot take it all is the unsent remainder
//! copied into a per-direction `Vec`, freed as soon as it drains. An idle
//! session therefore holds its two sockets and a few words of state.
//!
//! It is generic over the streams so a TLS client stream is relayed the same
//! way (rustls keeps its own record buffers, so a TLS session costs more),
//! and over what it does to the bytes ([`Relay`]): IMAP and POP3 relay them
//! as they are ([`Raw`]); submission reads them through its filter
//! ([`crate::smtp::filter`], wired in `splice/filtered.rs`).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Size of each worker's scratch buffer.
const SCRATCH: usize = 16 * 1024;
/// Reads per poll before yielding, so one busy session cannot starve the worker.
const BUDGET: usize = 32;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// One direction: what is read from one side and not yet written to the other.
#[derive(Default)]
pub(crate) struct Half {
    unsent: Vec<u8>,
    /// The reading side said EOF; the writing side gets a shutdown once drained.
    eof: bool,
    done: bool,
    /// The last byte read ended a line, so the next read starts one.
    /// Backend → client only, as is `mark` (both fit in padding).
    line_start: bool,
    mark: Mark,
}

/// Where the backend's answer stands, for a close request
/// ([`crate::kick`]): the session's one piece of protocol knowledge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Mid-line, or the client has sent something since: a command may be
    /// running.
    #[default]
    Busy,
    /// The backend's last bytes ended a line (an untagged response, a
    /// continuation such as IMAP's `+ idling`).
    Line,
    /// The backend's last bytes ended a line that completes an answer.
    Answered,
}

impl Half {
    /// Notes where `data`, just read from the backend, leaves its answer.
    fn mark_read(&mut self, data: &[u8], answer_ends: fn(&[u8]) -> bool) {
        let Some(body) = data.strip_suffix(b"\n") else {
            self.line_start = false;
            self.mark = Mark::Busy;
            return;
        };
        let line = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => Some(&body[i + 1..]),
            None if self.line_start => Some(body),
            // The line began in an earlier read: its start is not known.
            None => None,
        };
        let line = line.map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        self.line_start = true;
        self.mark = match line {
            Some(l) if answer_ends(l) => Mark::Answered,
            _ => Mark::Line,
        };
    }
}

/// How the relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed.
    Closed,
    /// No byte moved for the idle timeout.
    Idle,
    /// Closed on request (`kick`), after the farewell: at a command
    /// boundary or a quiet moment, or when the grace ran out.
    Kicked { at_boundary: bool },
}

/// A close request and what the client is told then.
#[derive(Debug)]
pub struct Farewell {
    pub kick: crate::kick::Handle,
    /// The protocol's closing line and how its answers end.
    pub goodbye: &'static crate::kick::Goodbye,
    /// The longest wait for a boundary after the request (`move_grace`),
    /// in milliseconds: 4 bytes, where a `Duration` would widen every
    /// idle session.
    pub grace_ms: u32,
}

/// What a close request wants now.
enum Due {
    /// Say goodbye and close; `at_boundary` is false when the grace ran out.
    Now { at_boundary: bool },
    /// Look again then.
    At(Instant),
}

/// One direction's turn: its half, the other direction's (for bytes a
/// relay queues there), and where its bytes come from and go.
pub(crate) struct Way<'a, R, W> {
    pub(crate) half: &'a mut Half,
    pub(crate) other: &'a mut Half,
    pub(crate) from: &'a mut R,
    pub(crate) to: &'a mut W,
    pub(crate) count: &'a mut u64,
}

/// What a relay does with the bytes it moves (static dispatch: a
/// session's relay is fixed at login).
pub(crate) trait Relay: Unpin {
    /// Client → backend.
    fn pump_up<R, W>(&mut self, cx: &mut Context<'_>, way: Way<'_, R, W>) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin;

    /// Backend → client; `answer_ends` as for [`pump`].
    fn pump_down<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        way: Way<'_, R, W>,
        answer_ends: Option<fn(&[u8]) -> bool>,
    ) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin;
}

/// Bytes relayed as they are, never parsed: IMAP and POP3. Neither has a
/// command after login that lets a client speak as levee: Dovecot reads
/// POP3 `XCLIENT` and IMAP `ID`'s `x-originating-*` fields from trusted
/// proxies only in its login process, before the login (after it, POP3
/// `XCLIENT` is an unknown command and `ID` only logged), so there is
/// nothing to filter and the relay keeps its zero-parse path. Submission
/// has: see [`crate::smtp::filter`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Raw;

impl Relay for Raw {
    fn pump_up<R, W>(&mut self, cx: &mut Context<'_>, way: Way<'_, R, W>) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        pump(cx, way, None, pass_on)
    }

    fn pump_down<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        way: Way<'_, R, W>,
        answer_ends: Option<fn(&[u8]) -> bool>,
    ) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        pump(cx, way, answer_ends, pass_on)
    }
}

/// [`Raw`]'s way with a read: written on at once; what the far side would
/// not take is kept.
fn pass_on<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    (half, _): (&mut Half, &mut Half),
    to: &mut W,
    count: &mut u64,
    data: &[u8],
) -> io::Result<()> {
    send(cx, to, &mut half.unsent, count, data)
}

pub struct Splice<C, B, F = Raw> {
    client: C,
    backend: B,
    /// Client → backend.
    up: Half,
    /// Backend → client.
    down: Half,
    idle: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    farewell: Option<Farewell>,
    /// Bytes relayed (client → backend, backend → client), for the session log.
    pub counts: (u64, u64),
    relay: F,
}

impl<C, B> Splice<C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// `to_backend`/`to_client`: bytes already read during login that belong to the other side.
    pub fn new(
        client: C,
        backend: B,
        to_backend: Vec<u8>,
        to_client: Vec<u8>,
        idle: Duration,
    ) -> Self {
        let now = Instant::now();
        // An empty leftover may still hold the login stage's read buffer.
        let owned = |v: Vec<u8>| if v.is_empty() { Vec::new() } else { v };
        let (to_backend, to_client) = (owned(to_backend), owned(to_client));
        Splice {
            client,
            backend,
            up: Half {
                unsent: to_backend,
                ..Half::default()
            },
            // What the backend sent last is its answer to the login, a
            // whole line; what the client pipelined behind it, if anything,
            // makes the session busy once it is sent.
            down: Half {
                unsent: to_client,
                line_start: true,
                mark: Mark::Line,
                ..Half::default()
            },
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            farewell: None,
            counts: (0, 0),
            relay: Raw,
        }
    }

    /// The same relay, its bytes read through `relay` from now on.
    fn with_relay<F>(self, relay: F) -> Splice<C, B, F> {
        Splice {
            client: self.client,
            backend: self.backend,
            up: self.up,
            down: self.down,
            idle: self.idle,
            last_activity: self.last_activity,
            timer: self.timer,
            farewell: self.farewell,
            counts: self.counts,
            relay,
        }
    }
}

impl<C, B, F> Splice<C, B, F>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// What reads the bytes through.
    pub fn relay(&self) -> &F {
        &self.relay
    }

    /// Lets the session be closed on request ([`crate::kick`]).
    pub fn with_farewell(mut self, farewell: Farewell) -> Self {
        self.farewell = Some(farewell);
        self
    }

    /// What a close request, if there is one, wants at `now` (read only
    /// then: a session nobody asked to close reads no clock for it).
    fn farewell_due(&self, now: impl FnOnce() -> Instant) -> Option<Due> {
        let f = self.farewell.as_ref()?;
        let asked = f.kick.asked_at()?;
        let now = now();
        let forced = asked + Duration::from_millis(u64::from(f.grace_ms));
        if now >= forced {
            return Some(Due::Now { at_boundary: false });
        }
        let settled = self.up.unsent.is_empty() && self.down.unsent.is_empty();
        let still_for = match self.down.mark {
            Mark::Answered if settled => Some(crate::kick::SETTLE),
            Mark::Line if settled => Some(crate::kick::QUIET),
            _ => None,
        };
        let Some(still_for) = still_for else {
            return Some(Due::At(forced));
        };
        let at = self.last_activity + still_for;
        if now >= at {
            return Some(Due::Now { at_boundary: true });
        }
        Some(Due::At(at.min(forced)))
    }

    /// Tells the client goodbye (best effort: a client that cannot take one
    /// line now is closed anyway) and ends the relay; what was unsent is dropped.
    fn goodbye(&mut self, cx: &mut Context<'_>, at_boundary: bool) -> Poll<io::Result<End>> {
        if let Some(f) = &self.farewell {
            let _ = Pin::new(&mut self.client).poll_write(cx, f.goodbye.line);
            let _ = Pin::new(&mut self.client).poll_flush(cx);
        }
        Poll::Ready(Ok(End::Kicked { at_boundary }))
    }
}

/// A pump's first steps: what `to` is owed before anything more is read
/// (unsent bytes, a shutdown, a flush). `Ready(Ok(Some(moved)))` ends the
/// pump's turn; `Ready(Ok(None))`: free to read.
fn settle<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    half: &mut Half,
    to: &mut W,
    count: &mut u64,
) -> Poll<io::Result<Option<bool>>> {
    if half.done {
        return Poll::Ready(Ok(Some(false)));
    }
    if !half.unsent.is_empty() {
        let n = ready!(Pin::new(&mut *to).poll_write(cx, &half.unsent))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        half.unsent.drain(..n);
        if half.unsent.is_empty() {
            // Give the memory back: an idle session keeps nothing.
            half.unsent = Vec::new();
        }
        *count += n as u64;
        return Poll::Ready(Ok(Some(true)));
    }
    if half.eof {
        ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
        half.done = true;
        return Poll::Ready(Ok(Some(true)));
    }
    // A TLS writer may hold records its socket would not take yet: push
    // them out before reading more, or they could wait for the next write
    // forever (a no-op on TCP). Pending here is backpressure.
    ready!(Pin::new(&mut *to).poll_flush(cx))?;
    Poll::Ready(Ok(None))
}

/// Moves what it can in one direction; `Ready(Ok(true))` when it made
/// progress. Each read is given to `pass`. `answer_ends` is given for the
/// backend's direction when a close may be requested: its reads are then
/// marked ([`Half::mark_read`]).
fn pump<R, W>(
    cx: &mut Context<'_>,
    way: Way<'_, R, W>,
    answer_ends: Option<fn(&[u8]) -> bool>,
    pass: impl FnOnce(
        &mut Context<'_>,
        (&mut Half, &mut Half),
        &mut W,
        &mut u64,
        &[u8],
    ) -> io::Result<()>,
) -> Poll<io::Result<bool>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Some(moved) = ready!(settle(cx, way.half, way.to, way.count))? {
        return Poll::Ready(Ok(moved));
    }
    read_scratch(cx, way.from, way.half, |cx, half, data| {
        if let Some(answer_ends) = answer_ends {
            half.mark_read(data, answer_ends);
        }
        pass(cx, (half, way.other), way.to, way.count, data)?;
        Poll::Ready(Ok(true))
    })
}

/// Reads what `from` has into the worker's scratch buffer and hands it to
/// `then`; the end of the stream marks `half` instead.
fn read_scratch<R: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    from: &mut R,
    half: &mut Half,
    then: impl FnOnce(&mut Context<'_>, &mut Half, &[u8]) -> Poll<io::Result<bool>>,
) -> Poll<io::Result<bool>> {
    SCRATCH_BUF.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let mut buf = ReadBuf::new(&mut scratch[..]);
        ready!(Pin::new(&mut *from).poll_read(cx, &mut buf))?;
        let data = buf.filled();
        if data.is_empty() {
            half.eof = true;
            return Poll::Ready(Ok(true));
        }
        then(cx, half, data)
    })
}

/// Writes `bytes` to `to` at once when nothing is queued before them;
/// what it would not take, or all of them behind a queue, go to `unsent`.
fn send<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    to: &mut W,
    unsent: &mut Vec<u8>,
    count: &mut u64,
    bytes: &[u8],
) -> io::Result<()> {
    if !unsent.is_empty() {
        unsent.extend_from_slice(bytes);
        return Ok(());
    }
    if bytes.is_empty() {
        return Ok(());
    }
    let written = match Pin::new(&mut *to).poll_write(cx, bytes) {
        Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
        Poll::Ready(Ok(n)) => n,
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => 0,
    };
    *count += written as u64;
    unsent.extend_from_slice(&bytes[written..]);
    Ok(())
}

impl<C, B, F> Future for Splice<C, B, F>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
    F: Relay,
{
    type Output = io::Result<End>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<End>> {
        let this = self.get_mut();
        if let Some(f) = &this.farewell {
            f.kick.watch(cx.waker());
        }
        if let Some(Due::Now { at_boundary }) = this.farewell_due(Instant::now) {
            return this.goodbye(cx, at_boundary);
        }
        let answer_ends = this.farewell.as_ref().map(|f| f.goodbye.answer_ends);
        let mut budget_spent = true;
        for _ in 0..BUDGET {
            let up = this.relay.pump_up(
                cx,
                Way {
                    half: &mut this.up,
                    other: &mut this.down,
                    from: &mut this.client,
                    to: &mut this.backend,
                    count: &mut this.counts.0,
                },
            )?;
            let down = this.relay.pump_down(
                cx,
                Way {
                    half: &mut this.down,
                    other: &mut this.up,
                    from: &mut this.backend,
                    to: &mut this.client,
                    count: &mut this.counts.1,
                },
                answer_ends,
            )?;
            if this.up.done && this.down.done {
                return Poll::Ready(Ok(End::Closed));
            }
            let up_moved = matches!(up, Poll::Ready(true));
            if up_moved {
                // The client spoke: whatever the backend said last, an
                // answer may be owed again.
                this.down.mark = Mark::Busy;
            }
            if !up_moved && !matches!(down, Poll::Ready(true)) {
                budget_spent = false;
                break;
            }
            this.last_activity = Instant::now();
        }
        if budget_spent {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // The timer is re-armed lazily: activity only moves `last_activity`.
        // A pending close request wants to look again at its next moment.
        match this.farewell_due(Instant::now) {
            Some(Due::Now { at_boundary }) => return this.goodbye(cx, at_boundary),
            Some(Due::At(at)) if at < this.timer.deadline() => this.timer.as_mut().reset(at),
            _ => {}
        }
        loop {
            ready!(this.timer.as_mut().poll(cx));
            let now = Instant::now();
            let due = this.farewell_due(|| now);
            if let Some(Due::Now { at_boundary }) = due {
                return this.goodbye(cx, at_boundary);
            }
            let deadline = this.last_activity + this.idle;
            if now >= deadline {
                return Poll::Ready(Ok(End::Idle));
            }
            let next = match due {
                Some(Due::At(at)) => deadline.min(at),
                _ => deadline,
            };
            this.timer.as_mut().reset(next);
        }
    }
}

mod filtered;
#[cfg(test)]
mod tests;
