//! Sending DATA on an HTTP/2 stream as the peer's flow-control window
//! allows, so a slow peer holds its source back instead of filling levee's
//! memory; and relaying an HTTP/1 body (a server's response, a client's
//! request) into DATA frames, its framing decoded.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::{Reason, SendStream};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::body::BodySink;
use crate::compress::Encoder;
use crate::h1::chunked::ChunkedDecoder;
use crate::message::Framing;
use crate::pace::Progress;

/// Read size from an HTTP/1 source: one DATA frame's worth.
const READ: usize = 16 * 1024;

/// How long a peer may keep its flow-control window shut while levee has
/// DATA for it. Towards a client: each wait within `timeouts.client_send`
/// and within the minimum progress (`[protect] min_progress`) over the
/// whole body, as for HTTP/1. Towards an upstream: as long as it takes
/// (the other side's reads have their own timeouts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    limit: Option<Duration>,
    progress: Progress,
    /// DATA bytes the peer's window let through so far.
    sent: u64,
}

impl Window {
    pub(crate) fn client(site: &crate::site::Site) -> Window {
        Window {
            limit: Some(site.timeouts.client_send),
            progress: Progress::new(site.pace),
            sent: 0,
        }
    }

    pub(crate) fn unbounded() -> Window {
        Window {
            limit: None,
            progress: Progress::new(None),
            sent: 0,
        }
    }

    /// DATA bytes handed to the peer so far (for the access log).
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }
}

/// Why DATA could not be sent or relayed.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The peer went away (reset the stream, or its connection ended).
    Gone,
    /// The source broke off or was malformed (an upstream failure mid-body).
    Broken,
    /// The peer kept its window shut for too long (`Window`).
    Slow,
}

impl From<h2::Error> for Fault {
    fn from(_: h2::Error) -> Fault {
        Fault::Gone
    }
}

/// Counts a client cut off for keeping its window shut, and resets its
/// stream; the connection's other streams go on.
pub(crate) fn cut_slow(send: &mut SendStream<Bytes>) {
    let counters = levee_protect::metrics::counters();
    counters.slow_read.fetch_add(1, Ordering::Relaxed);
    send.send_reset(Reason::CANCEL);
}

/// Sends `bytes` as the peer's window opens, within `window`; `end` ends
/// the stream with the last of them.
pub(crate) async fn data(
    send: &mut SendStream<Bytes>,
    mut bytes: Bytes,
    end: bool,
    window: &mut Window,
) -> Result<(), Fault> {
    if bytes.is_empty() {
        if end {
            send.send_data(bytes, true)?;
        }
        return Ok(());
    }
    while !bytes.is_empty() {
        send.reserve_capacity(bytes.len());
        let capacity = poll_fn(|cx| send.poll_capacity(cx));
        let (granted, waited) = match window.limit {
            None => (capacity.await, Duration::ZERO),
            Some(limit) => {
                let wait = window.progress.wait(limit).ok_or(Fault::Slow)?;
                let started = Instant::now();
                match tokio::time::timeout(wait, capacity).await {
                    Ok(granted) => (granted, started.elapsed()),
                    Err(_) => return Err(Fault::Slow),
                }
            }
        };
        let granted = match granted {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(Fault::Gone),
        };
        window.progress.record(waited, granted);
        if granted == 0 {
            continue;
        }
        let part = bytes.split_to(granted.min(bytes.len()));
        let n = part.len() as u64;
        send.send_data(part, end && bytes.is_empty())?;
        window.sent += n;
    }
    Ok(())
}

/// An HTTP/1 body and where it goes: the body delimited by `framing`,
/// read from a source whose first bytes are in `buf`.
pub(crate) struct Source<'a, R> {
    pub rd: &'a mut R,
    pub buf: &'a mut BytesMut,
    pub framing: Framing,
    /// Each read may take this long (none: the source's own deadlines).
    pub read_timeout: Option<Duration>,
}

