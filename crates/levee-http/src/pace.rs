//! The least progress levee demands of a client: at least `min_bytes` sent
//! (request body) or taken (response) within each `window` of time that
//! levee spends waiting on that client. Per-read and per-write timeouts
//! alone let a client that moves one byte every few seconds hold a
//! connection, a buffer and an upstream connection for hours; this cuts it
//! off after one window.
//!
//! Only time spent blocked on the client counts, so a slow upstream (a long
//! poll, a stream of events) never gets the client cut off.
//!
//! The rule is set once per exchange by `conn.rs` for the client's socket
//! ([`scope`]); the relays in `body.rs` and the file sender check any socket
//! they touch against it. That keeps the proxy unaware of the policy: a
//! relay whose source or destination is the client obeys it.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stream::Socket;
use crate::timed;
use tokio::time::{Instant, timeout};

/// The least progress demanded of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub min_bytes: u64,
    pub window: Duration,
}

/// Which way bytes move between levee and the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// The client sends (a request body).
    Recv,
    /// The client takes (a response).
    Send,
}

#[derive(Debug, Clone, Copy, Default)]
struct Meter {
    waited: Duration,
    bytes: u64,
}

impl Meter {
    /// Adds `bytes` moved after waiting `waited`; a window that saw enough
    /// bytes starts over.
    fn add(self, pace: Pace, waited: Duration, bytes: usize) -> Meter {
        let m = Meter {
            waited: self.waited + waited,
            bytes: self.bytes + bytes as u64,
        };
        if m.bytes >= pace.min_bytes {
            Meter::default()
        } else {
            m
        }
    }

    fn left(self, pace: Pace) -> Duration {
        pace.window.saturating_sub(self.waited)
    }
}

/// The same rule for a client with no socket of its own: an HTTP/2 stream
/// waiting for its client to open the flow-control window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pace: Option<Pace>,
    meter: Meter,
}

impl Progress {
    pub(crate) fn new(pace: Option<Pace>) -> Progress {
        Progress {
            pace,
            meter: Meter::default(),
        }
    }

    /// How long the next wait may last: `limit`, or less when the client's
    /// window is running out; `None` when it has run out.
    pub(crate) fn wait(&self, limit: Duration) -> Option<Duration> {
        match self.pace {
            None => Some(limit),
            Some(pace) => {
                let left = self.meter.left(pace);
                (!left.is_zero()).then(|| limit.min(left))
            }
        }
    }

    /// `bytes` granted after waiting `waited`.
    pub(crate) fn record(&mut self, waited: Duration, bytes: usize) {
        if let Some(pace) = self.pace {
            self.meter = self.meter.add(pace, waited, bytes);
        }
    }
}

struct ClientPace {
    fd: RawFd,
    pace: Pace,
    recv: Cell<Meter>,
    send: Cell<Meter>,
}

tokio::task_local! {
    static CLIENT: Option<ClientPace>;
}

/// Runs `f` with `pace` demanded of the client socket `client`.
pub(crate) fn scope<F: Future>(
    client: RawFd,
    pace: Option<Pace>,
    f: F,
) -> impl Future<Output = F::Output> {
    let state = pace.map(|pace| ClientPace {
        fd: client,
        pace,
        recv: Cell::default(),
        send: Cell::default(),
    });
    CLIENT.scope(state, f)
}

/// Reads what is left of the client's window for `dir` on `stream`, or
/// `None` when `stream` is not the paced client.
fn budget(stream: &impl Socket, dir: Dir) -> Option<Duration> {
    CLIENT
        .try_with(|c| {
            let c = c.as_ref().filter(|c| c.fd == stream.as_raw_fd())?;
            let meter = match dir {
                Dir::Recv => c.recv.get(),
                Dir::Send => c.send.get(),
            };
            Some(meter.left(c.pace))
        })
        .ok()
        .flatten()
}

/// Adds `bytes` moved after waiting `waited`; a window that saw enough bytes
/// starts over.
fn record(stream: &impl Socket, dir: Dir, waited: Duration, bytes: usize) {
    let _ = CLIENT.try_with(|c| {
        let Some(c) = c.as_ref().filter(|c| c.fd == stream.as_raw_fd()) else {
            return;
        };
        let cell = match dir {
            Dir::Recv => &c.recv,
            Dir::Send => &c.send,
        };
        cell.set(cell.get().add(c.pace, waited, bytes));
    });
}

