//! Forwarding one request to an upstream server and relaying its response.
//!
//! ```text
//! pick server ─▶ pooled connection or connect ─▶ send head (+ small body)
//!   ─▶ stream request body ─▶ read response head (skip 1xx) ─▶ relay response
//!   ─▶ return the connection to the pool when the exchange ended cleanly
//! ```
//!
//! Up to 16 KiB of a request body is read before a server is chosen
//! ([`prebuffer`]); larger bodies stream after that.
//!
//! A pooled connection the server closed meanwhile fails before any response
//! byte; such a request is sent once more on a new connection, but only if
//! its body was not streamed (a streamed body cannot be replayed).

pub mod headers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use levee_upstream::{Group, pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::body::{Output, Relay, RelayError};
use crate::conn::{Client, Next};
use crate::h1::{ChunkedDecoder, HeadError, Parsed, parse_response};
use crate::message::{Framing, RequestHead, ResponseHead};
use crate::respond;
use crate::site::Site;
use headers::Forwarding;

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Read size for the upstream response head (and the first body bytes).
const RESPONSE_CHUNK: usize = 16 * 1024;

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
enum UpstreamFault {
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
    fn status(&self) -> u16 {
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
    let t = &site.timeouts;
    let Some(server) = group.pick() else {
        let bytes = respond::error(503, &[("Retry-After", b"1")], false, req.is_head());
        return fail(client, site, bytes, 503, None, None).await;
    };
    let addr = server.addr;
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
    let mut head = headers::upstream_request(
        req,
        &Forwarding {
            client_ip: client.peer.ip(),
            preserve_host,
            server_authority: &server.configured,
        },
    );
    // A body already read in full goes out with the head and can be resent.
    let body_in_head = match complete_body {
        Some(n) => {
            head.extend_from_slice(&client.buf[..n]);
            client.buf.advance(n);
            true
        }
        None => false,
    };

    let started = Instant::now();
    let mut fresh_only = false;
    let (mut up, mut buf, resp) = loop {
        let attempt = exchange_head(
            client,
            site,
            req,
            addr,
            &head,
            body_in_head,
            fresh_only,
            limit,
        )
        .await;
        match attempt {
            Ok(ok) => break ok,
            Err(Attempt::Fault { fault, reused }) => {
                if reused && body_in_head && fault.stale_connection() && !fresh_only {
                    fresh_only = true;
                    continue;
                }
                tracing::warn!(upstream = %addr, error = %fault, "upstream failed");
                let status = fault.status();
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

    let framing = headers::client_framing(&resp, req, keep_alive);
    let out_head = headers::client_response(&resp, req, framing);
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
        .run(&mut up, &mut buf, &mut client.stream, out_head)
        .await;
    let upstream_time = Some(started.elapsed());
    match result {
        Ok(bytes) => {
            if resp.keep_alive && buf.is_empty() {
                pool::put(
                    addr,
                    up,
                    group.keepalive,
                    group.keepalive_timeout,
                    Instant::now(),
                );
            }
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

/// Sends the request and reads the final response head.
#[allow(clippy::too_many_arguments)]
async fn exchange_head(
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    addr: SocketAddr,
    head: &[u8],
    body_in_head: bool,
    fresh_only: bool,
    limit: Option<u64>,
) -> Result<(TcpStream, BytesMut, ResponseHead), Attempt> {
    let t = &site.timeouts;
    let pooled = if fresh_only {
        None
    } else {
        pool::take(addr, Instant::now())
    };
    let reused = pooled.is_some();
    let fault = |fault| Attempt::Fault { fault, reused };
    let mut up = match pooled {
        Some(up) => up,
        None => connect(addr, t.upstream_connect).await.map_err(fault)?,
    };
    match timeout(t.upstream_write, up.write_all(head)).await {
        Err(_) => return Err(fault(UpstreamFault::WriteTimeout)),
        Ok(Err(e)) => return Err(fault(UpstreamFault::Write(e))),
        Ok(Ok(())) => {}
    }
    if !body_in_head {
        let relay = Relay {
            framing: req.framing,
            output: Output::AsIs,
            read_timeout: t.client_body,
            write_timeout: t.upstream_write,
            limit,
        };
        if let Err(error) = relay
            .run(&mut client.stream, &mut client.buf, &mut up, Vec::new())
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
                    return Ok(Some(fed.consumed));
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
        match timeout(
            site.timeouts.client_body,
            client.stream.read_buf(&mut client.buf),
        )
        .await
        {
            Err(_) => return Err(Some(408)),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(None),
            Ok(Ok(_)) => {}
        }
    }
}

async fn connect(addr: SocketAddr, limit: Duration) -> Result<TcpStream, UpstreamFault> {
    match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => Err(UpstreamFault::ConnectTimeout),
        Ok(Err(e)) => Err(UpstreamFault::Connect(e)),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

async fn read_response_head(
    up: &mut TcpStream,
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
        match timeout(limit, up.read_buf(buf)).await {
            Err(_) => return Err(UpstreamFault::ReadTimeout),
            Ok(Err(e)) => return Err(UpstreamFault::Read(e)),
            Ok(Ok(0)) => return Err(UpstreamFault::Closed),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends an error response levee made and ends the exchange.
async fn fail(
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
