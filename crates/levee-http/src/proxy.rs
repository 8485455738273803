//! The one forward loop: a request to an upstream and its response, for
//! HTTP/1 and HTTP/2 clients (the exchange's end) to HTTP/1 and HTTP/2
//! upstreams alike. Retries, timeouts, passive health and a client that
//! goes away are decided here and only here.
//!
//! ```text
//! choose       the upstream choice: affinity, Group::pick (none: 503)
//! prepare      HTTP/1 upstreams: 413 over max_body; up to 16 KiB of the body read
//! attempt      connect ─▶ send ─▶ receive    (h1.rs: pooled or new connection,
//!   │          head (+ whole body), rest of the body, response head; h2.rs: a
//!   │          shared or new connection, HEADERS handed over)
//!   ├─ a Fault ─▶ levee_upstream::retry::after_fault: once more on a fresh
//!   │             connection, another server (retries, retry budget), or stop
//!   ├─ 502/503/504 to an idempotent request with its whole body here
//!   │             (`retry_on_status`) ─▶ another server
//!   └─ the client went away (gone.rs) ─▶ 499, no server blamed
//! respond      HTTP/1 upstream: 101 ─▶ tunnel; else the head (+ a sticky
//!              cookie, the cache's lines) and the body relayed, the
//!              connection back to the pool when the exchange ended cleanly;
//!              HTTP/2 upstream: the stream relayed both ways, then settled
//! answer       a failure: the fault's status to the client (none if it left)
//! ```
//!
//! Whether a failure may move the request on (levee_upstream::retry):
//!
//! - connect failed or timed out: always (nothing was sent);
//! - reset or closed before any response byte: if the body was not
//!   streamed, and the method is idempotent or the connection came from the
//!   pool (a server closing an idle connection races with reuse);
//! - an HTTP/2 stream whose HEADERS never went out: always;
//! - 502/503/504 (`retry_on_status`): idempotent methods, body not streamed;
//! - a timeout waiting for the response: never (the server may be working).
//!
//! Each outcome feeds the server's passive health and its metrics, except
//! what the client caused (error.rs): a client going away ends the exchange
//! with 499, closes the upstream connection (or cancels the stream), and
//! blames no server.
//!
//! The cache composes the same phases with its fill between receive and
//! respond (cache.rs `forward`); this module knows nothing of it but the
//! extra request fields (`Forward::validators`) and the copy of the body
//! it is given (`BodySink`).

mod choose;
mod h1;
mod h2;
pub(crate) mod headers;
mod respond;
pub(crate) mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use levee_upstream::retry::{self, Retry, Tried, next_server};
use levee_upstream::state::{Lease, ServerState};
use levee_upstream::{Affinity, Dest, Fault, Group, Member, Members, UpstreamStream};
use tokio::time::Instant;

use crate::exchange::{Exchange, Outcome};
use crate::message::{Framing, ResponseHead};
use crate::site::Site;
pub(crate) use h1::{RESPONSE_CHUNK, open_and_send, read_response_head};
use headers::Forwarding;
pub(crate) use respond::{answer, answered, respond};

/// Where a request goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forward<'a> {
    pub group: &'a Group,
    pub preserve_host: bool,
    /// Field lines added to an HTTP/1 request (the cache's validators).
    pub validators: &'a [u8],
}

/// How one attempt at a server failed.
pub(crate) enum Missed {
    /// The server's fault (or the way to it); `reused` if the connection
    /// came from the pool or was a shared one.
    Fault { fault: Fault, reused: bool },
    /// The client's, while levee streamed its body.
    Client(Fault),
    /// The client went away while levee waited on the server (gone.rs).
    Gone,
}

/// A request no server answered: why, and the upstream time and server
/// for the log.
#[derive(Debug)]
pub(crate) struct Failed {
    pub fault: Fault,
    pub upstream_time: Option<Duration>,
    pub upstream: Option<SocketAddr>,
}

impl Failed {
    fn before_any(fault: Fault) -> Failed {
        Failed {
            fault,
            upstream_time: None,
            upstream: None,
        }
    }
}

/// What a server gave back: its response head (HTTP/1), or the stream open
/// on it (HTTP/2), and what settling the exchange needs.
pub(crate) struct Received<'m> {
    member: &'m Member,
    lease: Lease,
    /// When the first server was tried, for the upstream time.
    started: Instant,
    affinity: Affinity,
    conn: Conn,
}