/// Relays the body of `src` to `send` as DATA, the last frame with
/// END_STREAM, a copy of the data to `tee`; chunked trailers are dropped.
/// A reset of `send` while the source is waited for ends it (`Gone`).
/// Returns the data bytes relayed.
pub(crate) async fn relay<R: AsyncRead + Unpin>(
    src: Source<'_, R>,
    send: &mut SendStream<Bytes>,
    window: &mut Window,
    mut tee: Option<&mut dyn BodySink>,
    mut enc: Option<&mut Encoder>,
) -> Result<u64, Fault> {
    let Source {
        rd,
        buf,
        framing,
        read_timeout,
    } = src;
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    let mut chunks = (framing == Framing::Chunked).then(ChunkedDecoder::default);
    let mut relayed = 0u64;
    loop {
        if !buf.is_empty() {
            if let Some(decoder) = chunks.as_mut() {
                let fed = decoder.feed(buf).map_err(|_| Fault::Broken)?;
                let taken = buf.split_to(fed.consumed).freeze();
                let last = fed.data.len();
                for (i, range) in fed.data.into_iter().enumerate() {
                    let piece = taken.slice(range);
                    push(&mut tee, &piece, fed.done && i + 1 == last);
                    relayed += out(send, piece, false, window, &mut enc).await?;
                }
                if fed.done {
                    if last == 0 {
                        push(&mut tee, &[], true);
                    }
                    relayed += out(send, Bytes::new(), true, window, &mut enc).await?;
                    return Ok(relayed);
                }
            } else {
                let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                left -= take as u64;
                let piece = buf.split_to(take).freeze();
                push(&mut tee, &piece, left == 0);
                relayed += out(send, piece, left == 0, window, &mut enc).await?;
                if left == 0 {
                    return Ok(relayed);
                }
            }
        }
        buf.reserve(READ);
        let read = async {
            match read_timeout {
                Some(limit) => tokio::time::timeout(limit, rd.read_buf(buf))
                    .await
                    .unwrap_or(Ok(0)),
                None => rd.read_buf(buf).await,
            }
        };
        let read = tokio::select! {
            biased;
            read = read => read,
            _ = poll_fn(|cx| send.poll_reset(cx)) => return Err(Fault::Gone),
        };
        match read {
            Ok(1..) => {}
            // Only a body delimited by the end of the stream may end here.
            Ok(0) if framing == Framing::UntilClose => {
                push(&mut tee, &[], true);
                relayed += out(send, Bytes::new(), true, window, &mut enc).await?;
                return Ok(relayed);
            }
            _ => return Err(Fault::Broken),
        }
    }
}

/// Sends a piece of body data as DATA (`end`: the last), through `enc`
/// when the body is compressed (the encoder's end with the last piece).
/// The bytes sent.
async fn out(
    send: &mut SendStream<Bytes>,
    piece: Bytes,
    end: bool,
    window: &mut Window,
    enc: &mut Option<&mut Encoder>,
) -> Result<u64, Fault> {
    let piece = match enc.as_deref_mut() {
        None => piece,
        Some(e) => coded(e, &piece, end).ok_or(Fault::Broken)?,
    };
    let n = piece.len() as u64;
    data(send, piece, end, window).await?;
    Ok(n)
}

/// `piece` compressed by `e`, with the compressed stream's end when `end`;
/// `None` if the encoder failed.
pub(crate) fn coded(e: &mut Encoder, piece: &[u8], end: bool) -> Option<Bytes> {
    let mut coded = BytesMut::from(e.push(piece).ok()?);
    if end {
        coded.extend_from_slice(e.finish().ok()?);
    }
    Some(coded.freeze())
}

/// A copy of relayed body data for the cache; `done` when it is the last.
fn push(tee: &mut Option<&mut dyn BodySink>, bytes: &[u8], done: bool) {
    if let Some(t) = tee {
        t.push(bytes);
        if done {
            t.complete();
        }
    }
}
