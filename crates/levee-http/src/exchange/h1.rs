//! An exchange's end on an HTTP/1 connection: the client's socket and the
//! bytes read from it but not used yet. The request body is read from
//! them under its framing, under the client's minimum progress (pace.rs);
//! the response goes out as HTTP/1.1 bytes, flushed (TLS keeps sealed
//! records until asked).
//!
//! The relays between this end and an upstream are in `h1/relay.rs`.

mod h2;
mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use levee_protect::ConnPermit;

use crate::body::RELAY_CHUNK;
use crate::h1::ChunkedDecoder;
use crate::message::{Framing, RequestHead};
use crate::pace::{self, PaceError};
use crate::site::Site;
use crate::stream::ClientStream;
use levee_cache::body::Slice;

/// Body bytes read before a server is chosen.
const PREBUFFER: usize = 16 * 1024;

/// The client side of an HTTP/1 connection: its socket and the bytes read
/// but not yet used.
#[derive(Debug)]
pub struct Client {
    pub stream: ClientStream,
    pub peer: SocketAddr,
    pub buf: BytesMut,
    /// Its place in the listener's connection counts, given back on close.
    pub permit: Option<ConnPermit>,
    /// HSTS max-age for every response, on a TLS listener that sets one.
    pub hsts: Option<u64>,
}

