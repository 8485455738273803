//! An exchange without a client, for the cache: a background refresh
//! (stale-while-revalidate) and a HEAD miss fetched as GET.
//!
//! ```text
//! pick server ─▶ pooled connection or connect ─▶ send head (+ stored validators)
//!   ─▶ read response head (skip 1xx; a stale pooled connection is retried once, fresh)
//!   ─▶ the fill decides: answer from the store (304) | copy the body | neither
//!   ─▶ read the body into the fill ─▶ connection back to the pool when it ended cleanly
//! ```
//!
//! Like a relayed request it takes the server's lease, counts in its
//! metrics and feeds its passive health; it never moves to another server
//! (nobody waits on it but the fill's waiters, and the stored response, if
//! any, stays as it was).

use bytes::{Buf, BytesMut};
use levee_config::Timeouts;
use levee_upstream::{Affinity, Group, pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::headers::{self, Forwarding};
use super::{RESPONSE_CHUNK, UpstreamFault, begin, connect, observe_fault, observe_response};
use crate::body::BodySink;
use crate::cache::fill::{Admit, Fill};
use crate::h1::ChunkedDecoder;
use crate::message::{Framing, RequestHead, ResponseHead};

/// Why a clientless exchange ended without a complete response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("no server available")]
    NoServer,
    #[error(transparent)]
    Upstream(#[from] UpstreamFault),
    #[error("body: {0}")]
    Body(String),
}

/// How the exchange ended.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The fill answers from the store (a 304 refreshed it).
    Answer,
    /// The whole body went into the fill.
    Stored,
    /// The response is not for the cache: its head (with the fill's
    /// `Cache-Status` line) was read, its body not.
    Uncacheable {
        head: ResponseHead,
        status_line: Vec<u8>,
    },
}

/// Sends `req` (with the fill's validators) to a server of `group` on
/// behalf of `client_ip`, and gives the response to `fill`.
pub(crate) async fn fetch(
    group: &Group,
    req: &RequestHead,
    client_ip: std::net::IpAddr,
    preserve_host: bool,
    t: &Timeouts,
    fill: &mut Fill<'_>,
) -> Result<Fetched, FetchError> {
    let members = group.members();
    let index = group
        .pick(&members, Affinity::None, &[], Instant::now())
        .ok_or(FetchError::NoServer)?;
    let member = members.get(index).ok_or(FetchError::NoServer)?;
    let mut head = headers::upstream_request(
        req,
        &Forwarding {
            client_ip,
            preserve_host,
            server_authority: &member.configured,
        },
    );
    fill.add_validators(&mut head);
    let (addr, state) = (member.addr, &member.state);
    let lease = begin(state);
    let sent = Instant::now();
    let (mut up, mut buf, resp) = match exchange(addr, &head, t).await {
        Ok(got) => got,
        Err(fault) => {
            observe_fault(group, state, addr, &fault);
            return Err(fault.into());
        }
    };
    observe_response(group, state, addr, resp.status, sent.elapsed());
    let reusable = resp.keep_alive;
    let stored = match fill.admit(req, &resp) {
        Admit::Answer => false,
        Admit::Relay { copy: true, .. } => {
            read_body(&mut up, &mut buf, resp.framing, fill, t.upstream_read).await?;
            fill.complete();
            true
        }
        // The body is not read: the connection cannot be reused.
        Admit::Relay {
            copy: false,
            status_line,
        } => {
            return Ok(Fetched::Uncacheable {
                head: resp,
                status_line,
            });
        }
    };
    if reusable && buf.is_empty() && (stored || resp.framing == Framing::None) {
        let now = std::time::Instant::now();
        pool::put(
            state,
            addr,
            up,
            group.keepalive,
            group.keepalive_timeout,
            now,
        );
    }
    drop(lease);
    Ok(if stored {
        Fetched::Stored
    } else {
        Fetched::Answer
    })
}

/// Sends the head and reads the final response head, on a pooled
/// connection or, if that one turns out stale, a fresh one.
async fn exchange(
    addr: std::net::SocketAddr,
    head: &[u8],
    t: &Timeouts,
) -> Result<(TcpStream, BytesMut, ResponseHead), UpstreamFault> {
    let mut pooled = pool::take(addr, std::time::Instant::now());
    loop {
        let reused = pooled.is_some();
        let mut up = match pooled.take() {
            Some(up) => up,
            None => connect(addr, t.upstream_connect).await?,
        };
        match once(&mut up, head, t).await {
            Ok((buf, resp)) => return Ok((up, buf, resp)),
            Err(fault) if reused && fault.stale_connection() => continue,
            Err(fault) => return Err(fault),
        }
    }
}

async fn once(
    up: &mut TcpStream,
    head: &[u8],
    t: &Timeouts,
) -> Result<(BytesMut, ResponseHead), UpstreamFault> {
    match timeout(t.upstream_write, up.write_all(head)).await {
        Err(_) => return Err(UpstreamFault::WriteTimeout),
        Ok(Err(e)) => return Err(UpstreamFault::Write(e)),
        Ok(Ok(())) => {}
    }
    let mut buf = BytesMut::with_capacity(RESPONSE_CHUNK);
    loop {
        let resp = super::read_response_head(up, &mut buf, t.upstream_read, false).await?;
        if !(100..200).contains(&resp.status) {
            return Ok((buf, resp));
        }
    }
}

/// Reads a whole response body into the fill, removing chunked coding.
async fn read_body(
    up: &mut TcpStream,
    buf: &mut BytesMut,
    framing: Framing,
    tee: &mut Fill<'_>,
    limit: std::time::Duration,
) -> Result<(), FetchError> {
    let mut decoder = ChunkedDecoder::default();
    let mut left = match framing {
        Framing::None => return Ok(()),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    loop {
        match framing {
            Framing::Chunked => {
                let fed = decoder
                    .feed(buf)
                    .map_err(|e| FetchError::Body(e.to_string()))?;
                for range in &fed.data {
                    tee.push(&buf[range.clone()]);
                }
                buf.advance(fed.consumed);
                if fed.done {
                    return Ok(());
                }
            }
            _ => {
                let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                tee.push(&buf[..take]);
                buf.advance(take);
                left -= take as u64;
                if left == 0 {
                    return Ok(());
                }
            }
        }
        if !tee.copying() {
            return Err(FetchError::Body("larger than the cache takes".into()));
        }
        buf.reserve(RESPONSE_CHUNK);
        match timeout(limit, up.read_buf(buf)).await {
            Err(_) => return Err(UpstreamFault::ReadTimeout.into()),
            Ok(Err(e)) => return Err(UpstreamFault::Read(e).into()),
            Ok(Ok(0)) if framing == Framing::UntilClose => return Ok(()),
            Ok(Ok(0)) => return Err(FetchError::Body("closed before its end".into())),
            Ok(Ok(_)) => {}
        }
    }
}
