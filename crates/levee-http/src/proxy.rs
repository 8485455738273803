//! The one forward loop: a request to an upstream and its response, for
//! HTTP/1 and HTTP/2 clients (the exchange's end) to HTTP/1 and HTTP/2
//! upstreams alike. Retries, timeouts, passive health and a client that
//! goes away are decided here and only here.
//!
//! ```text
//! send         choose: affinity, Group::pick (none: 503); prepare (HTTP/1
//!              upstreams): 413 over max_body, up to 16 KiB of the body read
//! attempts     the loop: attempt_h1 | attempt_h2, connect ─▶ send ─▶ receive
//!   │          (h1.rs: pooled or new connection, head (+ whole body), rest of
//!   │          the body, response head; h2.rs: a shared or new connection,
//!   │          HEADERS handed over)
//!   ├─ missed ─▶ settle_miss ─▶ levee_upstream::retry::after_fault: once
//!   │             more on a fresh connection, another server (retries, retry
//!   │             budget), or stop
//!   ├─ 502/503/504 to an idempotent request with its whole body here
//!   │             (`retry_on_status`) ─▶ another server
//!   └─ the client went away (gone.rs) ─▶ 499, no server blamed
//! respond      the head (+ a sticky cookie, the cache's lines) whatever
//!              the upstream speaks, or the route's page for an error it
//!              intercepts; HTTP/1 upstream: 101 ─▶ tunnel; else the body
//!              relayed, the connection back to the pool when the exchange
//!              ended cleanly; HTTP/2 upstream: the stream relayed both
//!              ways (cancelled for a page), then settled
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

use crate::clock;
use crate::exchange::{Exchange, Outcome};
use crate::message::{Framing, ResponseHead};
use crate::reuse::{self, ServerBuf};
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

/// What a server gave back: its response head (HTTP/1, in the caller's
/// [`Answer`] slot), or the stream open on it (HTTP/2), and what settling
/// the exchange needs.
pub(crate) struct Received<'m, 's> {
    member: &'m Member,
    lease: Lease,
    /// When the first server was tried, for the upstream time.
    started: Instant,
    affinity: Affinity,
    conn: Conn,
    answer: &'s mut Option<Answer>,
}

enum Conn {
    /// The response is in `Received::answer`.
    H1,
    H2(h2::Opened),
}

/// An HTTP/1 server's answer: its connection, the bytes read past the
/// head, the head. It stays in a slot the caller of `send` owns, written
/// once by the attempt and used in place by `respond`: moved up through
/// each phase's future, its ~250 bytes cost more instructions than the
/// phases themselves (bench/README.md, "The exchange").
pub(crate) struct Answer {
    up: UpstreamStream,
    /// Before `buf`, so that it is dropped first: its fields read from
    /// `buf`, which goes back to the worker whole (reuse.rs).
    resp: ResponseHead,
    buf: ServerBuf,
}

impl Received<'_, '_> {
    /// The HTTP/1 response head, for the cache to admit.
    pub(crate) fn head_mut(&mut self) -> Option<&mut ResponseHead> {
        self.answer.as_mut().map(|a| &mut a.resp)
    }

    /// The server switches protocols (a WebSocket's 101).
    pub(crate) fn upgrades(&self) -> bool {
        self.answer.as_ref().is_some_and(|a| a.resp.status == 101)
    }
}

/// Forwards the exchange's request to a server of `group` and relays the
/// response.
pub(crate) async fn forward(
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
    let mut slot = None;
    match send(ex, site, &fwd, &members, &mut slot).await {
        Ok(received) => respond(ex, site, group, received, &[], None).await,
        Err(failed) => answer(ex, site, group, failed).await,
    }
}

/// The phases up to the response: upstream choice, prepare (HTTP/1), then
/// attempts (connect, send, receive) until one is answered or the retry
/// policy stops.
pub(crate) async fn send<'m, 's>(
    ex: &mut Exchange<'_>,
    site: &Site,
    fwd: &Forward<'_>,
    members: &'m Members,
    answer: &'s mut Option<Answer>,
) -> Result<Received<'m, 's>, Failed> {
    let group = fwd.group;
    let affinity = choose::affinity(group, &ex.head, ex.origin.ip);
    let now = clock::now();
    let index = group
        .pick(members, affinity, &[], now)
        .ok_or_else(|| Failed::before_any(Fault::NoServer))?;
    let http2 = group.config.protocol.is_http2();
    let (limit, body) = if http2 {
        // A stream's body flows beside its response (exchange/*/relay.rs).
        (None, None)
    } else {
        prepare(ex, site).await?
    };
    group.budget.record_request(now);
    // The same reading as `now` unless reading the body waited (clock.rs).
    let started = clock::now();
    let a = Attempts {
        fwd,
        members,
        affinity,
        started,
        limit,
        http2,
        idempotent: retry::idempotent(ex.head.method()),
    };
    attempts(ex, site, a, (index, body), answer).await
}

