//! Upgraded connections: a WebSocket handshake (an HTTP/1.1 `GET` with
//! `Connection: upgrade` and `Upgrade: websocket`, RFC 6455 §4) is passed
//! to the server with its upgrade fields; when the server answers 101, the
//! connection becomes a byte tunnel between client and server until either
//! side closes or nothing moves for `timeouts.tunnel_idle`.
//!
//! A tunnel lives in its connection's task, so a reload does not touch it;
//! on stop it counts as in flight until the grace period ends.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use bytes::BytesMut;
use levee_config::Timeouts;
use levee_upstream::UpstreamStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use super::{Outcome, fail};
use crate::conn::{Client, Next};
use crate::h1::write::field;
use crate::message::{Framing, RequestHead, ResponseHead, Version, is_hop_by_hop};
use crate::respond;
use crate::site::Site;

/// Bytes read from either side at a time.
const CHUNK: usize = 16 * 1024;

/// The protocol `req` asks to switch to, when levee passes the request on
/// as an upgrade: only WebSocket, only from a bodiless HTTP/1.1 `GET`.
pub fn requested(req: &RequestHead) -> Option<&[u8]> {
    if req.version != Version::Http11 || req.method() != b"GET" || req.framing != Framing::None {
        return None;
    }
    // Every proxied GET asks this: the parsed `Connection` tokens first, so
    // the fields are scanned only when the client asked for an upgrade.
    let asked = req
        .connection_tokens
        .iter()
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    if !asked {
        return None;
    }
    let upgrade = req.fields.get("upgrade")?;
    upgrade
        .eq_ignore_ascii_case(b"websocket")
        .then_some(upgrade)
}

/// The fields that ask the server to upgrade, for the upstream request head.
pub fn request_fields(out: &mut Vec<u8>, protocol: &[u8]) {
    out.extend_from_slice(b"Connection: upgrade\r\n");
    field(out, b"Upgrade", protocol);
}

/// Relays the server's 101 to the client and runs the tunnel. A 101 the
/// client did not ask for is a bad gateway.
#[allow(clippy::too_many_arguments)]
pub(super) async fn tunnel(
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    resp: &ResponseHead,
    mut up: UpstreamStream,
    from_up: BytesMut,
    addr: SocketAddr,
    started: Instant,
) -> Outcome {
    let Some(protocol) = requested(req) else {
        tracing::debug!(upstream = %addr, "101 to a request that asked for no upgrade");
        let bytes = respond::error(502, &[], false, req.is_head());
        return fail(
            client,
            site,
            bytes,
            502,
            Some(started.elapsed()),
            Some(addr),
        )
        .await;
    };
    let mut outcome = Outcome {
        status: 101,
        bytes: 0,
        upstream_time: None,
        upstream: Some(addr),
        next: Next::Close,
    };
    let head = switching_head(resp, protocol);
    if respond::send(&mut client.stream, &head, site.timeouts.client_send).await {
        outcome.bytes = pump(client, &mut up, from_up, &site.timeouts).await;
    }
    let _ = timeout(Duration::from_secs(1), up.shutdown()).await;
    outcome.upstream_time = Some(started.elapsed());
    outcome
}

/// The 101 head for the client: the server's fields less hop-by-hop ones,
/// with the upgrade fields levee vouches for.
fn switching_head(resp: &ResponseHead, protocol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(resp.fields.raw().len() + 64);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in resp.fields.iter() {
        if !is_hop_by_hop(name) {
            field(&mut out, name, value);
        }
    }
    request_fields(&mut out, protocol);
    out.extend_from_slice(b"\r\n");
    out
}

enum Moved {
    FromClient(io::Result<usize>),
    FromServer(io::Result<usize>),
    Idle,
}

/// Moves bytes both ways until a side closes, a write stalls, or nothing
/// moves for `tunnel_idle`. Returns the bytes sent to the client.
async fn pump(
    client: &mut Client,
    up: &mut UpstreamStream,
    from_up: BytesMut,
    t: &Timeouts,
) -> u64 {
    // What either side sent right behind the handshake goes first.
    if !client.buf.is_empty() {
        let early = client.buf.split();
        if send(up, &early, t.upstream_write).await.is_err() {
            return 0;
        }
    }
    let mut to_client = from_up.len() as u64;
    if !from_up.is_empty()
        && send(&mut client.stream, &from_up, t.client_send)
            .await
            .is_err()
    {
        return 0;
    }
    let mut a = vec![0u8; CHUNK];
    let mut b = vec![0u8; CHUNK];
    loop {
        let moved = tokio::select! {
            r = client.stream.read(&mut a) => Moved::FromClient(r),
            r = up.read(&mut b) => Moved::FromServer(r),
            _ = tokio::time::sleep(t.tunnel_idle) => Moved::Idle,
        };
        let sent = match moved {
            Moved::FromClient(Ok(n)) if n > 0 => {
                send(up, a.get(..n).unwrap_or_default(), t.upstream_write).await
            }
            Moved::FromServer(Ok(n)) if n > 0 => {
                to_client += n as u64;
                send(
                    &mut client.stream,
                    b.get(..n).unwrap_or_default(),
                    t.client_send,
                )
                .await
            }
            _ => return to_client,
        };
        if sent.is_err() {
            return to_client;
        }
    }
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
