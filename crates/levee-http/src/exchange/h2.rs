//! An exchange's end on an HTTP/2 stream: the request body is the
//! stream's DATA (`RecvStream`), read under `client_body` and the minimum
//! progress; the response is HEADERS, then DATA as the client's window
//! allows (`send.rs`), so a slow client holds its source back. Nothing
//! here goes through HTTP/1 text: a server's HTTP/1 head becomes HEADERS
//! field by field (`head.rs`), its body DATA as its framing is decoded.
//!
//! A client that resets the stream, or whose connection ends, is seen by
//! whichever wait the exchange is in (`gone`, a read, a send); the stream
//! is then logged 499 with the DATA bytes its window let through
//! (http2/stream.rs). A response that cannot be finished (its source broke
//! off, or levee had none to give) resets the stream with INTERNAL_ERROR.

pub(crate) mod head;
mod recv;
mod relay;
pub(crate) mod send;

use std::future::poll_fn;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::Response;

use crate::exchange::Reply;
use crate::message::{Framing, RequestHead, ResponseHead};
use crate::pace::Progress;
use crate::shape::Dress;
use crate::site::Site;
pub(crate) use head::append as append_field;
use levee_cache::body::Slice;
pub(crate) use send::Window;
use send::{Fault, cut_slow, data};

/// One HTTP/2 stream's end of its exchange.
#[derive(Debug)]
pub struct Stream {
    /// The request body.
    body: RecvStream,
    /// The response, before its HEADERS.
    respond: SendResponse<Bytes>,
    /// The response's DATA side, once its HEADERS went out without ending it.
    send: Option<SendStream<Bytes>>,
    /// A body of levee's own still to send: the frame that takes the last
    /// of it ends the stream.
    left: u64,
    /// HEADERS went out.
    headed: bool,
    /// The response ended (END_STREAM) or was reset.
    closed: bool,
    /// Body data read ahead and not yet used (prebuffer).
    pre: BytesMut,
    /// The request body ended (END_STREAM seen).
    ended: bool,
    /// Request body data taken so far.
    received: u64,
    /// The client's flow-control window and minimum progress, for the response.
    window: Window,
    /// The minimum progress of the body the client sends.
    recv: Progress,
    /// The client reset the stream, or its connection ended.
    gone: bool,
    /// The address the client connected to (for PROXY headers).
    local: Option<SocketAddr>,
}

impl Stream {
    /// The end of a stream whose request body is `body` (already ended
    /// when its HEADERS carried END_STREAM).
    pub(crate) fn new(
        body: RecvStream,
        respond: SendResponse<Bytes>,
        site: &Site,
        local: Option<SocketAddr>,
    ) -> Stream {
        Stream {
            ended: body.is_end_stream(),
            body,
            respond,
            send: None,
            left: 0,
            headed: false,
            closed: false,
            pre: BytesMut::new(),
            received: 0,
            window: Window::client(site),
            recv: Progress::new(site.pace),
            gone: false,
            local,
        }
    }

    /// The client went away before the response was complete.
    pub(crate) fn went_away(&self) -> bool {
        self.gone
    }

    /// The request body ended (or there was none).
    pub(crate) fn body_ended(&self) -> bool {
        self.ended && self.pre.is_empty()
    }

    /// A bodiless status of levee's own, the stream ended with it.
    pub(crate) fn send_bare(&mut self, status: u16, d: &Dress<'_>) {
        let response = head::with_status(status).or_else(|| head::with_status(502));
        if let Some(response) = response {
            self.start(response, true, d);
        }
    }

