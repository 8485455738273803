//! HTTP/2 client streams to HTTP/2 upstreams (`protocol = "h2c" | "h2"`),
//! relayed stream to stream, with trailers both ways: what gRPC needs.
//!
//! ```text
//! serve        route (exchange.rs asked `route`) ─▶ guard (allow/deny, auth,
//!              limits) ─▶ forward ─▶ log
//! forward      open_stream ─▶ relay::run ─▶ settle
//! open_stream  pick server ─▶ open: a shared connection (pool.rs) or a new
//!              one, HEADERS handed over (head.rs) ── failed before that? a
//!              stale shared connection: once more on a new one; else
//!              another server; else 502 / 504
//! relay::run   DATA and trailers both ways, resets both ways (relay.rs)
//! settle       passive health, metrics, the status for the log
//! ```
//!
//! The HTTP/1 request path is not used: no pipe, no HTTP/1 head, so the
//! request and response trailers and resets pass through. What it decides
//! is shared instead: routing, the route's guard, the server choice and
//! retry rules (`proxy`), passive health and metrics, the forwarded fields
//! (`proxy::headers`) and the access log. A request is moved to another
//! server only before its HEADERS were handed to a connection; the cache
//! does not apply to these routes. HTTP/1.x clients of such a route go
//! through the same `open_stream` and `settle` (h1.rs).

pub(crate) mod h1;
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
use levee_upstream::{Group, Lease, Member, Members};

use super::Conn;
use crate::conn::Done;
use crate::message::RequestHead;
use crate::origin::Origin;
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
    mut head: RequestHead,
    routed: &Routed,
    started: Instant,
) {
    routed.choose_path(&mut head);
    let origin = super::exchange::origin_of(conn, site, &head);
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
    let out = match crate::screen::guard(&head, routed, origin.ip, true).await {
        Some(reply) => {
            let status = crate::conn::status_of(&reply);
            // Levee's own small response, turned into HTTP/2 as for any stream.
            let _ = super::response::relay(
                &reply[..],
                &mut respond,
                head.is_head(),
                &mut super::response::Window::client(site),
            )
            .await;
            Done::ended(status)
        }
        None => {
            let from = Client {
                origin,
                preserve_host: *preserve_host,
            };
            forward(body, &mut respond, conn, site, &head, group, from).await
        }
    };
    out.log(site, origin.ip, &head, started, Some(&routed.stats));
}

/// The two halves of an open stream.
pub(crate) struct Opened {
    pub response: ResponseFuture,
    /// `None` when the request ended with its HEADERS.
    pub up: Option<SendStream<Bytes>>,
    /// Keeps the stream counted on its connection.
    _held: pool::Held,
}

/// Opens the stream on a server, relays it, and settles its outcome.
async fn forward(
    body: RecvStream,
    respond: &mut SendResponse<Bytes>,
    conn: &Conn,
    site: &Site,
    head: &RequestHead,
    group: &Group,
    from: Client,
) -> Done {
    let members = group.members();
    let end_of_stream = body.is_end_stream();
    let stream = match open_stream(group, &members, head, from, end_of_stream, site).await {
        Ok(stream) => stream,
        Err(refused) => {
            answer(respond, refused.status, conn.hsts);
            return refused;
        }
    };
    // `expect` is hop by hop, so the server will not answer it: levee does,
    // now that a server has the request.
    if head.expect_continue && !end_of_stream {
        let mut go = http::Response::new(());
        *go.status_mut() = StatusCode::CONTINUE;
        let _ = respond.send_informational(go);
    }
    let progress = Progress::default();
    let terms = relay::Terms {
        head_timeout: site.timeouts.upstream_read,
        hsts: conn.hsts,
        window: super::response::Window::client(site),
    };
    let opened = stream.opened;
    let end = relay::run(body, opened.up, respond, opened.response, terms, &progress).await;
    let got = progress.status.load(Relaxed);
    Done {
        bytes: progress.bytes.load(Relaxed),
        ..settle(group, stream.member, end, got, stream.started)
    }
}

/// Who a request is forwarded for, as the server should see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    /// Who the request is for (origin.rs).
    pub origin: Origin,
    pub preserve_host: bool,
}

/// A stream open on a server: its request HEADERS are on their way.
pub(crate) struct Stream<'m> {
    pub member: &'m Member,
    pub opened: Opened,
    /// When the first server was tried, for the upstream time.
    pub started: Instant,
    /// Counts the request in flight on the server.
    pub _lease: Lease,
}

/// Picks a server of `group` and opens the request's stream there, moving
/// to another server while nothing was sent (within `retries` and the
/// retry budget). `Err`: what to answer and log instead (503: no server
/// usable; 502/504: none reachable).
pub(crate) async fn open_stream<'m>(
    group: &Group,
    members: &'m Members,
    head: &RequestHead,
    from: Client,
    end_of_stream: bool,
    site: &Site,
) -> Result<Stream<'m>, Done> {
    let affinity = choose::affinity(group, head, from.origin.ip);
    let now = tokio::time::Instant::now();
    let mut index = group
        .pick(members, affinity, &[], now)
        .ok_or(Done::ended(503))?;
    group.budget.record_request(now);
    let started = Instant::now();
    let mut tried = Tried::new();
    let mut fresh_only = false;
    loop {
        let member = members.get(index).ok_or(Done::ended(503))?;
        let lease = begin(&member.state);
        let fwd = Forwarding {
            origin: from.origin,
            preserve_host: from.preserve_host,
            server_authority: &member.configured,
            upgrade: None,
        };
        let req = head::upstream_request(head, &fwd, group.tls.is_some()).map_err(|e| {
            tracing::debug!(error = %e, "request not forwarded");
            Done::ended(400)
        })?;
        match open(group, member, req, end_of_stream, fresh_only, site).await {
            Ok(opened) => {
                return Ok(Stream {
                    member,
                    opened,
                    started,
                    _lease: lease,
                });
            }
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
                if let Some(next) = next_server(group, members, affinity, &tried) {
                    tracing::info!(server = %member.addr, error = %fault, "upstream failed; trying another server");
                    index = next;
                    fresh_only = false;
                    continue;
                }
                tracing::warn!(upstream = %member.addr, error = %fault, "upstream failed");
                return Err(Done {
                    upstream_time: Some(started.elapsed()),
                    upstream: Some(member.addr),
                    ..Done::ended(fault.status())
                });
            }
        }
    }
}

/// Feeds how a relayed stream ended to the server's passive health and
/// metrics; the outcome for the log (499: the client went away). `got`:
/// the server's status, 0 if no response head came.
pub(crate) fn settle(group: &Group, member: &Member, end: End, got: u16, started: Instant) -> Done {
    let elapsed = started.elapsed();
    if end == End::ClientGone {
        crate::gone::count();
    }
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
    Done {
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