/// The prepare phase, for HTTP/1 upstreams: 413 for a declared length
/// over `max_body`; up to 16 KiB of the body read, and taken when that is
/// all of it, to go out with the head (and be sent again on a retry).
async fn prepare(
    ex: &mut Exchange<'_>,
    site: &Site,
) -> Result<(Option<u64>, Option<BytesMut>), Failed> {
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
    Ok((limit, complete.map(|n| ex.take_body(n))))
}

/// What every attempt of one request shares.
struct Attempts<'a, 'm> {
    fwd: &'a Forward<'a>,
    members: &'m Members,
    affinity: Affinity,
    started: Instant,
    limit: Option<u64>,
    http2: bool,
    idempotent: bool,
}

/// A fault of the client's body, with the status it gets (499: it left).
fn client_body(status: u16) -> Fault {
    Fault::ClientBody {
        status,
        why: "the request body".into(),
    }
}

/// Where the loop stands: the server tried now, those tried before it,
/// and whether only a new connection to it will do.
struct Cursor {
    index: usize,
    tried: Tried,
    fresh_only: bool,
}

impl Cursor {
    /// On to the server at `index` (the one left is in `tried` already).
    fn to(&mut self, index: usize) {
        (self.index, self.fresh_only) = (index, false);
    }
}

/// How one attempt ended.
enum Step {
    /// The server answered (HTTP/1: its final response head; HTTP/2: the
    /// stream is open and has its HEADERS).
    Answered(Conn),
    /// Its answer sends the request to another server (`retry_on_status`).
    Elsewhere(usize),
    Missed(Missed),
}

/// The forward loop: one attempt after another, from the server at
/// `index`, until one is answered or the retry policy stops. The same for
/// HTTP/1 and HTTP/2 servers; only the attempt differs (h1.rs, h2.rs).
async fn attempts<'m, 's>(
    ex: &mut Exchange<'_>,
    site: &Site,
    a: Attempts<'_, 'm>,
    (index, body): (usize, Option<BytesMut>),
    answer: &'s mut Option<Answer>,
) -> Result<Received<'m, 's>, Failed> {
    let mut at = Cursor {
        index,
        tried: Tried::new(),
        fresh_only: false,
    };
    // The HTTP/1 head for the server it was built for (only `Host` can differ).
    let mut head: Option<(reuse::Head, usize)> = None;
    let resendable = body.is_some();
    loop {
        let member = a
            .members
            .get(at.index)
            .ok_or_else(|| Failed::before_any(Fault::NoServer))?;
        let lease = begin(&member.state);
        let step = if a.http2 {
            // Boxed: its state must not widen every HTTP/1 proxy future.
            Box::pin(attempt_h2(ex, site, &a, member, at.fresh_only)).await?
        } else {
            if needs_head(&head, a.members, member, a.fwd, ex) {
                let built = request_head(ex, a.fwd, member, body.as_deref());
                head = Some((reuse::Head(built), at.index));
            }
            let bytes = head.as_ref().map(|(h, _)| &h.0[..]).unwrap_or_default();
            let attempt = attempt_h1(ex, site, &a, &mut at, member, (bytes, resendable), answer);
            attempt.await
        };
        let missed = match step {
            Step::Answered(conn) => return Ok(received(member, lease, &a, conn, answer)),
            Step::Elsewhere(next) => {
                at.to(next);
                continue;
            }
            Step::Missed(missed) => missed,
        };
        let policy = retry::Attempt {
            reused: false,
            fresh_only: at.fresh_only,
            // An HTTP/2 attempt fails only before its HEADERS are handed over.
            nothing_sent: a.http2,
            body_resendable: resendable,
            idempotent: a.idempotent,
        };
        settle_miss(member, lease, &a, &mut at, missed, policy, &ex.id)?;
    }
}