    /// DATA bytes the client's window let through.
    pub(crate) fn sent(&self) -> u64 {
        self.window.sent()
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Resolves once the client resets the stream or its connection ends.
    pub(crate) async fn gone(&mut self) {
        match self.send.as_mut() {
            Some(send) => {
                let _ = poll_fn(|cx| send.poll_reset(cx)).await;
            }
            None => {
                let _ = poll_fn(|cx| self.respond.poll_reset(cx)).await;
            }
        }
        self.gone = true;
    }

    /// Ends what the exchange left open: a response never given, or one
    /// cut short, resets the stream.
    pub(crate) fn finish(&mut self) {
        if self.gone || self.closed {
            return;
        }
        match self.send.as_mut() {
            Some(send) => send.send_reset(Reason::INTERNAL_ERROR),
            None => self.respond.send_reset(Reason::INTERNAL_ERROR),
        }
        self.closed = true;
    }

    /// Sends the response's HEADERS, ending the stream with them if `end`.
    /// False if the client is gone.
    fn start(&mut self, mut response: Response<()>, end: bool, d: &Dress<'_>) -> bool {
        crate::shape::h2_head(response.headers_mut(), d);
        self.headed = true;
        match self.respond.send_response(response, end) {
            Ok(send) => {
                if end {
                    self.closed = true;
                } else {
                    self.send = Some(send);
                }
                true
            }
            Err(_) => {
                self.gone = true;
                self.closed = true;
                false
            }
        }
    }

    /// A status HTTP/2 cannot carry: the stream is reset.
    fn unfit(&mut self) -> bool {
        self.respond.send_reset(Reason::INTERNAL_ERROR);
        self.closed = true;
        false
    }

    /// Sends body bytes of levee's own; the last ends the stream.
    async fn own_data(&mut self, bytes: Bytes) -> bool {
        let Some(send) = self.send.as_mut() else {
            return bytes.is_empty();
        };
        let len = bytes.len() as u64;
        let end = len >= self.left;
        self.left = self.left.saturating_sub(len);
        match data(send, bytes, end, &mut self.window).await {
            Ok(()) => {
                self.closed |= end;
                true
            }
            Err(fault) => {
                self.failed(fault);
                false
            }
        }
    }

    /// What a failed send says of the client.
    fn failed(&mut self, fault: Fault) {
        match fault {
            Fault::Gone => self.gone = true,
            Fault::Slow => {
                if let Some(send) = self.send.as_mut() {
                    cut_slow(send);
                }
            }
            Fault::Broken => {
                if let Some(send) = self.send.as_mut() {
                    send.send_reset(Reason::INTERNAL_ERROR);
                }
            }
        }
        self.closed = true;
    }

    /// A head of levee's own (`Server`, `Date`, `fields`) with a body of
    /// `body` bytes to follow (none for a HEAD). False if the client is gone.
    pub(crate) fn send_own_head<'f>(
        &mut self,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
        body: u64,
        d: &Dress<'_>,
    ) -> bool {
        let Some(mut response) = head::own(status) else {
            return self.unfit();
        };
        let headers = response.headers_mut();
        for (name, value) in fields {
            head::append(headers, name, value);
        }
        self.left = body;
        self.start(response, body == 0, d)
    }

