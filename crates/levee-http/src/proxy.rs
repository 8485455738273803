//! Forwarding one request to an upstream server and relaying its response.
//!
//! ```text
//! pick server ─▶ read small body ─▶ pooled connection or connect ─▶ send head (+ small body)
//!   ─▶ stream request body ─▶ read response head (skip 1xx)
//!   ─▶ failed before any response byte, or 502/503/504 to an idempotent request?
//!        another server (within `retries` and the retry budget) ─▶ pooled connection …
//!   ─▶ relay response ─▶ return the connection to the pool when the exchange ended cleanly
//! ```
//!
//! Up to 16 KiB of a request body is read before a server is contacted
//! ([`prebuffer`]); larger bodies stream after that, and a streamed body is
//! never sent twice. Whether a failure may move the request on:
//!
//! - connect failed or timed out: always (nothing was sent);
//! - reset or closed before any response byte: if the body was not
//!   streamed, and the method is idempotent or the connection came from the
//!   pool (a server closing an idle connection races with reuse);
//! - 502/503/504 (`retry_on_status`): idempotent methods, body not streamed;
//! - a timeout waiting for the response: never (the server may be working).
//!
//! Each outcome feeds the server's passive health and its metrics, except
//! a client going away (gone.rs): that ends the exchange with 499, closes
//! the upstream connection, and blames no server.
//!
//! An upstream that speaks HTTP/2 (`protocol = "h2c" | "h2"`) gets the
//! request as one HTTP/2 stream instead (`http2/upstream/h1.rs`).
//!
//! On a caching route the exchange carries the cache's [`Fill`]
//! (`cache/fill.rs`): it adds the stored validators to the head, decides
//! from the response head whether to store (or to answer from the store
//! instead: a 304, or a stale response standing in for a failure), and takes
//! a copy of the body as the relay passes it on.

mod attempt;
pub(crate) mod choose;
mod fetch;
pub mod headers;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use levee_upstream::retry::{self, Retry, Tried, next_server};
use levee_upstream::state::{Lease, ServerState};
use levee_upstream::{Dest, Fault, Group, pool};
use tokio::time::Instant;

use crate::body::{BodySink, Stopped};
use crate::cache::fill::{Admit, Fill};
use crate::exchange::{Exchange, Next, Outcome};
use crate::message::Framing;
use crate::site::Site;
use attempt::{Attempt, exchange_head};
pub(crate) use attempt::{RESPONSE_CHUNK, open_and_send, read_response_head};
pub(crate) use fetch::{Behalf, Fetched, fetch};
use headers::Forwarding;

/// Answers at once when no server can take the request.
async fn no_server(ex: &mut Exchange<'_>, site: &Site) -> Outcome {
    ex.fail(503, &[("Retry-After", b"1")], site).await
}

/// Forwards the exchange's request to a server of `group` and relays the
/// response.
pub async fn forward(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    preserve_host: bool,
) -> Outcome {
    forward_with(ex, site, group, preserve_host, None).await
}

/// Leaves a failure to the cache when it has a stale response that may
/// stand in for it (stale-if-error, every server down); the returned
/// outcome is then replaced by the cache's answer.
fn fall_back(
    fill: &mut Option<&mut Fill<'_>>,
    status: u16,
    upstream_time: Option<Duration>,
    upstream: Option<SocketAddr>,
) -> Option<Outcome> {
    let f = fill.as_deref_mut()?;
    f.fall_back(status).then_some(Outcome {
        status,
        bytes: 0,
        upstream_time,
        upstream,
        next: Next::KeepAlive,
    })
}

