//! The relays between an HTTP/1 client and an HTTP/1 upstream: the
//! request body as the client coded it, interim responses, the response
//! with its head in the same write as the first body bytes (chunked stays
//! chunked), and the tunnel of an upgraded connection. These are the
//! plain proxy path's fast steps (docs/architecture.md).

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use levee_config::Timeouts;
use levee_upstream::{Fault, UpstreamStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use super::Client;
use crate::body::{BodySink, Output, Relay, RelayError, Stopped};
use crate::message::{RequestHead, ResponseHead, Version};

/// Bytes read from either side of a tunnel at a time.
const TUNNEL_CHUNK: usize = 16 * 1024;

impl Client {
    /// Streams the rest of the request body (after what went with the
    /// head) to the server, as the client coded it, within `limit` bytes.
    pub(crate) async fn relay_body_h1(
        &mut self,
        head: &RequestHead,
        up: &mut UpstreamStream,
        t: &Timeouts,
        limit: Option<u64>,
    ) -> Result<(), Fault> {
        let relay = Relay {
            framing: head.framing,
            output: Output::AsIs,
            read_timeout: t.client_body,
            write_timeout: t.upstream_write,
            limit,
        };
        let relayed = relay
            .run(
                &mut self.stream,
                &mut self.buf,
                up,
                Vec::new(),
                None,
                None,
                None,
            )
            .await;
        let Err(Stopped { error, .. }) = relayed else {
            return Ok(());
        };
        let client = |status, why: RelayError| Fault::ClientBody {
            status,
            why: Box::new(why),
        };
        Err(match error {
            RelayError::DstTimeout => Fault::WriteTimeout,
            RelayError::DstIo(e) => Fault::Write(e),
            RelayError::DstGone => Fault::Closed,
            e @ RelayError::SrcTimeout => client(408, e),
            e @ RelayError::TooLarge => client(413, e),
            e @ RelayError::Chunk(_) => client(400, e),
            // Never for a request body: it is not compressed.
            e @ RelayError::Encode(_) => client(500, e),
            // The client broke off: it is gone, nothing to answer.
            e @ (RelayError::SrcClosed | RelayError::SrcIo(_)) => client(499, e),
        })
    }

    /// An interim (1xx) response of the server's, passed on to an HTTP/1.1
    /// client; 100 Continue was levee's to give.
    pub(crate) async fn send_interim(
        &mut self,
        resp: &ResponseHead,
        head: &RequestHead,
        limit: Duration,
    ) {
        if resp.status != 100 && head.version == Version::Http11 {
            let bytes = crate::h1::head::interim(resp);
            let _ = self.send(&bytes, limit).await;
        }
    }

    /// Relays the server's response: `out_head` (the client's head) goes
    /// out with the first body bytes, then the body as `relay` says
    /// (through `enc` when it is compressed), a copy to `tee` when the
    /// cache takes one. The client is watched while
    /// the server is waited for; what it sends meanwhile is kept.
    pub(crate) async fn relay_response_h1(
        &mut self,
        relay: &Relay,
        up: &mut UpstreamStream,
        buf: &mut BytesMut,
        out_head: Vec<u8>,
        tee: Option<&mut dyn BodySink>,
        enc: Option<&mut crate::compress::Encoder>,
    ) -> Result<u64, Stopped> {
        relay
            .run(
                up,
                buf,
                &mut self.stream,
                out_head,
                tee,
                Some(&mut self.buf),
                enc,
            )
            .await
    }

    /// Sends the 101 `head` and moves bytes both ways until a side closes,
    /// a write stalls, or nothing moves for `tunnel_idle`; `from_up` is what
    /// the server sent behind its 101. Returns the bytes sent to the client
    /// (`None` if the 101 could not be sent).
    pub(crate) async fn tunnel(
        &mut self,
        head: &[u8],
        up: &mut UpstreamStream,
        from_up: BytesMut,
        t: &Timeouts,
    ) -> Option<u64> {
        if !self.send(head, t.client_send).await {
            return None;
        }
        Some(self.pump(up, from_up, t).await)
    }

    async fn pump(&mut self, up: &mut UpstreamStream, from_up: BytesMut, t: &Timeouts) -> u64 {
        // What either side sent right behind the handshake goes first.
        if !self.buf.is_empty() {
            let early = self.buf.split();
            if send(up, &early, t.upstream_write).await.is_err() {
                return 0;
            }
        }
        let mut to_client = from_up.len() as u64;
        if !from_up.is_empty()
            && send(&mut self.stream, &from_up, t.client_send)
                .await
                .is_err()
        {
            return 0;
        }
        let mut a = vec![0u8; TUNNEL_CHUNK];
        let mut b = vec![0u8; TUNNEL_CHUNK];
        loop {
            let moved = tokio::select! {
                r = self.stream.read(&mut a) => Moved::FromClient(r),
                r = up.read(&mut b) => Moved::FromServer(r),
                _ = tokio::time::sleep(t.tunnel_idle) => Moved::Idle,
            };
            let sent = match moved {
                Moved::FromClient(Ok(n)) if n > 0 => {
                    send(up, a.get(..n).unwrap_or_default(), t.upstream_write).await
                }
                Moved::FromServer(Ok(n)) if n > 0 => {
                    to_client += n as u64;
                    let bytes = b.get(..n).unwrap_or_default();
                    send(&mut self.stream, bytes, t.client_send).await
                }
                _ => return to_client,
            };
            if sent.is_err() {
                return to_client;
            }
        }
    }
}

enum Moved {
    FromClient(io::Result<usize>),
    FromServer(io::Result<usize>),
    Idle,
}

/// Writes and flushes `bytes` within `limit`.
async fn send(
    to: &mut (impl AsyncWrite + AsyncRead + Unpin),
    bytes: &[u8],
    limit: Duration,
) -> io::Result<()> {
    let write = async {
        to.write_all(bytes).await?;
        to.flush().await
    };
    match timeout(limit, write).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