    /// A whole response of levee's own. False if the client is gone.
    pub(crate) async fn send_reply(
        &mut self,
        reply: &Reply<'_>,
        head_only: bool,
        d: &Dress<'_>,
    ) -> bool {
        let has_body = !crate::message::status_has_no_body(reply.status);
        let length = has_body.then(|| reply.body.len().to_string());
        let mut fields: Vec<(&[u8], &[u8])> = reply
            .fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), *v))
            .collect();
        if let Some(length) = &length {
            fields.push((b"content-type", reply.content_type.as_bytes()));
            fields.push((b"content-length", length.as_bytes()));
        }
        let body = if has_body && !head_only {
            reply.body.len() as u64
        } else {
            0
        };
        if !self.send_own_head(reply.status, fields.into_iter(), body, d) {
            return false;
        }
        body == 0 || self.own_data(Bytes::copy_from_slice(&reply.body)).await
    }

    /// A head with `fields` as they are and a body of unknown length to
    /// follow (a compressed cache hit). False if the client is gone.
    pub(crate) fn send_coded_head<'f>(
        &mut self,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
        d: &crate::shape::Dress<'_>,
    ) -> bool {
        let Some(mut response) = head::with_status(status) else {
            return self.unfit();
        };
        for (name, value) in fields {
            if !crate::message::is_hop_by_hop(name) {
                head::append(response.headers_mut(), name, value);
            }
        }
        self.left = u64::MAX;
        self.start(response, false, d)
    }

    /// The last body bytes of levee's own, ending the stream.
    pub(crate) async fn send_end(&mut self, bytes: &[u8]) -> bool {
        self.left = bytes.len() as u64;
        self.own_data(Bytes::copy_from_slice(bytes)).await
    }

    /// Body bytes of levee's own after its head (multipart preambles).
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) -> bool {
        self.own_data(Bytes::copy_from_slice(bytes)).await
    }

    /// `len` bytes of `file` from `start`, read a DATA frame's worth at a time.
    pub(crate) async fn send_file(
        &mut self,
        file: &std::fs::File,
        start: u64,
        len: u64,
    ) -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        const PIECE: u64 = 16 * 1024;
        let mut sent = 0u64;
        while sent < len {
            let want = usize::try_from((len - sent).min(PIECE)).unwrap_or(0);
            let mut piece = BytesMut::zeroed(want);
            let read = file.read_at(&mut piece, start.saturating_add(sent))?;
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ));
            }
            piece.truncate(read);
            if !self.own_data(piece.freeze()).await {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            sent += read as u64;
        }
        Ok(sent)
    }

    /// A response from the cache's store: `status`, the field lines levee
    /// stored and wrote, then the body pieces.
    pub(crate) async fn send_stored(
        &mut self,
        status: u16,
        lines: &[u8],
        body: Vec<Slice>,
        head_only: bool,
        d: &Dress<'_>,
    ) -> bool {
        let Some(mut response) = head::with_status(status) else {
            return self.unfit();
        };
        let len: u64 = body.iter().map(Slice::len).sum();
        let headers = response.headers_mut();
        head::append_lines(headers, lines);
        if status != 304 && status != 204 {
            head::append(headers, b"content-length", len.to_string().as_bytes());
        }
        let len = if head_only { 0 } else { len };
        self.left = len;
        if !self.start(response, len == 0, d) {
            return false;
        }
        if head_only {
            return true;
        }
        for slice in body {
            let ok = match slice {
                Slice::Bytes(piece) => piece.is_empty() || self.own_data(piece).await,
                // A disk tier body, read a frame at a time as a static file is.
                Slice::File { region, start, len } => {
                    self.send_file(&region.file, start, len).await.is_ok()
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// `100 Continue` for a client that asked for it and sent no body yet.
    pub(crate) fn send_continue(&mut self, head: &RequestHead) -> bool {
        if !head.expect_continue || self.received > 0 || self.ended {
            return true;
        }
        let Some(go) = head::with_status(100) else {
            return true;
        };
        if self.respond.send_informational(go).is_err() {
            self.gone = true;
            return false;
        }
        true
    }

    /// A server's head without a body (HEAD), `extra` lines added.
    pub(crate) fn send_upstream_head(
        &mut self,
        resp: &ResponseHead,
        extra: &[u8],
        d: &Dress<'_>,
    ) -> bool {
        let Some(mut response) = head::of_upstream(resp) else {
            return self.unfit();
        };
        head::append_lines(response.headers_mut(), extra);
        self.start(response, true, d)
    }

    /// Relays an HTTP/1 server's response to `req`: HEADERS (`extra` lines
    /// added), then its body decoded into DATA, a copy to `tee`. The body bytes
    /// relayed, or why it stopped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn relay_response_h1(
        &mut self,
        req: &RequestHead,
        resp: &ResponseHead,
        extra: &[u8],
        d: &Dress<'_>,
        up: &mut levee_upstream::UpstreamStream,
        buf: &mut BytesMut,
        tee: Option<&mut dyn crate::body::BodySink>,
        read_timeout: std::time::Duration,
        mut enc: Option<Box<crate::compress::Encoder>>,
    ) -> Result<u64, crate::body::Stopped> {
        use crate::body::{RelayError, Stopped};
        let stopped = |error, sent| Err(Stopped { error, sent });
        let Some(mut response) = head::of_upstream(resp) else {
            self.unfit();
            return stopped(RelayError::SrcClosed, 0);
        };
        if let Some(e) = enc.as_deref() {
            crate::compress::edit_map(response.headers_mut(), e.coding());
        }
        crate::compress::etag_for_304_map(req, resp.status, response.headers_mut());
        head::append_lines(response.headers_mut(), extra);
        let empty = matches!(resp.framing, Framing::None | Framing::Length(0));
        if empty {
            if let Some(t) = tee {
                t.complete();
            }
            return match self.start(response, true, d) {
                true => Ok(0),
                false => stopped(RelayError::DstGone, 0),
            };
        }
        if !self.start(response, false, d) {
            return stopped(RelayError::DstGone, 0);
        }
        let Some(send) = self.send.as_mut() else {
            return stopped(RelayError::DstGone, 0);
        };
        let src = send::Source {
            rd: up,
            buf,
            framing: resp.framing,
            read_timeout: Some(read_timeout),
        };
        let before = self.window.sent();
        match send::relay(src, send, &mut self.window, tee, enc.as_deref_mut()).await {
            Ok(n) => {
                self.closed = true;
                Ok(n)
            }
            Err(fault) => {
                let error = match fault {
                    Fault::Gone => RelayError::DstGone,
                    Fault::Slow => RelayError::DstTimeout,
                    Fault::Broken => RelayError::SrcClosed,
                };
                self.failed(fault);
                stopped(error, self.window.sent() - before)
            }
        }
    }
}

#[cfg(test)]
mod tests;