/// [`forward`], with the cache's `fill` (when the route caches) seeing the
/// response head, a copy of the body, and failures it may answer itself.
pub async fn forward_with(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    preserve_host: bool,
    mut fill: Option<&mut Fill<'_>>,
) -> Outcome {
    if group.config.protocol.is_http2() {
        // Translated into one HTTP/2 stream; the cache does not apply.
        // Boxed: its state must not widen every HTTP/1 proxy future.
        let from = crate::http2::upstream::Client {
            origin: ex.origin,
            preserve_host,
        };
        let forwarded = crate::http2::upstream::h1::forward(ex, site, group, from);
        return Box::pin(forwarded).await;
    }
    let t = &site.timeouts;
    let members = group.members();
    let affinity = choose::affinity(group, &ex.head, ex.origin.ip);
    let now = Instant::now();
    // With no server usable, a stale copy the cache may serve answers
    // before panic mode sends the request to a server believed down.
    if fill.is_some()
        && !group.any_usable(&members, now)
        && let Some(out) = fall_back(&mut fill, 503, None, None)
    {
        return out;
    }
    let Some(mut index) = group.pick(&members, affinity, &[], now) else {
        if let Some(out) = fall_back(&mut fill, 503, None, None) {
            return out;
        }
        return no_server(ex, site).await;
    };
    let limit = (site.limits.max_body > 0).then_some(site.limits.max_body);
    if let (Framing::Length(n), Some(max)) = (ex.head.framing, limit)
        && n > max
    {
        return ex.fail(413, &[], site).await;
    }

    let complete_body = match ex.prebuffer(site, limit).await {
        Ok(complete) => complete,
        Err(Some(status)) => return ex.fail(status, &[], site).await,
        Err(None) => return Outcome::ended(499),
    };
    // A body read in full goes out with the head and can be resent.
    let body = complete_body.map(|n| ex.take_body(n));
    let body_in_head = body.is_some();
    let idempotent = retry::idempotent(ex.head.method());
    group.budget.record_request(now);

    // Clock readings cost more than anything else levee does per request
    // in user space (bench/README.md): reuse one where nothing waited.
    let started = match ex.head.framing {
        Framing::None => now,
        _ => Instant::now(),
    };
    let mut tried = Tried::new();
    let mut fresh_only = false;
    // The head for the server it was built for (only `Host` can differ).
    let mut head: Option<(Vec<u8>, usize)> = None;
    let (member, lease, mut up, mut buf, mut resp) = loop {
        let Some(member) = members.get(index) else {
            return no_server(ex, site).await;
        };
        let authority_differs = head.as_ref().is_some_and(|(_, built_for)| {
            members
                .get(*built_for)
                .is_none_or(|m| m.configured != member.configured)
        });
        if head.is_none() || (authority_differs && !(preserve_host && ex.head.host.is_some())) {
            let mut h = headers::upstream_request(
                &ex.head,
                &Forwarding {
                    origin: ex.origin,
                    preserve_host,
                    server_authority: &member.configured,
                    upgrade: upgrade::requested(&ex.head),
                },
            );
            if let Some(f) = fill.as_deref() {
                f.add_validators(&mut h);
            }
            if let Some(b) = &body {
                h.extend_from_slice(b);
            }
            head = Some((h, index));
        }
        let Some((bytes, _)) = head.as_ref() else {
            return no_server(ex, site).await;
        };
        let addr = member.addr;
        let state = &member.state;
        let lease = begin(state);
        let sent = if tried.is_empty() {
            started
        } else {
            Instant::now()
        };
        let header = proxy_header(group, ex);
        let dest = Dest {
            addr,
            tls: group.tls.as_ref().map(|t| (t, member.configured.as_str())),
            proxy_header: header.as_deref(),
        };
        let attempt = exchange_head(ex, site, &dest, bytes, body_in_head, fresh_only, limit).await;
        match attempt {
            Ok((up, buf, resp)) => {
                observe_response(group, state, addr, resp.status, sent.elapsed());
                if retry::on_status(group, resp.status, idempotent, body_in_head) {
                    tried.push(index);
                    if let Some(next) = next_server(group, &members, affinity, &tried) {
                        tracing::debug!(server = %addr, status = resp.status, "retrying on another server");
                        index = next;
                        fresh_only = false;
                        continue;
                    }
                }
                break (member, lease, up, buf, resp);
            }
            Err(Attempt::Fault { fault, reused }) => {
                let attempt = retry::Attempt {
                    reused,
                    fresh_only,
                    nothing_sent: false,
                    body_resendable: body_in_head,
                    idempotent,
                };
                let next = retry::after_fault(&fault, &attempt);
                if next == Retry::Fresh {
                    fresh_only = true;
                    continue;
                }
                observe_fault(group, state, addr, &fault);
                drop(lease);
                if next == Retry::Elsewhere {
                    tried.push(index);
                    if let Some(next) = next_server(group, &members, affinity, &tried) {
                        tracing::info!(server = %addr, error = %fault, "upstream failed; trying another server");
                        index = next;
                        fresh_only = false;
                        continue;
                    }
                }
                tracing::warn!(upstream = %addr, error = %fault, "upstream failed");
                let status = fault.status();
                if let Some(out) = fall_back(&mut fill, status, Some(started.elapsed()), Some(addr))
                {
                    return out;
                }
                let out = ex.fail(status, &[], site).await;
                return at(out, started, addr);
            }
            Err(Attempt::Gone) => {
                // Not the server's fault: its health is not charged, and
                // dropping the connection closes it, half-read as it is.
                drop(lease);
                return client_gone(0, started, addr);
            }
            Err(Attempt::Client(fault)) => {
                tracing::debug!(peer = %ex.peer, error = %fault, "request body failed");
                let status = fault.status();
                if status == 499 {
                    return at(Outcome::ended(499), started, addr);
                }
                let out = ex.fail(status, &[], site).await;
                return at(out, started, addr);
            }
        }
    };

    let addr = member.addr;
    if resp.status == 101 {
        drop(lease);
        return upgrade::tunnel(ex, site, &resp, up, buf, addr, started).await;
    }
    let sticky = match (&group.config.balance, affinity) {
        (levee_config::Balance::Sticky { cookie }, a)
            if a != levee_upstream::Affinity::Sticky(Some(member.cookie)) =>
        {
            choose::sticky_line(cookie, member.cookie)
        }
        _ => Vec::new(),
    };
    let mut extra = sticky;
    let mut copy = false;
    if let Some(f) = fill.as_deref_mut() {
        match f.admit(&ex.head, &mut resp) {
            Admit::Answer => {
                // A 304 (or bodiless error) leaves the connection reusable.
                if resp.framing == Framing::None && resp.keep_alive && buf.is_empty() {
                    let now = std::time::Instant::now();
                    let (n, idle) = (group.keepalive, group.keepalive_timeout);
                    pool::put(&member.state, addr, up, n, idle, now);
                }
                drop(lease);
                return Outcome {
                    status: resp.status,
                    bytes: 0,
                    upstream_time: Some(started.elapsed()),
                    upstream: Some(addr),
                    next: Next::KeepAlive,
                };
            }
            Admit::Relay {
                copy: c,
                status_line,
            } => {
                copy = c;
                extra.extend_from_slice(&status_line);
            }
        }
    }
    let tee = match fill {
        Some(f) if copy => Some(f as &mut dyn BodySink),
        _ => None,
    };
    let (result, client_keeps) = ex
        .relay_response_h1(&resp, &extra, &mut up, &mut buf, tee, t)
        .await;
    let done = Instant::now();
    let upstream_time = Some(done - started);
    match result {
        Ok(bytes) => {
            if resp.keep_alive && buf.is_empty() && group.config.proxy_protocol.is_none() {
                pool::put(
                    &member.state,
                    addr,
                    up,
                    group.keepalive,
                    group.keepalive_timeout,
                    done.into_std(),
                );
            }
            drop(lease);
            Outcome {
                status: resp.status,
                bytes,
                upstream_time,
                upstream: Some(addr),
                next: if client_keeps {
                    Next::KeepAlive
                } else {
                    Next::Close
                },
            }
        }
        Err(Stopped { error, sent }) => {
            drop(lease);
            if error.receiver_gone() {
                return client_gone(sent, started, addr);
            }
            // The head is out: the client learns of the failure by the connection closing.
            tracing::debug!(upstream = %addr, %error, "response relay stopped");
            Outcome {
                status: resp.status,
                bytes: sent,
                upstream_time,
                upstream: Some(addr),
                next: Next::Close,
            }
        }
    }
}

/// The outcome of an exchange whose client went away: 499 with the body
/// bytes it was given, the connection closed.
fn client_gone(sent: u64, started: Instant, addr: SocketAddr) -> Outcome {
    crate::gone::count();
    Outcome {
        status: 499,
        bytes: sent,
        upstream_time: Some(started.elapsed()),
        upstream: Some(addr),
        next: Next::Close,
    }
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

/// `out` with the upstream time since `started` and the server `addr`.
fn at(out: Outcome, started: Instant, addr: SocketAddr) -> Outcome {
    Outcome {
        upstream_time: Some(started.elapsed()),
        upstream: Some(addr),
        ..out
    }
}
