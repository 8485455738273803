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
//! way (rustls keeps its own record buffers, so a TLS session costs more).

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
struct Half {
    unsent: Vec<u8>,
    /// The reading side said EOF; the writing side gets a shutdown once drained.
    eof: bool,
    done: bool,
}

/// How the relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed.
    Closed,
    /// No byte moved for the idle timeout.
    Idle,
    /// Closed on request (`kick`), after the farewell.
    Kicked,
}

/// A close request and what the client is told then.
#[derive(Debug)]
pub struct Farewell {
    pub kick: crate::kick::Handle,
    /// The protocol's closing line (`* BYE …`, `-ERR …`, `421 …`).
    pub line: &'static [u8],
}

pub struct Splice<C, B> {
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
            down: Half {
                unsent: to_client,
                ..Half::default()
            },
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            farewell: None,
            counts: (0, 0),
        }
    }

    /// Lets the session be closed on request, telling the client `farewell.line`.
    pub fn with_farewell(mut self, farewell: Farewell) -> Self {
        self.farewell = Some(farewell);
        self
    }

    /// When a close was requested and the session is quiet: nothing unsent,
    /// nothing moved for [`crate::kick::QUIET`].
    fn quiet_for_farewell(&self, now: Instant) -> bool {
        self.farewell.as_ref().is_some_and(|f| f.kick.requested())
            && self.up.unsent.is_empty()
            && self.down.unsent.is_empty()
            && now >= self.last_activity + crate::kick::QUIET
    }
}

/// Moves what it can in one direction; `Ready(Ok(true))` when it made progress.
fn pump<R, W>(
    cx: &mut Context<'_>,
    half: &mut Half,
    from: &mut R,
    to: &mut W,
    count: &mut u64,
) -> Poll<io::Result<bool>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if half.done {
        return Poll::Ready(Ok(false));
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
        return Poll::Ready(Ok(true));
    }
    if half.eof {
        ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
        half.done = true;
        return Poll::Ready(Ok(true));
    }
    // A TLS writer may hold records its socket would not take yet: push
    // them out before reading more, or they could wait for the next write
    // forever (a no-op on TCP). Pending here is backpressure.
    ready!(Pin::new(&mut *to).poll_flush(cx))?;
    SCRATCH_BUF.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let mut buf = ReadBuf::new(&mut scratch[..]);
        ready!(Pin::new(&mut *from).poll_read(cx, &mut buf))?;
        let data = buf.filled();
        if data.is_empty() {
            half.eof = true;
            return Poll::Ready(Ok(true));
        }
        // Write on at once; keep only what the far side would not take.
        let written = match Pin::new(&mut *to).poll_write(cx, data) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => 0,
        };
        *count += written as u64;
        half.unsent.extend_from_slice(&data[written..]);
        Poll::Ready(Ok(true))
    })
}

impl<C, B> Future for Splice<C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    type Output = io::Result<End>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<End>> {
        let this = self.get_mut();
        if let Some(f) = &this.farewell {
            f.kick.watch(cx.waker());
            if this.quiet_for_farewell(Instant::now()) {
                // Best effort: a client that cannot take one line now is closed anyway.
                let _ = Pin::new(&mut this.client).poll_write(cx, f.line);
                let _ = Pin::new(&mut this.client).poll_flush(cx);
                return Poll::Ready(Ok(End::Kicked));
            }
        }
        let mut budget_spent = true;
        for _ in 0..BUDGET {
            let up = pump(
                cx,
                &mut this.up,
                &mut this.client,
                &mut this.backend,
                &mut this.counts.0,
            )?;
            let down = pump(
                cx,
                &mut this.down,
                &mut this.backend,
                &mut this.client,
                &mut this.counts.1,
            )?;
            if this.up.done && this.down.done {
                return Poll::Ready(Ok(End::Closed));
            }
            if !matches!(up, Poll::Ready(true)) && !matches!(down, Poll::Ready(true)) {
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
        // A pending close request wants to look again once the session is quiet.
        let kicked = this.farewell.as_ref().is_some_and(|f| f.kick.requested());
        if kicked {
            let quiet_at = this.last_activity + crate::kick::QUIET;
            if quiet_at < this.timer.deadline() {
                this.timer.as_mut().reset(quiet_at);
            }
        }
        loop {
            ready!(this.timer.as_mut().poll(cx));
            let now = Instant::now();
            if this.quiet_for_farewell(now) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let deadline = this.last_activity + this.idle;
            if now >= deadline {
                return Poll::Ready(Ok(End::Idle));
            }
            let next = if kicked {
                deadline
                    .min(this.last_activity + crate::kick::QUIET)
                    .max(now + crate::kick::QUIET / 4)
            } else {
                deadline
            };
            this.timer.as_mut().reset(next);
        }
    }
}

#[cfg(test)]
mod tests;