enum Conn {
    H1 {
        up: UpstreamStream,
        buf: BytesMut,
        resp: ResponseHead,
    },
    H2(h2::Opened),
}

impl Received<'_> {
    /// The HTTP/1 response head, for the cache to admit.
    pub(crate) fn head_mut(&mut self) -> Option<&mut ResponseHead> {
        match &mut self.conn {
            Conn::H1 { resp, .. } => Some(resp),
            Conn::H2(_) => None,
        }
    }

    /// The server switches protocols (a WebSocket's 101).
    pub(crate) fn upgrades(&self) -> bool {
        matches!(&self.conn, Conn::H1 { resp, .. } if resp.status == 101)
    }
}

/// Forwards the exchange's request to a server of `group` and relays the
/// response.
pub async fn forward(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    preserve_host: bool,
) -> Outcome {
    let members = group.members();
    let fwd = Forward {
        group,
        preserve_host,
        validators: &[],
    };
    match send(ex, site, &fwd, &members).await {
        Ok(received) => respond(ex, site, group, received, &[], None).await,
        Err(failed) => answer(ex, site, group, failed).await,
    }
}

/// The phases up to the response: upstream choice, then attempts (connect,
/// send, receive) until one is answered or the retry policy stops.
pub(crate) async fn send<'m>(
    ex: &mut Exchange<'_>,
    site: &Site,
    fwd: &Forward<'_>,
    members: &'m Members,
) -> Result<Received<'m>, Failed> {
    let group = fwd.group;
    let affinity = choose::affinity(group, &ex.head, ex.origin.ip);
    let now = Instant::now();
    let index = group
        .pick(members, affinity, &[], now)
        .ok_or(Failed::before_any(Fault::NoServer))?;
    if group.config.protocol.is_http2() {
        // Boxed: its state must not widen every HTTP/1 proxy future.
        return Box::pin(attempts_h2(ex, site, fwd, members, (affinity, now), index)).await;
    }
    let limit = (site.limits.max_body > 0).then_some(site.limits.max_body);
    if let (Framing::Length(n), Some(max)) = (ex.head.framing, limit)
        && n > max
    {
        return Err(Failed::before_any(client_body(413)));
    }
    let complete = match ex.prebuffer(site, limit).await {
        Ok(complete) => complete,
        Err(status) => return Err(Failed::before_any(client_body(status.unwrap_or(499)))),
    };
    // A body read in full goes out with the head and can be resent.
    let body = complete.map(|n| ex.take_body(n));
    group.budget.record_request(now);
    // Clock readings cost more than anything else levee does per request
    // in user space (bench/README.md): reuse one where nothing waited.
    let started = match ex.head.framing {
        Framing::None => now,
        _ => Instant::now(),
    };
    let attempt = Attempts {
        fwd,
        members,
        affinity,
        started,
        limit,
    };
    attempts_h1(ex, site, attempt, index, body).await
}

/// What every attempt of one request shares.
struct Attempts<'a, 'm> {
    fwd: &'a Forward<'a>,
    members: &'m Members,
    affinity: Affinity,
    started: Instant,
    limit: Option<u64>,
}

/// A fault of the client's body, with the status it gets (499: it left).
fn client_body(status: u16) -> Fault {
    Fault::ClientBody {
        status,
        why: "the request body".into(),
    }
}

