//! The forward loop's last phases: respond (the server's answer relayed to
//! the client through the exchange's end, the connection back to the pool
//! or the stream settled) and answer (levee's status for a request no
//! server answered).

use std::net::SocketAddr;

use levee_config::Balance;
use levee_upstream::{Affinity, Fault, Group, Member, UpstreamStream, pool};
use tokio::time::Instant;

use super::{Answer, Conn, Failed, Received, choose, observe_fault, observe_response, upgrade};
use crate::body::{BodySink, Stopped};
use crate::exchange::{Exchange, Next, Outcome, Reply, StreamEnd};
use crate::message::Framing;
use crate::site::Site;

/// The respond phase: relays what the server gave back, with a sticky
/// cookie and `extra` lines added to its head whatever it speaks, and a
/// copy of an HTTP/1 body to `tee` (the cache's); a server's error the
/// route intercepts gets the route's page instead, from either protocol.
/// An HTTP/1 server's response is relayed here, in this one body (a 101
/// turns the exchange into a tunnel), and its connection returned to the
/// pool if the exchange ended cleanly: a further async layer would cost
/// every poll of the relay a state machine more (bench/README.md).
pub(crate) async fn respond(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    received: Received<'_, '_>,
    extra: &[u8],
    tee: Option<&mut dyn BodySink>,
) -> Outcome {
    let Received {
        member,
        lease,
        started,
        affinity,
        conn,
        answer: slot,
    } = received;
    ex.shaping.upstream = Some(member.addr);
    let lines = head_lines(group, member, affinity, extra);
    let addr = member.addr;
    match conn {
        Conn::H1 => {}
        Conn::H2(opened) => {
            // Boxed: its state must not widen every HTTP/1 proxy future.
            let relayed = Box::pin(ex.relay_h2(opened.response, opened.up, &lines, site)).await;
            drop(opened.held);
            let done = settle(group, member, relayed.end, relayed.status, started);
            drop(lease);
            if relayed.end == StreamEnd::Intercepted {
                return intercept(ex, site, relayed.status, started, addr).await;
            }
            return Outcome {
                bytes: relayed.bytes,
                next: relayed.next,
                ..done
            };
        }
    }
    if slot.as_ref().is_some_and(|a| a.resp.status == 101)
        && let Some(Answer { up, buf, resp }) = slot.take()
    {
        drop(lease);
        return upgrade::tunnel(ex, site, &resp, up, buf, addr, started).await;
    }
    let Some(Answer { up, buf, resp }) = slot.as_mut() else {
        return Outcome::ended(502);
    };
    if ex.intercepts(resp.status) {
        // The server's error body is left unread: the connection is not pooled.
        let status = resp.status;
        drop(lease);
        return intercept(ex, site, status, started, addr).await;
    }
    let t = &site.timeouts;
    let (result, client_keeps) = ex.relay_response_h1(resp, &lines, up, buf, tee, t).await;
    let done = crate::clock::now();
    let upstream_time = Some(done - started);
    drop(lease);
    let (status, reusable) = (resp.status, resp.keep_alive && buf.is_empty());
    match result {
        Ok(bytes) => {
            if reusable && let Some(answer) = slot.take() {
                pool_back(group, member, answer.up, done);
            }
            Outcome {
                status,
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
            if error.receiver_gone() {
                return client_gone(sent, started, addr);
            }
            // The head is out: the client learns of the failure by the connection closing.
            tracing::debug!(upstream = %addr, %error, "response relay stopped");
            Outcome {
                status,
                bytes: sent,
                upstream_time,
                upstream: Some(addr),
                next: Next::Close,
            }
        }
    }
}

/// The lines levee adds to a server's response head, whatever the server
/// speaks: the sticky cookie that pins a client not already pinned to this
/// server, then `extra` (the cache's).
fn head_lines(group: &Group, member: &Member, affinity: Affinity, extra: &[u8]) -> Vec<u8> {
    let mut lines = match &group.config.balance {
        Balance::Sticky { cookie, attributes }
            if affinity != Affinity::Sticky(Some(member.cookie)) =>
        {
            choose::sticky_line(cookie, member.cookie, attributes)
        }
        _ => Vec::new(),
    };
    lines.extend_from_slice(extra);
    lines
}

/// The route's page in place of a server's error `status`
/// (`intercept_errors`), the server's body left unread.
async fn intercept(
    ex: &mut Exchange<'_>,
    site: &Site,
    status: u16,
    started: Instant,
    addr: SocketAddr,
) -> Outcome {
    let out = ex.reply(&Reply::error(status, &[]), site).await;
    Outcome {
        upstream_time: Some(crate::clock::since(started)),
        upstream: Some(addr),
        ..out
    }
}

/// An idle connection back to the pool, unless it began with a PROXY
/// header (it speaks for one client).
fn pool_back(group: &Group, member: &Member, up: UpstreamStream, now: Instant) {
    if group.config.proxy_protocol.is_none() {
        let (n, idle) = (group.keepalive, group.keepalive_timeout);
        pool::put(&member.state, member.addr, up, n, idle, now.into_std());
    }
}

/// The response the cache answers instead of relaying (a 304 that
/// refreshed the stored one, a stale one standing in for an error): the
/// server's part ends here, its connection pooled if it can be.
pub(crate) fn answered(received: Received<'_, '_>, group: &Group) -> Outcome {
    let Received {
        member,
        lease,
        started,
        answer,
        ..
    } = received;
    let Some(Answer { up, buf, resp }) = answer.take() else {
        return Outcome::ended(502);
    };
    // A 304 (or bodiless error) leaves the connection reusable.
    if resp.framing == Framing::None && resp.keep_alive && buf.is_empty() {
        pool_back(group, member, up, crate::clock::now());
    }
    drop(lease);
    Outcome {
        upstream_time: Some(crate::clock::since(started)),
        upstream: Some(member.addr),
        ..Outcome::of(resp.status, Next::KeepAlive)
    }
}

/// The outcome of an exchange whose client went away: 499 with the body
/// bytes it was given, the connection closed.
fn client_gone(sent: u64, started: Instant, addr: SocketAddr) -> Outcome {
    crate::gone::count();
    Outcome {
        status: 499,
        bytes: sent,
        upstream_time: Some(crate::clock::since(started)),
        upstream: Some(addr),
        next: Next::Close,
    }
}

/// Feeds how a stream relayed to an HTTP/2 server ended to the server's
/// passive health and metrics; the outcome for the log (499: the client
/// went away). `got`: the server's status, 0 if no response head came.
fn settle(group: &Group, member: &Member, end: StreamEnd, got: u16, started: Instant) -> Outcome {
    let elapsed = crate::clock::since(started);
    if end == StreamEnd::ClientGone {
        crate::gone::count();
    }
    let status = match end {
        StreamEnd::Answered(status) => {
            let fault = if status == 504 {
                Fault::ReadTimeout
            } else {
                Fault::Closed
            };
            observe_fault(group, &member.state, member.addr, &fault);
            status
        }
        _ if got != 0 => {
            observe_response(group, &member.state, member.addr, got, elapsed);
            if end == StreamEnd::ClientGone {
                499
            } else {
                got
            }
        }
        StreamEnd::ClientGone => 499,
        // Reset by the server before any response.
        _ => {
            observe_fault(group, &member.state, member.addr, &Fault::Closed);
            502
        }
    };
    Outcome {
        upstream_time: Some(elapsed),
        upstream: Some(member.addr),
        ..Outcome::ended(status)
    }
}

/// The answer phase: levee's status for a request no server answered,
/// none for a client that went away. A stream relayed to an HTTP/2 server
/// gets a bodiless status (gRPC clients read 502, 503 and 504 as
/// UNAVAILABLE); an HTTP/1 upstream's 503 says when to come back.
pub(crate) async fn answer(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    failed: Failed,
) -> Outcome {
    let Failed {
        fault,
        upstream_time,
        upstream,
    } = failed;
    if let Fault::ClientBody { .. } = &fault {
        tracing::debug!(peer = %ex.peer, error = %fault, "request body failed");
    }
    let status = fault.status();
    let http2 = group.config.protocol.is_http2();
    let out = if status == 499 {
        Outcome::ended(499)
    } else if http2 && ex.is_h2() {
        ex.send_bare(status);
        Outcome::ended(status)
    } else if matches!(fault, Fault::NoServer) && !http2 {
        ex.fail(503, &[("Retry-After", b"1")], site).await
    } else {
        ex.fail(status, &[], site).await
    };
    Outcome {
        upstream_time,
        upstream,
        ..out
    }
}
