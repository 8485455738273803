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
//! Each outcome feeds the server's passive health and its metrics.
//!
//! An upstream that speaks HTTP/2 (`protocol = "h2c" | "h2"`) gets the
//! request as one HTTP/2 stream instead (`http2/upstream/h1.rs`).
//!
//! On a caching route the exchange carries the cache's [`Fill`]
//! (`cache/fill.rs`): it adds the stored validators to the head, decides
//! from the response head whether to store (or to answer from the store
//! instead: a 304, or a stale response standing in for a failure), and takes
//! a copy of the body as the relay passes it on.

pub(crate) mod choose;
mod fetch;
pub mod headers;
pub mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use levee_upstream::state::{Lease, ServerState};
use levee_upstream::stats::ErrorKind;
use levee_upstream::{Group, GroupTls, Members, UpstreamStream, pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::body::{BodySink, Output, Relay, RelayError};
use crate::cache::fill::{Admit, Fill};
use crate::conn::{Client, Next};
use crate::h1::{ChunkedDecoder, HeadError, Parsed, parse_response};
use crate::message::{Framing, RequestHead, ResponseHead};
use crate::site::Site;
use crate::{pace, respond, timed};
pub(crate) use fetch::{Behalf, Fetched, fetch};
use headers::Forwarding;

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Read size for the upstream response head (and the first body bytes).
const RESPONSE_CHUNK: usize = 16 * 1024;
/// Most servers one request tries (the config caps `retries` at 16).
const MAX_TRIES: usize = 17;

/// What happened, for the access log and the client connection.
#[derive(Debug)]
pub struct Outcome {
    pub status: u16,
    pub bytes: u64,
    pub upstream_time: Option<Duration>,
    pub upstream: Option<SocketAddr>,
    pub next: Next,
}

/// Why an exchange with the upstream failed, and what the client gets.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamFault {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("write: {0}")]
    Write(std::io::Error),
    #[error("write timed out")]
    WriteTimeout,
    #[error("read: {0}")]
    Read(std::io::Error),
    #[error("read timed out")]
    ReadTimeout,
    #[error("closed before a response")]
    Closed,
    #[error("malformed response head: {0}")]
    BadHead(HeadError),
}

impl UpstreamFault {
    pub(crate) fn status(&self) -> u16 {
        match self {
            UpstreamFault::ConnectTimeout
            | UpstreamFault::WriteTimeout
            | UpstreamFault::ReadTimeout => 504,
            _ => 502,
        }
    }

    /// A fault that a stale pooled connection produces before any response byte.
    fn stale_connection(&self) -> bool {
        matches!(
            self,
            UpstreamFault::Write(_) | UpstreamFault::Read(_) | UpstreamFault::Closed
        )
    }

    fn kind(&self) -> ErrorKind {
        match self {
            UpstreamFault::Connect(_) => ErrorKind::Connect,
            UpstreamFault::ConnectTimeout => ErrorKind::ConnectTimeout,
            UpstreamFault::Write(_) | UpstreamFault::Read(_) | UpstreamFault::Closed => {
                ErrorKind::Reset
            }
            UpstreamFault::WriteTimeout | UpstreamFault::ReadTimeout => ErrorKind::Timeout,
            UpstreamFault::BadHead(_) => ErrorKind::Protocol,
        }
    }

    /// Whether the request may go to another server after this fault.
    fn may_move(&self, body_resendable: bool, idempotent: bool, reused: bool) -> bool {
        match self {
            UpstreamFault::Connect(_) | UpstreamFault::ConnectTimeout => true,
            UpstreamFault::Write(_) | UpstreamFault::Read(_) | UpstreamFault::Closed => {
                body_resendable && (idempotent || reused)
            }
            _ => false,
        }
    }
}

/// Answers at once when no server can take the request.
async fn no_server(client: &mut Client, site: &Site, req: &RequestHead) -> Outcome {
    let bytes = respond::error(503, &[("Retry-After", b"1")], false, req.is_head());
    fail(client, site, bytes, 503, None, None).await
}

/// The servers a request has tried, without allocating.
pub(crate) struct Tried {
    list: [usize; MAX_TRIES],
    len: usize,
}

