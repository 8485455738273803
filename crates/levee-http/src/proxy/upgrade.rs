//! Upgraded connections: a WebSocket handshake (an HTTP/1.1 `GET` with
//! `Connection: upgrade` and `Upgrade: websocket`, RFC 6455 §4) is passed
//! to the server with its upgrade fields; when the server answers 101, the
//! connection becomes a byte tunnel between client and server until either
//! side closes or nothing moves for `timeouts.tunnel_idle`.
//!
//! A tunnel lives in its connection's task, so a reload does not touch it;
//! on stop it counts as in flight until the grace period ends.

use std::net::SocketAddr;
use std::time::Duration;

use levee_upstream::UpstreamStream;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout};

use crate::exchange::{Exchange, Next, Outcome};
use crate::h1::write::field;
use crate::message::{Framing, RequestHead, ResponseHead, Version, is_hop_by_hop};
use crate::site::Site;

/// The protocol `req` asks to switch to, when levee passes the request on
/// as an upgrade: only WebSocket, only from a bodiless HTTP/1.1 `GET`.
pub(crate) fn requested(req: &RequestHead) -> Option<&[u8]> {
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
pub(crate) fn request_fields(out: &mut Vec<u8>, protocol: &[u8]) {
    out.extend_from_slice(b"Connection: upgrade\r\n");
    field(out, b"Upgrade", protocol);
}

/// Relays the server's 101 to the client and runs the tunnel. A 101 the
/// client did not ask for is a bad gateway.
pub(super) async fn tunnel(
    ex: &mut Exchange<'_>,
    site: &Site,
    resp: &ResponseHead,
    mut up: UpstreamStream,
    from_up: crate::reuse::ServerBuf,
    addr: SocketAddr,
    started: Instant,
) -> Outcome {
    let Some(protocol) = requested(&ex.head) else {
        tracing::debug!(upstream = %addr, "101 to a request that asked for no upgrade");
        let out = ex.fail(502, &[], site).await;
        return Outcome {
            upstream_time: Some(started.elapsed()),
            upstream: Some(addr),
            ..out
        };
    };
    let head = switching_head(resp, protocol);
    let mut outcome = Outcome {
        upstream: Some(addr),
        ..Outcome::of(101, Next::Close)
    };
    let from_up = from_up.take();
    if let Some(sent) = ex.tunnel(&head, &mut up, from_up, &site.timeouts).await {
        outcome.bytes = sent;
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
