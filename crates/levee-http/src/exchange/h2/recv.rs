//! The request body of an HTTP/2 stream: its DATA frames, read within
//! `client_body` and the minimum progress, the window given back to the
//! client only once levee holds or has passed on the bytes (so a slow
//! server slows the client). Towards an HTTP/1 server the body goes as the
//! head's framing says: as it is under a `content-length`, else chunked.

use std::io::Write as _;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use levee_config::Timeouts;
use levee_upstream::{Fault, UpstreamStream};
use tokio::io::AsyncWriteExt;

use super::Stream;
use crate::message::{Framing, RequestHead};
use crate::site::Site;

/// Body bytes read before a server is chosen (as for HTTP/1).
const PREBUFFER: usize = 16 * 1024;

/// Why the next DATA frame did not come.
#[derive(Debug)]
pub(super) enum Stall {
    /// Too slow: `client_body`, or the minimum progress (408).
    Slow,
    /// The client reset the stream, or its body was malformed (the `h2`
    /// crate reset it, as for a body longer than its `content-length`).
    Broken,
}

impl Stall {
    fn status(&self) -> u16 {
        match self {
            Stall::Slow => 408,
            Stall::Broken => 400,
        }
    }
}

impl Stream {
    /// The next DATA frame's bytes (`None`: the body ended), waited for
    /// within `limit` and what is left of the client's progress window.
    /// The caller gives the window back ([`Stream::taken`]).
    pub(super) async fn next_data(
        &mut self,
        limit: std::time::Duration,
    ) -> Result<Option<Bytes>, Stall> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let Some(wait) = self.recv.wait(limit) else {
                return Err(slow());
            };
            match crate::timed::within(wait, self.body.data()).await {
                Err(_) if wait < limit => return Err(slow()),
                Err(_) => return Err(Stall::Slow),
                Ok((None, _)) => {
                    self.ended = true;
                    return Ok(None);
                }
                Ok((Some(Err(_)), _)) => return Err(Stall::Broken),
                Ok((Some(Ok(data)), waited)) => {
                    self.recv.record(waited, data.len());
                    self.received += data.len() as u64;
                    if self.body.is_end_stream() {
                        self.ended = true;
                    }
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// `n` bytes of the body are in levee or passed on: the client may send more.
    pub(super) fn taken(&mut self, n: usize) {
        let _ = self.body.flow_control().release_capacity(n);
    }

    /// Reads the next DATA frame into the read-ahead buffer.
    async fn read_ahead(&mut self, site: &Site) -> Result<bool, Stall> {
        match self.next_data(site.timeouts.client_body).await? {
            None => Ok(false),
            Some(data) => {
                let n = data.len();
                self.pre.extend_from_slice(&data);
                self.taken(n);
                Ok(true)
            }
        }
    }

    /// As `Client::read_body_start`: the start of the body that
    /// `exchange::body_start` asks for, under the minimum progress.
    pub(crate) async fn read_body_start(
        &mut self,
        head: &RequestHead,
        site: &Site,
    ) -> Result<(), u16> {
        let Some(want) = crate::exchange::body_start(head, site) else {
            return Ok(());
        };
        while self.pre.len() < want {
            match self.read_ahead(site).await {
                Ok(true) => {}
                Ok(false) => return Err(400),
                Err(stall) => return Err(stall.status()),
            }
        }
        Ok(())
    }

    /// As `Client::drain_body`: the whole body read and dropped.
    pub(crate) async fn drain_body(
        &mut self,
        head: &RequestHead,
        site: &Site,
        most: u64,
    ) -> Result<(), u16> {
        match head.framing {
            Framing::None | Framing::UntilClose => return Ok(()),
            _ if head.expect_continue => return Ok(()),
            Framing::Length(n) if n > most => return Err(413),
            _ => {}
        }
        self.pre.clear();
        loop {
            if self.received > most {
                return Err(413);
            }
            match self.next_data(site.timeouts.client_body).await {
                Ok(None) => return Ok(()),
                Ok(Some(data)) => self.taken(data.len()),
                Err(stall) => return Err(stall.status()),
            }
        }
    }

    /// As `Client::prebuffer`: up to 16 KiB of the body before a server is
    /// chosen; `Ok(Some(len))` when that is all of it.
    pub(crate) async fn prebuffer(
        &mut self,
        head: &RequestHead,
        site: &Site,
        limit: Option<u64>,
    ) -> Result<Option<usize>, Option<u16>> {
        let want = match head.framing {
            Framing::None | Framing::UntilClose => return Ok(Some(0)),
            Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX).min(PREBUFFER),
            Framing::Chunked => PREBUFFER,
        };
        let mut continued = false;
        loop {
            if limit.is_some_and(|max| self.received > max) {
                return Err(Some(413));
            }
            match head.framing {
                Framing::Length(n) if self.pre.len() as u64 >= n => return Ok(Some(n as usize)),
                // Ended short of its length: the client broke off.
                Framing::Length(_) if self.ended => return Err(None),
                _ if self.ended => return Ok(Some(self.pre.len())),
                _ => {}
            }
            if self.pre.len() >= want {
                return Ok(None);
            }
            if !continued {
                continued = true;
                if !self.send_continue(head) {
                    return Err(None);
                }
            }
            match self.read_ahead(site).await {
                Ok(_) => {}
                Err(Stall::Slow) => return Err(Some(408)),
                Err(Stall::Broken) => return Err(None),
            }
        }
    }

    /// The whole body [`Stream::prebuffer`] read (`len` bytes), as an
    /// HTTP/1 server must receive it under the head's framing.
    pub(crate) fn take_body(&mut self, head: &RequestHead, len: usize) -> BytesMut {
        let data = self.pre.split_to(len.min(self.pre.len()));
        if head.framing != Framing::Chunked {
            return data;
        }
        let mut coded = BytesMut::with_capacity(data.len() + 16);
        chunk(&mut coded, &data);
        coded.extend_from_slice(b"0\r\n\r\n");
        coded
    }

    /// Streams the rest of the body (what the read-ahead holds, then DATA
    /// as it comes) to an HTTP/1 server, chunked when it has no length,
    /// within `limit` bytes; a client's trailers are not forwarded.
    pub(crate) async fn relay_body_h1(
        &mut self,
        head: &RequestHead,
        up: &mut UpstreamStream,
        t: &Timeouts,
        limit: Option<u64>,
    ) -> Result<(), Fault> {
        let chunked = head.framing == Framing::Chunked;
        let client = |status, why: &'static str| Fault::ClientBody {
            status,
            why: why.into(),
        };
        let mut out = BytesMut::new();
        let mut next = self.pre.split().freeze();
        loop {
            if limit.is_some_and(|max| self.received > max) {
                return Err(client(413, "body larger than allowed"));
            }
            if !next.is_empty() {
                out.clear();
                if chunked {
                    chunk(&mut out, &next);
                } else {
                    out.extend_from_slice(&next);
                }
                write(up, &out, t).await?;
            }
            match self.next_data(t.client_body).await {
                Ok(Some(data)) => {
                    self.taken(data.len());
                    next = data;
                }
                Ok(None) => break,
                Err(Stall::Slow) => return Err(client(408, "the client stalled")),
                // The client reset the stream: it is gone, nothing to answer.
                Err(Stall::Broken) => return Err(client(499, "the client reset the stream")),
            }
        }
        if chunked {
            write(up, b"0\r\n\r\n", t).await?;
        }
        Ok(())
    }
}

/// A minimum-progress cut of a client sending its body.
fn slow() -> Stall {
    let counters = levee_protect::metrics::counters();
    counters.slow_body.fetch_add(1, Ordering::Relaxed);
    Stall::Slow
}

/// `data` as one chunk of the chunked coding.
fn chunk(out: &mut BytesMut, data: &[u8]) {
    let mut size = [0u8; 18];
    let mut cursor = std::io::Cursor::new(&mut size[..]);
    // At most 16 hex digits and CRLF: the write cannot fail.
    let _ = write!(cursor, "{:x}\r\n", data.len());
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    out.extend_from_slice(size.get(..len).unwrap_or_default());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Writes `bytes` to the server within `upstream_write`.
async fn write(up: &mut UpstreamStream, bytes: &[u8], t: &Timeouts) -> Result<(), Fault> {
    let write = async {
        up.write_all(bytes).await?;
        up.flush().await
    };
    match crate::timed::within(t.upstream_write, write).await {
        Err(_) => Err(Fault::WriteTimeout),
        Ok((Err(e), _)) => Err(Fault::Write(e)),
        Ok((Ok(()), _)) => Ok(()),
    }
}
