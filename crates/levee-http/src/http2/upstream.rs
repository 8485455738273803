//! HTTP/2 client streams to HTTP/2 upstreams (`protocol = "h2c" | "h2"`),
//! relayed stream to stream, with trailers both ways: what gRPC needs.
//!
//! ```text
//! route (proxy to an HTTP/2 upstream) ─▶ guard (allow/deny, auth, limits)
//!   ─▶ pick server ─▶ open stream: shared connection (pool.rs) or connect,
//!      HEADERS sent (head.rs) ── failed before that? another server
//!      (connect failures, a stale shared connection), else 502 / 504
//!   ─▶ relay (relay.rs): DATA and trailers both ways, resets both ways
//!   ─▶ log
//! ```
//!
//! The HTTP/1 request path is not used: no pipe, no HTTP/1 head, so the
//! request and response trailers and resets pass through. What it decides
//! is shared instead: routing, the route's guard, the server choice and
//! retry rules (`proxy`), passive health and metrics, the forwarded fields
//! (`proxy::headers`) and the access log. A request is moved to another
//! server only before its HEADERS were handed to a connection; the cache
//! does not apply to these routes.

mod head;
mod pool;
mod relay;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use h2::RecvStream;
use h2::client::ResponseFuture;
use h2::server::SendResponse;
use h2::{Reason, SendStream};
use http::{HeaderMap, HeaderValue, StatusCode};
use levee_upstream::{Group, Member};

use super::Conn;
use crate::conn::Done;
use crate::message::RequestHead;
use crate::proxy::headers::Forwarding;
use crate::proxy::{
    Dest, Tried, UpstreamFault, begin, choose, next_server, observe_fault, observe_response,
};
use crate::site::{Routed, Site, Target};
use relay::{End, Progress};

/// The route of a request whose upstream speaks HTTP/2, if it has one.
pub(super) fn route<'s>(
    site: &'s Site,
    conn: &Conn,
    head: &RequestHead,
) -> Option<&'s std::sync::Arc<Routed>> {
    let routed = site.route(conn.listener.addr, head.host_name(), head.path())?;
    match &routed.target {
        Target::Proxy { group, .. } if group.config.protocol.is_http2() => Some(routed),
        _ => None,
    }
}

/// Serves one stream of `conn` on `routed` (see [`route`]) and logs it.
pub(super) async fn serve(
    body: RecvStream,
    mut respond: SendResponse<Bytes>,
    conn: &Conn,
    site: &Site,
    head: RequestHead,
    routed: &Routed,
    started: Instant,
) {
    let shared = &conn.listener.shared;
    let _in_flight = shared.begin();
    levee_upstream::stats::count_request(conn.listener.addr);
    let Target::Proxy {
        group,
        preserve_host,
        ..
    } = &routed.target
    else {
        return;
    };
    let out = match crate::screen::guard(&head, routed, conn.peer.ip(), true).await {
        Some(reply) => {
            let status = crate::conn::status_of(&reply);
            // Levee's own small response, turned into HTTP/2 as for any stream.
            let _ = super::response::relay(&reply[..], &mut respond, head.is_head()).await;
            Done::ended(status)
        }
        None => forward(body, &mut respond, conn, site, &head, group, *preserve_host).await,
    };
    out.log(site, conn.peer, &head, started);
}

/// A stream opened on a server: its HEADERS are on their way.
struct Opened {
    response: ResponseFuture,
    /// `None` when the request ended with its HEADERS.
    up: Option<SendStream<Bytes>>,
    /// Keeps the stream counted on its connection.
    _held: pool::Held,
}