impl Tried {
    pub(crate) fn new() -> Tried {
        Tried {
            list: [usize::MAX; MAX_TRIES],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, i: usize) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = i;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[usize] {
        self.list.get(..self.len).unwrap_or_default()
    }
}

/// Another server for a request that failed on the servers in `tried`, if
/// the per-request count and the upstream's retry budget allow one.
pub(crate) fn next_server(
    group: &Group,
    members: &Members,
    affinity: levee_upstream::Affinity,
    tried: &Tried,
) -> Option<usize> {
    if tried.len > group.config.retry.retries as usize {
        return None;
    }
    let now = Instant::now();
    let next = group.pick(members, affinity, tried.as_slice(), now)?;
    group.budget.try_retry(now).then_some(next)
}

/// Forwards `req` to a server of `group` and relays the response to `client`.
pub async fn forward(
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    group: &Group,
    preserve_host: bool,
    keep_alive: bool,
) -> Outcome {
    forward_with(client, site, req, group, preserve_host, keep_alive, None).await
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
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    group: &Group,
    preserve_host: bool,
    keep_alive: bool,
    mut fill: Option<&mut Fill<'_>>,
) -> Outcome {
    if group.config.protocol.is_http2() {
        // Translated into one HTTP/2 stream; the cache does not apply.
        // Boxed: its state must not widen every HTTP/1 proxy future.
        let from = crate::http2::upstream::Client {
            ip: client.peer.ip(),
            https: crate::stream::is_https(&client.stream),
            preserve_host,
        };
        let forwarded =
            crate::http2::upstream::h1::forward(client, site, req, group, from, keep_alive);
        return Box::pin(forwarded).await;
    }
    let t = &site.timeouts;
    let members = group.members();
    let affinity = choose::affinity(group, req, client.peer.ip());
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
        return no_server(client, site, req).await;
    };
    let limit = (site.limits.max_body > 0).then_some(site.limits.max_body);
    if let (Framing::Length(n), Some(max)) = (req.framing, limit)
        && n > max
    {
        let bytes = respond::error(413, &[], false, req.is_head());
        return fail(client, site, bytes, 413, None, None).await;
    }

    let complete_body = match prebuffer(client, req, site, limit).await {
        Ok(complete) => complete,
        Err(Some(status)) => {
            let bytes = respond::error(status, &[], false, req.is_head());
            return fail(client, site, bytes, status, None, None).await;
        }
        Err(None) => {
            return Outcome {
                status: 499,
                bytes: 0,
                upstream_time: None,
                upstream: None,
                next: Next::Close,
            };
        }
    };
    // A body read in full goes out with the head and can be resent.
    let body = complete_body.map(|n| client.buf.split_to(n));
    let body_in_head = body.is_some();
    let idempotent = choose::idempotent(req.method());
    group.budget.record_request(now);