/// `100 Continue`, for a client that waits for it before its body.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl Client {
    /// A client on `stream`, with nothing read yet.
    pub fn new(stream: ClientStream, peer: SocketAddr, permit: Option<ConnPermit>) -> Client {
        Client {
            stream,
            peer,
            buf: BytesMut::new(),
            permit,
            hsts: None,
        }
    }

    /// Writes `bytes` within `limit`. False if the client is gone.
    pub(crate) async fn send(&mut self, bytes: &[u8], limit: Duration) -> bool {
        crate::respond::send(&mut self.stream, bytes, limit).await
    }

    /// `100 Continue` for a client that asked for it and has sent no body
    /// byte yet. False if the client is gone.
    pub(crate) async fn send_continue(&mut self, head: &RequestHead, limit: Duration) -> bool {
        if !head.expect_continue || !self.buf.is_empty() {
            return true;
        }
        self.send(CONTINUE, limit).await
    }

    /// Resolves once the client has gone away (gone.rs); what it sends
    /// meanwhile is kept as its next request.
    pub(crate) async fn gone(&mut self) {
        crate::gone::gone(&mut self.stream, &mut self.buf).await
    }

    /// Reads more of the body into the buffer within `client_body` and the
    /// client's minimum progress: the bytes read, `Err(408)` if it
    /// stalled, `Err(400)` if it ended or failed.
    async fn read_more(&mut self, site: &Site) -> Result<usize, u16> {
        match pace::read_buf(&mut self.stream, &mut self.buf, site.timeouts.client_body).await {
            Ok(0) | Err(PaceError::Io(_)) => Err(400),
            Ok(n) => Ok(n),
            Err(PaceError::TimedOut) => Err(408),
        }
    }

    /// Reads the start of the request's body that
    /// [`super::body_start`] asks for, under the client's minimum progress.
    pub(crate) async fn read_body_start(
        &mut self,
        head: &RequestHead,
        site: &Site,
    ) -> Result<(), u16> {
        let Some(want) = super::body_start(head, site) else {
            return Ok(());
        };
        while self.buf.len() < want {
            self.buf.reserve(want - self.buf.len());
            self.read_more(site).await?;
        }
        Ok(())
    }

    /// Reads the request body to its end and drops it, under the client's
    /// minimum progress: 400 if it ends early or is malformed, 408 if it
    /// stalls, 413 past `most`. A client that asked `Expect: 100-continue`
    /// is answered at once instead, without its body (RFC 9110 §10.1.1).
    pub(crate) async fn drain_body(
        &mut self,
        head: &RequestHead,
        site: &Site,
        most: u64,
    ) -> Result<(), u16> {
        let mut chunks = ChunkedDecoder::default();
        let mut left = match head.framing {
            Framing::None | Framing::UntilClose => return Ok(()),
            _ if head.expect_continue => return Ok(()),
            Framing::Length(n) if n > most => return Err(413),
            Framing::Length(n) => n,
            Framing::Chunked => u64::MAX,
        };
        loop {
            if head.framing == Framing::Chunked {
                let fed = chunks.feed(&self.buf).map_err(|_| 400u16)?;
                if chunks.data_len > most {
                    return Err(413);
                }
                self.buf.advance(fed.consumed);
                if fed.done {
                    return Ok(());
                }
            } else {
                let take = self
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                self.buf.advance(take);
                left -= take as u64;
                if left == 0 {
                    return Ok(());
                }
            }
            self.buf.reserve(RELAY_CHUNK);
            self.read_more(site).await?;
        }
    }

    /// Reads the start of the request body before any upstream is
    /// contacted (as nginx's request buffering does, but bounded):
    /// malformed chunked framing and oversized chunked bodies are refused
    /// before a server sees the request, and a small body goes out with
    /// the head, so it can be sent again on a fresh connection. Answers
    /// `100 Continue` itself when the client waits for it. Returns the
    /// length of the body when all of it is buffered; `Err` carries the
    /// status for the client (`None`: the client is gone).
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
            match head.framing {
                Framing::Length(n) if self.buf.len() as u64 >= n => return Ok(Some(n as usize)),
                Framing::Chunked => {
                    let mut decoder = ChunkedDecoder::default();
                    let fed = decoder.feed(&self.buf).map_err(|_| Some(400))?;
                    if limit.is_some_and(|max| decoder.data_len > max) {
                        return Err(Some(413));
                    }
                    if fed.done {
                        // Trailer fields never forwarded (h1/chunked.rs) go.
                        return Ok(Some(fed.drop_skipped(&mut self.buf)));
                    }
                }
                _ => {}
            }
            if self.buf.len() >= want {
                return Ok(None);
            }
            if !continued {
                continued = true;
                if !self.send_continue(head, site.timeouts.client_send).await {
                    return Err(None);
                }
            }
            self.buf.reserve(PREBUFFER);
            match pace::read_buf(&mut self.stream, &mut self.buf, site.timeouts.client_body).await {
                Err(PaceError::TimedOut) => return Err(Some(408)),
                Ok(0) | Err(_) => return Err(None),
                Ok(_) => {}
            }
        }
    }

    /// The first `n` bytes read: a prebuffered body, as the client coded it.
    pub(crate) fn take_body(&mut self, n: usize) -> BytesMut {
        self.buf.split_to(n)
    }

    /// `sendfile` on plain TCP; over TLS the bytes pass through rustls.
    pub(crate) async fn send_file(
        &mut self,
        file: &std::fs::File,
        start: u64,
        len: u64,
        site: &Site,
    ) -> std::io::Result<u64> {
        match &mut self.stream {
            ClientStream::Plain(s) => crate::static_files::send_range(s, file, start, len).await,
            tls => {
                let limit = site.timeouts.client_send;
                crate::static_files::write_range(tls, file, start, len, limit).await
            }
        }
    }

    /// A stored response: a small one goes out in one write; a large one
    /// piece by piece under the client's minimum progress (pace.rs), as a
    /// relayed body does. False if the client is gone or too slow.
    pub(crate) async fn send_stored(
        &mut self,
        answer: crate::cache::reply::Answer,
        d: &crate::shape::Dress<'_>,
        site: &Site,
    ) -> bool {
        let body_len = answer.body_len();
        let mut head = answer.head;
        // A hit is the same response as the miss was: HSTS, header rules
        // and the request id included.
        crate::shape::h1_head(&mut head, d);
        let limit = site.timeouts.client_send;
        // A small response in memory goes out in one write; a large one
        // piece by piece under the client's minimum progress (pace.rs), as
        // a relayed body does, and a disk tier body with `sendfile`.
        let in_memory = answer.body.iter().all(|s| matches!(s, Slice::Bytes(_)));
        if in_memory && body_len <= 16 * 1024 {
            let mut all = head;
            for slice in &answer.body {
                if let Slice::Bytes(b) = slice {
                    all.extend_from_slice(b);
                }
            }
            return pace::write_all(&mut self.stream, &all, limit).await.is_ok();
        }
        if pace::write_all(&mut self.stream, &head, limit)
            .await
            .is_err()
        {
            return false;
        }
        for slice in &answer.body {
            let ok = match slice {
                Slice::Bytes(b) => pace::write_all(&mut self.stream, b, limit).await.is_ok(),
                Slice::File { region, start, len } => {
                    // Boxed: the file sender's state would widen every
                    // connection's future (conn.rs's size test); a disk
                    // tier body pays one box next to its sendfile calls.
                    let sent = Box::pin(self.send_file(&region.file, *start, *len, site)).await;
                    if let Err(e) = &sent {
                        // The head is out: all that is left is to close.
                        tracing::debug!(peer = %self.peer, error = %e, "cache: disk tier body stopped");
                    }
                    sent.is_ok()
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }
}