/// Picks a server, opens the stream there (moving on while nothing was
/// sent), and relays it.
async fn forward(
    body: RecvStream,
    respond: &mut SendResponse<Bytes>,
    conn: &Conn,
    site: &Site,
    head: &RequestHead,
    group: &Group,
    preserve_host: bool,
) -> Done {
    let members = group.members();
    let affinity = choose::affinity(group, head, conn.peer.ip());
    let now = tokio::time::Instant::now();
    let Some(mut index) = group.pick(&members, affinity, &[], now) else {
        answer(respond, 503, conn.hsts);
        return Done::ended(503);
    };
    group.budget.record_request(now);
    let end_of_stream = body.is_end_stream();
    let started = Instant::now();
    let mut tried = Tried::new();
    let mut fresh_only = false;
    let (member, lease, opened) = loop {
        let Some(member) = members.get(index) else {
            answer(respond, 503, conn.hsts);
            return Done::ended(503);
        };
        let lease = begin(&member.state);
        let fwd = Forwarding {
            client_ip: conn.peer.ip(),
            preserve_host,
            server_authority: &member.configured,
            tls: conn.https,
            upgrade: None,
        };
        let req = match head::upstream_request(head, &fwd, group.tls.is_some()) {
            Ok(req) => req,
            Err(e) => {
                tracing::debug!(peer = %conn.peer, error = %e, "request not forwarded");
                answer(respond, 400, conn.hsts);
                return Done::ended(400);
            }
        };
        match open(group, member, req, end_of_stream, fresh_only, site).await {
            Ok(opened) => break (member, lease, opened),
            Err((fault, reused)) => {
                // A shared connection that went away (GOAWAY, closed) took
                // nothing: try once more on a new one.
                if reused && !fresh_only {
                    fresh_only = true;
                    continue;
                }
                observe_fault(group, &member.state, member.addr, &fault);
                drop(lease);
                tried.push(index);
                if let Some(next) = next_server(group, &members, affinity, &tried) {
                    tracing::info!(server = %member.addr, error = %fault, "upstream failed; trying another server");
                    index = next;
                    fresh_only = false;
                    continue;
                }
                tracing::warn!(upstream = %member.addr, error = %fault, "upstream failed");
                let status = fault.status();
                answer(respond, status, conn.hsts);
                return Done {
                    upstream_time: Some(started.elapsed()),
                    upstream: Some(member.addr),
                    ..Done::ended(status)
                };
            }
        }
    };

    let progress = Progress::default();
    let terms = relay::Terms {
        head_timeout: site.timeouts.upstream_read,
        hsts: conn.hsts,
    };
    let end = relay::run(body, opened.up, respond, opened.response, terms, &progress).await;
    let elapsed = started.elapsed();
    let got = progress.status.load(Relaxed);
    let status = match end {
        End::Answered(status) => {
            let fault = if status == 504 {
                UpstreamFault::ReadTimeout
            } else {
                UpstreamFault::Closed
            };
            observe_fault(group, &member.state, member.addr, &fault);
            status
        }
        _ if got != 0 => {
            observe_response(group, &member.state, member.addr, got, elapsed);
            if end == End::ClientGone { 499 } else { got }
        }
        End::ClientGone => 499,
        // Reset by the server before any response.
        _ => {
            observe_fault(group, &member.state, member.addr, &UpstreamFault::Closed);
            502
        }
    };
    drop(lease);
    Done {
        bytes: progress.bytes.load(Relaxed),
        upstream_time: Some(elapsed),
        upstream: Some(member.addr),
        ..Done::ended(status)
    }
}

/// Opens a stream to `member` and hands it the request's HEADERS. The
/// `bool` of an error says whether the connection was a shared one.
async fn open(
    group: &Group,
    member: &Member,
    req: http::Request<()>,
    end_of_stream: bool,
    fresh_only: bool,
    site: &Site,
) -> Result<Opened, (UpstreamFault, bool)> {
    let dest = Dest {
        addr: member.addr,
        tls: group.tls.as_ref().map(|t| (t, member.configured.as_str())),
        proxy_header: None,
    };
    let connect = site.timeouts.upstream_connect;
    let checkout = pool::checkout(&dest, fresh_only, connect, group.keepalive_timeout)
        .await
        .map_err(|fault| (fault, false))?;
    let reused = checkout.reused;
    let gone = |e: h2::Error| {
        checkout.held.discard();
        (UpstreamFault::Write(std::io::Error::other(e)), reused)
    };
    // Waits while the connection opens another stream; a connection at its
    // peer's stream limit was not handed out (pool.rs).
    let mut send = match tokio::time::timeout(connect, checkout.send.clone().ready()).await {
        Err(_) => return Err((UpstreamFault::ConnectTimeout, reused)),
        Ok(Err(e)) => return Err(gone(e)),
        Ok(Ok(send)) => send,
    };
    let (response, up) = send.send_request(req, end_of_stream).map_err(gone)?;
    Ok(Opened {
        response,
        up: (!end_of_stream).then_some(up),
        _held: checkout.held,
    })
}

/// Answers the stream with a bodiless status of levee's own (an upstream
/// failure before any response): gRPC clients read 502, 503 and 504 as
/// UNAVAILABLE.
fn answer(respond: &mut SendResponse<Bytes>, status: u16, hsts: Option<u64>) -> End {
    let mut r = http::Response::new(());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    add_hsts(r.headers_mut(), hsts);
    if respond.send_response(r, true).is_err() {
        respond.send_reset(Reason::INTERNAL_ERROR);
    }
    End::Answered(status)
}

/// `Strict-Transport-Security` on a response to a TLS listener with `hsts`.
fn add_hsts(headers: &mut HeaderMap, hsts: Option<u64>) {
    if let Some(max_age) = hsts
        && let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}"))
    {
        headers.insert(http::header::STRICT_TRANSPORT_SECURITY, v);
    }
}