/// Counts a cut-off client. A reader's socket is set to reset on close: a
/// graceful close would leave the kernel holding the unsent response (its
/// send buffer, megabytes once autotuned) for as long as the slow reader
/// keeps taking it.
fn cut(stream: &impl Socket, dir: Dir) {
    let c = levee_protect::metrics::counters();
    match dir {
        Dir::Recv => c.slow_body.fetch_add(1, Ordering::Relaxed),
        Dir::Send => {
            let _ = stream.set_zero_linger();
            c.slow_read.fetch_add(1, Ordering::Relaxed)
        }
    };
}

/// Why a paced operation stopped.
#[derive(Debug)]
pub(crate) enum PaceError {
    /// No progress within `limit`, or too little within the client's window.
    TimedOut,
    Io(std::io::Error),
}

/// `read_buf` within `limit`, and within the client's window when `stream`
/// is the paced client.
pub(crate) async fn read_buf(
    stream: &mut impl Socket,
    buf: &mut BytesMut,
    limit: Duration,
) -> Result<usize, PaceError> {
    let budget = budget(stream, Dir::Recv);
    if budget.is_some_and(|b| b.is_zero()) {
        cut(stream, Dir::Recv);
        return Err(PaceError::TimedOut);
    }
    let result = timed::within(limit.min(budget.unwrap_or(limit)), stream.read_buf(buf)).await;
    match result {
        Err(_) => {
            if budget.is_some_and(|b| b < limit) {
                cut(stream, Dir::Recv);
            }
            Err(PaceError::TimedOut)
        }
        Ok((Err(e), _)) => Err(PaceError::Io(e)),
        Ok((Ok(n), waited)) => {
            record(stream, Dir::Recv, waited, n);
            Ok(n)
        }
    }
}

/// `write_all` with each write within `limit`, and the whole within the
/// client's window when `stream` is the paced client.
pub(crate) async fn write_all(
    stream: &mut impl Socket,
    mut bytes: &[u8],
    limit: Duration,
) -> Result<(), PaceError> {
    while !bytes.is_empty() {
        let budget = budget(stream, Dir::Send);
        if budget.is_some_and(|b| b.is_zero()) {
            cut(stream, Dir::Send);
            return Err(PaceError::TimedOut);
        }
        match timed::within(limit.min(budget.unwrap_or(limit)), stream.write(bytes)).await {
            Err(_) => {
                if budget.is_some_and(|b| b < limit) {
                    cut(stream, Dir::Send);
                }
                return Err(PaceError::TimedOut);
            }
            Ok((Err(e), _)) => return Err(PaceError::Io(e)),
            Ok((Ok(0), _)) => return Err(PaceError::Io(std::io::ErrorKind::WriteZero.into())),
            Ok((Ok(n), waited)) => {
                record(stream, Dir::Send, waited, n);
                bytes = bytes.get(n..).unwrap_or_default();
            }
        }
    }
    // TLS may keep records it could not send yet; plain TCP has nothing
    // to flush and skips even the timer.
    if !stream.buffers_writes() {
        return Ok(());
    }
    match timed::within(limit, stream.flush()).await {
        Ok((r, _)) => r.map_err(PaceError::Io),
        Err(_) => Err(PaceError::TimedOut),
    }
}

/// Waits until `stream` is writable, within the client's window when it is
/// the paced client; `sent` is what the last write moved.
pub(crate) async fn writable(stream: &TcpStream, sent: usize) -> std::io::Result<()> {
    let budget = budget(stream, Dir::Send);
    let started = Instant::now();
    let ready = match budget {
        Some(b) if b.is_zero() => {
            cut(stream, Dir::Send);
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Some(b) => match timeout(b, stream.writable()).await {
            Ok(r) => r,
            Err(_) => {
                cut(stream, Dir::Send);
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        },
        None => stream.writable().await,
    };
    record(stream, Dir::Send, started.elapsed(), sent);
    ready
}

#[cfg(test)]
mod tests;