/// The attempts at HTTP/1 servers, from `index` on.
async fn attempts_h1<'m>(
    ex: &mut Exchange<'_>,
    site: &Site,
    a: Attempts<'_, 'm>,
    mut index: usize,
    body: Option<BytesMut>,
) -> Result<Received<'m>, Failed> {
    let group = a.fwd.group;
    let body_in_head = body.is_some();
    let idempotent = retry::idempotent(ex.head.method());
    let mut tried = Tried::new();
    let mut fresh_only = false;
    // The head for the server it was built for (only `Host` can differ).
    let mut head: Option<(Vec<u8>, usize)> = None;
    loop {
        let member = a
            .members
            .get(index)
            .ok_or(Failed::before_any(Fault::NoServer))?;
        if needs_head(&head, a.members, member, a.fwd, ex) {
            head = Some((request_head(ex, a.fwd, member, body.as_deref()), index));
        }
        let bytes = head.as_ref().map(|(h, _)| &h[..]).unwrap_or_default();
        let (addr, state) = (member.addr, &member.state);
        let lease = begin(state);
        let sent = if tried.is_empty() {
            a.started
        } else {
            Instant::now()
        };
        let header = proxy_header(group, ex);
        let dest = Dest {
            addr,
            tls: group.tls.as_ref().map(|t| (t, member.configured.as_str())),
            proxy_header: header.as_deref(),
        };
        let attempt = h1::attempt(ex, site, &dest, bytes, body_in_head, fresh_only, a.limit);
        let failed = match attempt.await {
            Ok((up, buf, resp)) => {
                observe_response(group, state, addr, resp.status, sent.elapsed());
                if retry::on_status(group, resp.status, idempotent, body_in_head) {
                    tried.push(index);
                    if let Some(next) = next_server(group, a.members, a.affinity, &tried) {
                        tracing::debug!(server = %addr, status = resp.status, "retrying on another server");
                        (index, fresh_only) = (next, false);
                        continue;
                    }
                }
                let conn = Conn::H1 { up, buf, resp };
                return Ok(received(member, lease, &a, conn));
            }
            Err(missed) => missed,
        };
        let policy = retry::Attempt {
            reused: false,
            fresh_only,
            nothing_sent: false,
            body_resendable: body_in_head,
            idempotent,
        };
        match settle_miss(
            group,
            (index, member),
            lease,
            &a,
            &mut tried,
            failed,
            policy,
        ) {
            Then::Fresh => fresh_only = true,
            Then::Server(next) => (index, fresh_only) = (next, false),
            Then::Stop(failed) => return Err(failed),
        }
    }
}

/// Whether the head must be built (again) for `member`: the first
/// attempt, or a server named otherwise when `Host` is the server's.
fn needs_head(
    head: &Option<(Vec<u8>, usize)>,
    members: &Members,
    member: &Member,
    fwd: &Forward<'_>,
    ex: &Exchange<'_>,
) -> bool {
    let Some((_, built_for)) = head else {
        return true;
    };
    let authority_differs = members
        .get(*built_for)
        .is_none_or(|m| m.configured != member.configured);
    authority_differs && !(fwd.preserve_host && ex.head.host.is_some())
}

/// The HTTP/1 request head for `member`, with the forward's extra lines
/// and the whole body when levee holds it.
fn request_head(
    ex: &Exchange<'_>,
    fwd: &Forward<'_>,
    member: &Member,
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut h = headers::upstream_request(
        &ex.head,
        &Forwarding {
            origin: ex.origin,
            preserve_host: fwd.preserve_host,
            server_authority: &member.configured,
            upgrade: upgrade::requested(&ex.head),
        },
    );
    if !fwd.validators.is_empty() && h.ends_with(b"\r\n\r\n") {
        h.truncate(h.len() - 2);
        h.extend_from_slice(fwd.validators);
        h.extend_from_slice(b"\r\n");
    }
    if let Some(b) = body {
        h.extend_from_slice(b);
    }
    h
}

/// The attempts at HTTP/2 servers, from `index` on: a stream opened, its
/// HEADERS handed over. Nothing else is sent before the relay, so a
/// failure here always moves the request (within the retries and budget).
async fn attempts_h2<'m>(
    ex: &mut Exchange<'_>,
    site: &Site,
    fwd: &Forward<'_>,
    members: &'m Members,
    (affinity, now): (Affinity, Instant),
    mut index: usize,
) -> Result<Received<'m>, Failed> {
    let group = fwd.group;
    group.budget.record_request(now);
    let a = Attempts {
        fwd,
        members,
        affinity,
        started: Instant::now(),
        limit: None,
    };
    let end_of_stream = ex.body_ended();
    let mut tried = Tried::new();
    let mut fresh_only = false;
    loop {
        let member = members
            .get(index)
            .ok_or(Failed::before_any(Fault::NoServer))?;
        let lease = begin(&member.state);
        let forwarding = Forwarding {
            origin: ex.origin,
            preserve_host: fwd.preserve_host,
            server_authority: &member.configured,
            upgrade: None,
        };
        let req =
            h2::upstream_request(&ex.head, &forwarding, group.tls.is_some()).map_err(|e| {
                tracing::debug!(error = %e, "request not forwarded");
                Failed::before_any(e)
            })?;
        let attempt = h2::attempt(group, member, req, end_of_stream, fresh_only, site);
        let (fault, reused) = match attempt.await {
            Ok(opened) => return Ok(received(member, lease, &a, Conn::H2(opened))),
            Err(failed) => failed,
        };
        let policy = retry::Attempt {
            reused,
            fresh_only,
            nothing_sent: true,
            body_resendable: false,
            idempotent: false,
        };
        let missed = Missed::Fault { fault, reused };
        match settle_miss(
            group,
            (index, member),
            lease,
            &a,
            &mut tried,
            missed,
            policy,
        ) {
            Then::Fresh => fresh_only = true,
            Then::Server(next) => (index, fresh_only) = (next, false),
            Then::Stop(failed) => return Err(failed),
        }
    }
}