    // Clock readings cost more than anything else levee does per request
    // in user space (bench/README.md): reuse one where nothing waited.
    let started = match req.framing {
        Framing::None => now,
        _ => Instant::now(),
    };
    let mut tried = Tried::new();
    let mut fresh_only = false;
    // The head for the server it was built for (only `Host` can differ).
    let mut head: Option<(Vec<u8>, usize)> = None;
    let (member, lease, mut up, mut buf, mut resp) = loop {
        let Some(member) = members.get(index) else {
            return no_server(client, site, req).await;
        };
        let authority_differs = head.as_ref().is_some_and(|(_, built_for)| {
            members
                .get(*built_for)
                .is_none_or(|m| m.configured != member.configured)
        });
        if head.is_none() || (authority_differs && !(preserve_host && req.host.is_some())) {
            let mut h = headers::upstream_request(
                req,
                &Forwarding {
                    client_ip: client.peer.ip(),
                    preserve_host,
                    server_authority: &member.configured,
                    tls: crate::stream::is_https(&client.stream),
                    upgrade: upgrade::requested(req),
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
            return no_server(client, site, req).await;
        };
        let addr = member.addr;
        let state = &member.state;
        let lease = begin(state);
        let sent = if tried.len == 0 {
            started
        } else {
            Instant::now()
        };
        let header = proxy_header(group, client);
        let dest = Dest {
            addr,
            tls: group.tls.as_ref().map(|t| (t, member.configured.as_str())),
            proxy_header: header.as_deref(),
        };
        let attempt = exchange_head(
            client,
            site,
            req,
            &dest,
            bytes,
            body_in_head,
            fresh_only,
            limit,
        )
        .await;
        match attempt {
            Ok((up, buf, resp)) => {
                observe_response(group, state, addr, resp.status, sent.elapsed());
                let retry_status = group.config.retry.on_status.contains(&resp.status);
                if retry_status && idempotent && body_in_head {
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
                if reused && body_in_head && fault.stale_connection() && !fresh_only {
                    fresh_only = true;
                    continue;
                }
                observe_fault(group, state, addr, &fault);
                drop(lease);
                if fault.may_move(body_in_head, idempotent, reused) {
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
                let bytes = respond::error(status, &[], false, req.is_head());
                return fail(
                    client,
                    site,
                    bytes,
                    status,
                    Some(started.elapsed()),
                    Some(addr),
                )
                .await;
            }
            Err(Attempt::Client { status, error }) => {
                tracing::debug!(peer = %client.peer, %error, "request body failed");
                let Some(status) = status else {
                    return Outcome {
                        status: 499,
                        bytes: 0,
                        upstream_time: Some(started.elapsed()),
                        upstream: Some(addr),
                        next: Next::Close,
                    };
                };
                let bytes = respond::error(status, &[], false, req.is_head());
                return fail(
                    client,
                    site,
                    bytes,
                    status,
                    Some(started.elapsed()),
                    Some(addr),
                )
                .await;
            }
        }
    };

    let addr = member.addr;
    if resp.status == 101 {
        drop(lease);
        return upgrade::tunnel(client, site, req, &resp, up, buf, addr, started).await;
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
        match f.admit(req, &mut resp) {
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
    let framing = headers::client_framing(&resp, req, keep_alive);
    let mut out_head = headers::client_response(&resp, req, framing, &extra);
    respond::add_hsts(&mut out_head, client.hsts);
    let relay = Relay {
        framing: resp.framing,
        output: if framing.chunked || resp.framing != Framing::Chunked {
            Output::AsIs
        } else {
            Output::Dechunked
        },
        read_timeout: t.upstream_read,
        write_timeout: t.client_send,
        limit: None,
    };
    let result = relay
        .run(
            &mut up,
            &mut buf,
            &mut client.stream,
            out_head,
            match fill {
                Some(f) if copy => Some(f as &mut dyn BodySink),
                _ => None,
            },
        )
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
                next: if framing.keep_alive {
                    Next::KeepAlive
                } else {
                    Next::Close
                },
            }
        }
        Err(e) => {
            // The head is out: the client learns of the failure by the connection closing.
            tracing::debug!(upstream = %addr, error = %e, "response relay stopped");
            drop(lease);
            Outcome {
                status: resp.status,
                bytes: 0,
                upstream_time,
                upstream: Some(addr),
                next: Next::Close,
            }
        }
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
pub(crate) fn observe_fault(
    group: &Group,
    state: &ServerState,
    addr: SocketAddr,
    fault: &UpstreamFault,
) {
    group.observe_error(state, addr, fault.kind());
}

/// How one attempt at getting a response head failed.
enum Attempt {
    /// The upstream's fault; `reused` if the connection came from the pool.
    Fault { fault: UpstreamFault, reused: bool },
    /// The client's fault while levee streamed its body (`None`: the client is gone).
    Client {
        status: Option<u16>,
        error: RelayError,
    },
}

/// Where one attempt goes: the server's address and how to speak to it.
pub(crate) struct Dest<'a> {
    pub addr: SocketAddr,
    /// The group's TLS and the server as configured (for its name).
    pub tls: Option<(&'a GroupTls, &'a str)>,
    /// Written first on a new connection (`upstream.NAME.proxy_protocol`).
    pub proxy_header: Option<&'a [u8]>,
}

/// A connection to `dest` with `head` written (and flushed: over TLS the
/// sealed records may wait in rustls otherwise): a pooled one unless
/// `fresh_only` or a PROXY header is due, since a connection that began
/// with one speaks for one client; else a new one, the PROXY header first.
/// The `bool` says whether the connection came from the pool.
pub(crate) async fn open_and_send(
    dest: &Dest<'_>,
    head: &[u8],
    fresh_only: bool,
    t: &levee_config::Timeouts,
) -> Result<(UpstreamStream, bool), (UpstreamFault, bool)> {
    let pooled = match (fresh_only, dest.proxy_header) {
        (false, None) => pool::take(dest.addr, std::time::Instant::now()),
        _ => None,
    };
    let reused = pooled.is_some();
    let mut up = match pooled {
        Some(up) => up,
        None => connect(dest.addr, dest.tls, t.upstream_connect)
            .await
            .map_err(|fault| (fault, false))?,
    };
    let write = async {
        if let (Some(h), false) = (dest.proxy_header, reused) {
            up.write_all(h).await?;
        }
        up.write_all(head).await?;
        up.flush().await
    };
    match timed::within(t.upstream_write, write).await {
        Err(_) => Err((UpstreamFault::WriteTimeout, reused)),
        Ok((Err(e), _)) => Err((UpstreamFault::Write(e), reused)),
        Ok((Ok(()), _)) => Ok((up, reused)),
    }
}

/// Sends the request and reads the final response head.
#[allow(clippy::too_many_arguments)]
async fn exchange_head(
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    dest: &Dest<'_>,
    head: &[u8],
    body_in_head: bool,
    fresh_only: bool,
    limit: Option<u64>,
) -> Result<(UpstreamStream, BytesMut, ResponseHead), Attempt> {
    let t = &site.timeouts;
    let (mut up, reused) = open_and_send(dest, head, fresh_only, t)
        .await
        .map_err(|(fault, reused)| Attempt::Fault { fault, reused })?;
    let fault = |fault| Attempt::Fault { fault, reused };
    if !body_in_head {
        let relay = Relay {
            framing: req.framing,
            output: Output::AsIs,
            read_timeout: t.client_body,
            write_timeout: t.upstream_write,
            limit,
        };
        if let Err(error) = relay
            .run(
                &mut client.stream,
                &mut client.buf,
                &mut up,
                Vec::new(),
                None,
            )
            .await
        {
            return Err(match error {
                RelayError::DstTimeout => fault(UpstreamFault::WriteTimeout),
                RelayError::DstIo(e) => fault(UpstreamFault::Write(e)),
                RelayError::SrcTimeout => Attempt::Client {
                    status: Some(408),
                    error,
                },
                RelayError::TooLarge => Attempt::Client {
                    status: Some(413),
                    error,
                },
                RelayError::Chunk(_) => Attempt::Client {
                    status: Some(400),
                    error,
                },
                RelayError::SrcClosed | RelayError::SrcIo(_) => Attempt::Client {
                    status: None,
                    error,
                },
            });
        }
    }
    let mut buf = BytesMut::with_capacity(RESPONSE_CHUNK);
    loop {
        let resp = read_response_head(&mut up, &mut buf, t.upstream_read, req.is_head())
            .await
            .map_err(fault)?;
        if !(100..200).contains(&resp.status) || resp.status == 101 {
            return Ok((up, buf, resp));
        }
        // Interim responses: 100 Continue was levee's to give; others go to HTTP/1.1 clients.
        if resp.status != 100 && req.version == crate::message::Version::Http11 {
            let bytes = headers::interim(&resp);
            let _ = respond::send(&mut client.stream, &bytes, t.client_send).await;
        }
    }
}

/// Body bytes read before a server is chosen.
const PREBUFFER: usize = 16 * 1024;

/// Reads the start of the request body before any upstream is contacted (as
/// nginx's request buffering does, but bounded): malformed chunked framing
/// and oversized chunked bodies are refused before a server sees the request,
/// and a small body goes out with the head, so it can be sent again on a
/// fresh connection. Answers `100 Continue` itself when the client waits for
/// it. Returns the length of the body when all of it is buffered; `Err`
/// carries the status for the client (`None`: the client is gone).
async fn prebuffer(
    client: &mut Client,
    req: &RequestHead,
    site: &Site,
    limit: Option<u64>,
) -> Result<Option<usize>, Option<u16>> {
    let want = match req.framing {
        Framing::None | Framing::UntilClose => return Ok(Some(0)),
        Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX).min(PREBUFFER),
        Framing::Chunked => PREBUFFER,
    };
    let mut continued = false;
    loop {
        match req.framing {
            Framing::Length(n) if client.buf.len() as u64 >= n => return Ok(Some(n as usize)),
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let fed = decoder.feed(&client.buf).map_err(|_| Some(400))?;
                if limit.is_some_and(|max| decoder.data_len > max) {
                    return Err(Some(413));
                }
                if fed.done {
                    // Trailer fields never forwarded (h1/chunked.rs) go.
                    return Ok(Some(fed.drop_skipped(&mut client.buf)));
                }
            }
            _ => {}
        }
        if client.buf.len() >= want {
            return Ok(None);
        }
        if req.expect_continue && !continued && client.buf.is_empty() {
            continued = true;
            let go = b"HTTP/1.1 100 Continue\r\n\r\n";
            if !respond::send(&mut client.stream, go, site.timeouts.client_send).await {
                return Err(None);
            }
        }
        client.buf.reserve(PREBUFFER);
        match pace::read_buf(
            &mut client.stream,
            &mut client.buf,
            site.timeouts.client_body,
        )
        .await
        {
            Err(pace::PaceError::TimedOut) => return Err(Some(408)),
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
    }
}

/// The PROXY protocol header for `client`, when `group` sends one.
pub(crate) fn proxy_header(group: &Group, client: &Client) -> Option<Vec<u8>> {
    group.config.proxy_protocol.map(|v| {
        let local = crate::stream::local_addr(&client.stream).unwrap_or(client.peer);
        crate::proxy_protocol::encode(v, client.peer, local)
    })
}

/// Connects to `addr`, then runs the TLS handshake for a TLS upstream
/// (the server's name from `tls`), all within `limit`.
pub(crate) async fn connect(
    addr: SocketAddr,
    tls: Option<(&GroupTls, &str)>,
    limit: Duration,
) -> Result<UpstreamStream, UpstreamFault> {
    let connected = async {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        match tls {
            None => Ok(UpstreamStream::Plain(stream)),
            Some((tls, configured)) => {
                let s = tls
                    .connector
                    .connect(tls.name_for(configured), stream)
                    .await?;
                Ok(UpstreamStream::Tls(Box::new(s)))
            }
        }
    };
    match timeout(limit, connected).await {
        Err(_) => Err(UpstreamFault::ConnectTimeout),
        Ok(Err(e)) => Err(UpstreamFault::Connect(e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

pub(crate) async fn read_response_head(
    up: &mut UpstreamStream,
    buf: &mut BytesMut,
    limit: Duration,
    request_was_head: bool,
) -> Result<ResponseHead, UpstreamFault> {
    loop {
        if !buf.is_empty() {
            match parse_response(buf, MAX_RESPONSE_HEAD, request_was_head) {
                Ok(Parsed::Complete(parts, len)) => {
                    return Ok(parts.into_head(buf.split_to(len).freeze()));
                }
                Ok(Parsed::Incomplete) => {}
                Err(e) => return Err(UpstreamFault::BadHead(e)),
            }
        }
        buf.reserve(RESPONSE_CHUNK);
        match timed::within(limit, up.read_buf(buf)).await {
            Err(_) => return Err(UpstreamFault::ReadTimeout),
            Ok((Err(e), _)) => return Err(UpstreamFault::Read(e)),
            Ok((Ok(0), _)) => return Err(UpstreamFault::Closed),
            Ok((Ok(_), _)) => {}
        }
    }
}

/// Sends an error response levee made and ends the exchange.
pub(crate) async fn fail(
    client: &mut Client,
    site: &Site,
    bytes: Vec<u8>,
    status: u16,
    upstream_time: Option<Duration>,
    upstream: Option<SocketAddr>,
) -> Outcome {
    let _ = respond::send(&mut client.stream, &bytes, site.timeouts.client_send).await;
    Outcome {
        status,
        bytes: 0,
        upstream_time,
        upstream,
        next: Next::Linger,
    }
}
