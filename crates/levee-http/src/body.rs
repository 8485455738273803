//! Relaying a message body from one socket to another with backpressure.
//!
//! At most one buffer of `RELAY_CHUNK` bytes is in flight: levee reads again
//! only after the last read has been written, so a slow receiver slows the
//! sender down instead of growing a buffer. Chunked bodies are checked as
//! they pass, so a malformed one is cut off and never reaches the other side
//! as valid framing.
//!
//! Reads and writes on the client's socket also obey the exchange's minimum
//! progress (`pace.rs`), so a client that trickles a body or takes a
//! response a few bytes at a time is cut off, holding at most this one
//! buffer meanwhile. While a response relay waits for the upstream, the
//! client is watched (`gone.rs`): one that goes away stops the relay at
//! once instead of when the next bytes would have been written to it.

use std::time::Duration;

use crate::gone::Watch;
use crate::stream::Socket;
use bytes::{Buf, BytesMut};

use crate::h1::{ChunkError, ChunkedDecoder};
use crate::message::Framing;
use crate::pace::{self, PaceError};

/// Read size while relaying a body.
pub(crate) const RELAY_CHUNK: usize = 16 * 1024;

/// How the body leaves levee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// The coded bytes as they came (chunked stays chunked, trailers kept
    /// but those `h1::chunked` says are never forwarded).
    AsIs,
    /// Chunk data only, for a receiver that cannot take chunked (HTTP/1.0).
    Dechunked,
}

/// Why a relay stopped short. `Src*` faults are the sender's, `Dst*` the receiver's.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("sender timed out")]
    SrcTimeout,
    #[error("sender closed before the end of the body")]
    SrcClosed,
    #[error("sender: {0}")]
    SrcIo(std::io::Error),
    #[error("sender: {0}")]
    Chunk(#[from] ChunkError),
    #[error("body larger than allowed")]
    TooLarge,
    #[error("receiver timed out")]
    DstTimeout,
    #[error("receiver: {0}")]
    DstIo(std::io::Error),
    #[error("receiver went away")]
    DstGone,
    #[error("compressing: {0}")]
    Encode(std::io::Error),
}

impl RelayError {
    /// The receiver closed its connection (or reset it) before the end.
    pub fn receiver_gone(&self) -> bool {
        matches!(self, RelayError::DstGone | RelayError::DstIo(_))
    }
}

/// A relay that stopped short, with the body bytes the receiver was given
/// before (for the access log).
#[derive(Debug)]
pub struct Stopped {
    pub error: RelayError,
    pub sent: u64,
}

/// Where a relay copies the body data it passes on (the cache's fill).
pub trait BodySink: Send {
    /// Body data, before it is written to the receiver.
    fn push(&mut self, data: &[u8]);
    /// The whole body has been pushed. Called before its last bytes are
    /// written, so a client that has the whole response never finds the
    /// copy unfinished.
    fn complete(&mut self);
}

fn tee(sink: &mut Option<&mut dyn BodySink>, bytes: &[u8]) {
    if let Some(s) = sink {
        s.push(bytes);
    }
}

fn done(sink: &mut Option<&mut dyn BodySink>) {
    if let Some(s) = sink {
        s.complete();
    }
}

/// Limits and deadlines of one relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relay {
    pub framing: Framing,
    pub output: Output,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// Most body (data) bytes allowed; `None` for no limit.
    pub limit: Option<u64>,
}