fn received<'m>(
    member: &'m Member,
    lease: Lease,
    a: &Attempts<'_, 'm>,
    conn: Conn,
) -> Received<'m> {
    Received {
        member,
        lease,
        started: a.started,
        affinity: a.affinity,
        conn,
    }
}

/// Where the loop goes after a missed attempt.
pub(crate) enum Then {
    Fresh,
    Server(usize),
    Stop(Failed),
}

/// Feeds a missed attempt to the server's health (when it was the server's
/// doing) and asks the retry policy where the request goes next.
fn settle_miss(
    group: &Group,
    (index, member): (usize, &Member),
    lease: Lease,
    a: &Attempts<'_, '_>,
    tried: &mut Tried,
    missed: Missed,
    mut policy: retry::Attempt,
) -> Then {
    let addr = member.addr;
    let stop = |fault| {
        Then::Stop(Failed {
            fault,
            upstream_time: Some(a.started.elapsed()),
            upstream: Some(addr),
        })
    };
    let (fault, reused) = match missed {
        Missed::Fault { fault, reused } => (fault, reused),
        // Not the server's fault: its health is not charged, and dropping
        // the connection closes it, half-read as it is.
        Missed::Gone => {
            crate::gone::count();
            return stop(Fault::ClientGone);
        }
        Missed::Client(fault) => return stop(fault),
    };
    policy.reused = reused;
    let next = retry::after_fault(&fault, &policy);
    if next == Retry::Fresh {
        return Then::Fresh;
    }
    observe_fault(group, &member.state, addr, &fault);
    drop(lease);
    if next == Retry::Elsewhere {
        tried.push(index);
        if let Some(next) = next_server(group, a.members, a.affinity, tried) {
            tracing::info!(server = %addr, error = %fault, "upstream failed; trying another server");
            return Then::Server(next);
        }
    }
    tracing::warn!(upstream = %addr, error = %fault, "upstream failed");
    stop(fault)
}

/// A request to the server starts: it is in flight while the lease lives,
/// and counts in the server's requests.
pub(crate) fn begin(state: &Arc<ServerState>) -> Lease {
    state
        .stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state.lease()
}

/// Feeds a response head to the server's metrics and passive health
/// (`levee_upstream::passive`: a status counts as a failure only when the
/// upstream lists it in `eject_on_status`).
pub(crate) fn observe_response(
    group: &Group,
    state: &ServerState,
    addr: SocketAddr,
    status: u16,
    latency: Duration,
) {
    group.observe_response(state, addr, status, latency);
}

/// Feeds a failed exchange to the server's metrics and passive health.
pub(crate) fn observe_fault(group: &Group, state: &ServerState, addr: SocketAddr, fault: &Fault) {
    group.observe_fault(state, addr, fault);
}

/// The PROXY protocol header for the exchange's client, when `group`
/// sends one: the client a trusted proxy named, with port 0 (forwarded
/// fields carry none).
pub(crate) fn proxy_header(group: &Group, ex: &Exchange<'_>) -> Option<Vec<u8>> {
    group.config.proxy_protocol.map(|v| {
        let local = ex.local_addr().unwrap_or(ex.peer);
        let source = match ex.origin.proxy {
            None => ex.peer,
            Some(_) => SocketAddr::new(ex.origin.ip, 0),
        };
        crate::proxy_protocol::encode(v, source, local)
    })
}
