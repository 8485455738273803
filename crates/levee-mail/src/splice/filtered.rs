//! The submission filter ([`crate::smtp::filter`]) as a relay: each read
//! goes through it, and what it gives a side is written there at once, or
//! queued behind what that side is still owed. While the client waits for
//! the backend's replies, nothing is read from the client.
//!
//! What it costs over the raw relay, on submission sessions only: the
//! filter's state (a few words and empty `Vec`s; submission's relay is
//! boxed, so IMAP and POP3 tasks do not grow), a scan of each read for line
//! ends, and a write per piece when a read is split (a refused line, an
//! EHLO reply rewritten).

use std::io;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Half, Relay, Splice, Way, pump, read_scratch, send, settle};
use crate::smtp::filter::{Filter, Refused, Sink};

impl<C, B> Splice<C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    /// The same relay as a submission session's, its client bytes read
    /// through [`Filter`] from now on, what was pipelined behind AUTH
    /// first. `chunking`: the backend offered CHUNKING.
    pub fn filtered(mut self, chunking: bool) -> Splice<C, B, Filter> {
        let pending = std::mem::take(&mut self.up.unsent);
        self.with_relay(Filter::new(chunking, pending))
    }
}

/// Where one pump's filtered bytes go: toward its own side through
/// [`send`], toward the other queued behind what that side is owed.
struct Out<'a, 'c, W> {
    cx: &'a mut Context<'c>,
    to: &'a mut W,
    unsent: &'a mut Vec<u8>,
    count: &'a mut u64,
    other: &'a mut Vec<u8>,
    /// `to` is the backend (the client's pump) or the client.
    toward_backend: bool,
    error: Option<io::Error>,
}

impl<'a, 'c, W: AsyncWrite + Unpin> Out<'a, 'c, W> {
    /// `halves`: the pump's own direction, then the other.
    fn new(
        cx: &'a mut Context<'c>,
        (half, other): (&'a mut Half, &'a mut Half),
        to: &'a mut W,
        count: &'a mut u64,
        toward_backend: bool,
    ) -> Self {
        Out {
            cx,
            to,
            unsent: &mut half.unsent,
            count,
            other: &mut other.unsent,
            toward_backend,
            error: None,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = send(self.cx, self.to, self.unsent, self.count, bytes)
        {
            self.error = Some(e);
        }
    }

    /// The first write error, if any.
    fn finish(self) -> io::Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

impl<W: AsyncWrite + Unpin> Sink for Out<'_, '_, W> {
    fn backend(&mut self, bytes: &[u8]) {
        if self.toward_backend {
            self.write(bytes);
        } else {
            self.other.extend_from_slice(bytes);
        }
    }

    fn client(&mut self, bytes: &[u8]) {
        if self.toward_backend {
            self.other.extend_from_slice(bytes);
        } else {
            self.write(bytes);
        }
    }

    fn refused(&mut self, what: Refused) {
        crate::metrics::refused_command(what);
    }
}

impl Relay for Filter {
    fn pump_up<R, W>(&mut self, cx: &mut Context<'_>, way: Way<'_, R, W>) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        if let Some(moved) = ready!(settle(cx, way.half, way.to, way.count))? {
            return Poll::Ready(Ok(moved));
        }
        if self.waiting() {
            if way.other.eof {
                // The backend is gone: nothing will answer what the client
                // waits for, so its side ends too.
                way.half.eof = true;
                return Poll::Ready(Ok(true));
            }
            // Freed by the backend's replies: the backend's read, polled in
            // the same turn, is what wakes this task.
            return Poll::Pending;
        }
        if self.has_held() {
            let mut out = Out::new(cx, (way.half, way.other), way.to, way.count, true);
            self.resume(&mut out);
            return Poll::Ready(out.finish().map(|()| true));
        }
        read_scratch(cx, way.from, way.half, |cx, half, data| {
            let mut out = Out::new(cx, (half, way.other), way.to, way.count, true);
            self.client_bytes(data, &mut out);
            Poll::Ready(out.finish().map(|()| true))
        })
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
        pump(cx, way, answer_ends, |cx, halves, to, count, data| {
            let mut out = Out::new(cx, halves, to, count, false);
            self.backend_bytes(data, &mut out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            out.finish()
        })
    }
}