/// One attempt at an HTTP/1 server: `head` (with the whole body when
/// `in_head`) sent on a pooled or new connection, the response head read;
/// a status listed in `retry_on_status` moves the request on.
async fn attempt_h1(
    ex: &mut Exchange<'_>,
    site: &Site,
    a: &Attempts<'_, '_>,
    at: &mut Cursor,
    member: &Member,
    (head, in_head): (&[u8], bool),
    answer: &mut Option<Answer>,
) -> Step {
    let group = a.fwd.group;
    let sent = clock::now();
    let header = proxy_header(group, ex);
    let dest = Dest {
        addr: member.addr,
        tls: group.tls.as_ref().map(|t| (t, member.configured.as_str())),
        proxy_header: header.as_deref(),
    };
    let attempt = h1::attempt(ex, site, &dest, head, in_head, at.fresh_only, a.limit);
    let status = match attempt.await {
        Ok(got) => answer.insert(got).resp.status,
        Err(missed) => return Step::Missed(missed),
    };
    let addr = member.addr;
    observe_response(group, &member.state, addr, status, clock::since(sent));
    if retry::on_status(group, status, a.idempotent, in_head) {
        at.tried.push(at.index);
        if let Some(next) = next_server(group, a.members, a.affinity, &at.tried) {
            tracing::debug!(server = %addr, status, "retrying on another server");
            // Its connection closes: the answer is not relayed.
            *answer = None;
            return Step::Elsewhere(next);
        }
    }
    Step::Answered(Conn::H1)
}

/// One attempt at an HTTP/2 server: a stream opened and its HEADERS
/// handed over. Nothing else is sent before the relay, so a failure here
/// always moves the request (within the retries and budget). A request
/// HTTP/2 cannot carry stops the loop.
async fn attempt_h2(
    ex: &Exchange<'_>,
    site: &Site,
    a: &Attempts<'_, '_>,
    member: &Member,
    fresh_only: bool,
) -> Result<Step, Failed> {
    let group = a.fwd.group;
    let forwarding = Forwarding {
        origin: ex.origin,
        preserve_host: a.fwd.preserve_host,
        server_authority: &member.configured,
        upgrade: None,
        up: ex.upward(member.addr),
    };
    let req = h2::upstream_request(&ex.head, &forwarding, group.tls.is_some()).map_err(|e| {
        tracing::debug!(error = %e, "request not forwarded");
        Failed::before_any(e)
    })?;
    let end_of_stream = ex.body_ended();
    Ok(
        match h2::attempt(group, member, req, end_of_stream, fresh_only, site).await {
            Ok(opened) => Step::Answered(Conn::H2(opened)),
            Err((fault, reused)) => Step::Missed(Missed::Fault { fault, reused }),
        },
    )
}

fn received<'m, 's>(
    member: &'m Member,
    lease: Lease,
    a: &Attempts<'_, 'm>,
    conn: Conn,
    answer: &'s mut Option<Answer>,
) -> Received<'m, 's> {
    Received {
        member,
        lease,
        started: a.started,
        affinity: a.affinity,
        conn,
        answer,
    }
}

/// Feeds a missed attempt to the server's health (when it was the
/// server's doing) and moves `at` where the retry policy sends the request
/// next: the same server on a new connection, or another one; `Err` when
/// it goes nowhere.
fn settle_miss(
    member: &Member,
    lease: Lease,
    a: &Attempts<'_, '_>,
    at: &mut Cursor,
    missed: Missed,
    mut policy: retry::Attempt,
    // Named in its log lines: the request span that would carry it is off
    // by default (conn.rs), and these are the lines an operator looks for.
    id: &crate::shape::RequestId,
) -> Result<(), Failed> {
    let (group, addr) = (a.fwd.group, member.addr);
    let stop = |fault| Failed {
        fault,
        upstream_time: Some(clock::since(a.started)),
        upstream: Some(addr),
    };
    let (fault, reused) = match missed {
        Missed::Fault { fault, reused } => (fault, reused),
        // Not the server's fault: its health is not charged, and dropping
        // the connection closes it, half-read as it is.
        Missed::Gone => {
            crate::gone::count();
            return Err(stop(Fault::ClientGone));
        }
        Missed::Client(fault) => return Err(stop(fault)),
    };
    policy.reused = reused;
    let next = retry::after_fault(&fault, &policy);
    if next == Retry::Fresh {
        at.fresh_only = true;
        return Ok(());
    }
    observe_fault(group, &member.state, addr, &fault);
    drop(lease);
    if next == Retry::Elsewhere {
        at.tried.push(at.index);
        if let Some(next) = next_server(group, a.members, a.affinity, &at.tried) {
            tracing::info!(server = %addr, error = %fault, request_id = ?id, "upstream failed; trying another server");
            at.to(next);
            return Ok(());
        }
    }
    tracing::warn!(upstream = %addr, error = %fault, request_id = ?id, "upstream failed");
    Err(stop(fault))
}

/// Whether the head must be built (again) for `member`: the first
/// attempt, or a server named otherwise when `Host` is the server's.
fn needs_head(
    head: &Option<(reuse::Head, usize)>,
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
            up: ex.upward(member.addr),
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

/// A request to the server starts: it is in flight while the lease lives,
/// and counts in the server's requests.
pub(crate) fn begin(state: &Arc<ServerState>) -> Lease {
    state.stats.request();
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