impl Relay {
    /// Moves the body from `pending` (bytes already read) and `src` to `dst`,
    /// after `head`, which goes out in the same write as the first body bytes
    /// (one syscall for a small response). On success `pending` holds
    /// whatever followed the body. Returns the number of body bytes written.
    /// `tee`, if any, gets a copy of the body data. With `spare` (the
    /// receiver is the client), the receiver is watched while the sender is
    /// waited for, and what it sends meanwhile goes to `spare`. With `enc`
    /// the body data goes through it (compress.rs; `output` is then
    /// `Dechunked` and the encoder frames its own chunks), and the count
    /// is of the compressed bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run<'a, D: Socket + Watch>(
        &self,
        src: &mut impl Socket,
        pending: &mut BytesMut,
        dst: &'a mut D,
        head: Vec<u8>,
        tee: Option<&mut dyn BodySink>,
        spare: Option<&'a mut BytesMut>,
        enc: Option<&mut crate::compress::Encoder>,
    ) -> Result<u64, Stopped> {
        let mut out = Out {
            head,
            dst,
            tee,
            spare,
            sent: 0,
            enc,
        };
        let body = match self.framing {
            Framing::None => {
                done(&mut out.tee);
                Ok(0)
            }
            Framing::Length(n) => self.length(src, pending, &mut out, n).await,
            Framing::Chunked => self.chunked(src, pending, &mut out).await,
            Framing::UntilClose => self.until_close(src, pending, &mut out).await,
        };
        let result = match (body, out.enc.take()) {
            (Ok(_), Some(enc)) => match enc.finish() {
                Ok(tail) => self.write(&mut out, tail).await.map(|()| out.sent),
                Err(e) => Err(RelayError::Encode(e)),
            },
            (Ok(sent), None) if !out.head.is_empty() => {
                self.write(&mut out, &[]).await.map(|()| sent)
            }
            (other, _) => other,
        };
        result.map_err(|error| Stopped {
            error,
            sent: out.sent,
        })
    }

    async fn fill(
        &self,
        src: &mut impl Socket,
        pending: &mut BytesMut,
    ) -> Result<usize, RelayError> {
        pending.reserve(RELAY_CHUNK);
        pace::read_buf(src, pending, self.read_timeout)
            .await
            .map_err(|e| match e {
                PaceError::TimedOut => RelayError::SrcTimeout,
                PaceError::Io(e) => RelayError::SrcIo(e),
            })
    }

    /// Reads more of the body, first sending a waiting head so the receiver
    /// is not kept waiting on a slow sender. A watched receiver that goes
    /// away meanwhile stops the relay.
    async fn refill<D: Socket + Watch>(
        &self,
        src: &mut impl Socket,
        pending: &mut BytesMut,
        out: &mut Out<'_, '_, '_, D>,
    ) -> Result<usize, RelayError> {
        if !out.head.is_empty() {
            self.write(out, &[]).await?;
        }
        let Some(spare) = out.spare.as_deref_mut() else {
            return self.fill(src, pending).await;
        };
        // Polled only when the sender is not ready: the readiness of the
        // receiver's socket is cached by then, so this costs no syscall.
        tokio::select! {
            biased;
            read = self.fill(src, pending) => read,
            () = out.dst.gone(spare) => Err(RelayError::DstGone),
        }
    }

    async fn write(
        &self,
        out: &mut Out<'_, '_, '_, impl Socket>,
        bytes: &[u8],
    ) -> Result<(), RelayError> {
        let result = if out.head.is_empty() {
            pace::write_all(out.dst, bytes, self.write_timeout).await
        } else {
            out.head.extend_from_slice(bytes);
            let r = pace::write_all(out.dst, &out.head, self.write_timeout).await;
            crate::reuse::give_head(std::mem::take(&mut out.head));
            r
        };
        match result {
            Ok(()) => {
                out.sent += bytes.len() as u64;
                Ok(())
            }
            Err(PaceError::TimedOut) => Err(RelayError::DstTimeout),
            Err(PaceError::Io(e)) => Err(RelayError::DstIo(e)),
        }
    }

    /// Writes body data, through the encoder when there is one.
    async fn emit(
        &self,
        out: &mut Out<'_, '_, '_, impl Socket>,
        bytes: &[u8],
    ) -> Result<(), RelayError> {
        let Some(enc) = out.enc.take() else {
            return self.write(out, bytes).await;
        };
        let written = match enc.push(bytes) {
            Ok(coded) => self.write(out, coded).await,
            Err(e) => Err(RelayError::Encode(e)),
        };
        out.enc = Some(enc);
        written
    }

    async fn length(
        &self,
        src: &mut impl Socket,
        pending: &mut BytesMut,
        out: &mut Out<'_, '_, '_, impl Socket + Watch>,
        total: u64,
    ) -> Result<u64, RelayError> {
        if self.limit.is_some_and(|max| total > max) {
            return Err(RelayError::TooLarge);
        }
        let mut left = total;
        if total == 0 {
            done(&mut out.tee);
        }
        while left > 0 {
            if pending.is_empty() && self.refill(src, pending, out).await? == 0 {
                return Err(RelayError::SrcClosed);
            }
            let take = pending
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            tee(&mut out.tee, &pending[..take]);
            if take as u64 == left {
                done(&mut out.tee);
            }
            self.emit(out, &pending[..take]).await?;
            pending.advance(take);
            left -= take as u64;
        }
        Ok(total)
    }

    async fn chunked(
        &self,
        src: &mut impl Socket,
        pending: &mut BytesMut,
        out: &mut Out<'_, '_, '_, impl Socket + Watch>,
    ) -> Result<u64, RelayError> {
        let mut decoder = ChunkedDecoder::default();
        let mut sent = 0u64;
        let mut plain = Vec::new();
        // After a feed that did not finish the body, what is left in
        // `pending` (if anything) is a partial trailer line: read more.
        let mut stalled = false;
        loop {
            if (pending.is_empty() || stalled) && self.refill(src, pending, out).await? == 0 {
                return Err(RelayError::SrcClosed);
            }
            stalled = true;
            let fed = decoder.feed(pending)?;
            if self.limit.is_some_and(|max| decoder.data_len > max) {
                return Err(RelayError::TooLarge);
            }
            for range in &fed.data {
                tee(&mut out.tee, &pending[range.clone()]);
            }
            if fed.done {
                done(&mut out.tee);
            }
            match self.output {
                Output::AsIs => {
                    // The coded bytes, less the trailer lines not forwarded.
                    let mut from = 0;
                    for skip in &fed.skip {
                        self.write(out, &pending[from..skip.start]).await?;
                        sent += (skip.start - from) as u64;
                        from = skip.end;
                    }
                    self.write(out, &pending[from..fed.consumed]).await?;
                    sent += (fed.consumed - from) as u64;
                }
                Output::Dechunked => {
                    plain.clear();
                    for range in &fed.data {
                        plain.extend_from_slice(&pending[range.clone()]);
                    }
                    if !plain.is_empty() {
                        self.emit(out, &plain).await?;
                        sent += plain.len() as u64;
                    }
                }
            }
            pending.advance(fed.consumed);
            if fed.done {
                return Ok(sent);
            }
        }
    }

    async fn until_close(
        &self,
        src: &mut impl Socket,
        pending: &mut BytesMut,
        out: &mut Out<'_, '_, '_, impl Socket + Watch>,
    ) -> Result<u64, RelayError> {
        let mut sent = 0u64;
        loop {
            if pending.is_empty() && self.refill(src, pending, out).await? == 0 {
                done(&mut out.tee);
                return Ok(sent);
            }
            tee(&mut out.tee, pending);
            self.emit(out, pending).await?;
            sent += pending.len() as u64;
            pending.clear();
        }
    }
}

/// The receiving side of a relay, with a head still to go out first.
struct Out<'a, 't, 'e, D> {
    head: Vec<u8>,
    dst: &'a mut D,
    tee: Option<&'t mut dyn BodySink>,
    /// Where a watched receiver's own bytes go (see `Relay::run`).
    spare: Option<&'a mut BytesMut>,
    /// Body bytes written so far.
    sent: u64,
    /// The response's encoder when it is compressed (compress.rs).
    enc: Option<&'e mut crate::compress::Encoder>,
}
