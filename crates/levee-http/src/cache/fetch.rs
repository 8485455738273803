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
use levee_upstream::{Affinity, Dest, Fault, Group, UpstreamStream, pool};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::fill::{Admit, Fill};
use crate::body::BodySink;
use crate::h1::ChunkedDecoder;
use crate::message::{Framing, RequestHead, ResponseHead};
use crate::proxy::headers::{self, Forwarding};
use crate::proxy::{RESPONSE_CHUNK, begin, observe_fault, observe_response, open_and_send};

/// Why a clientless exchange ended without a complete response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("no server available")]
    NoServer,
    #[error(transparent)]
    Upstream(#[from] Fault),
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

/// The client a fetch is made for, as the upstream should see it.
#[derive(Debug, Clone)]
pub(crate) struct Behalf {
    /// Who the request is for (origin.rs).
    pub origin: crate::origin::Origin,
    pub preserve_host: bool,
    /// The PROXY header to send first when the upstream takes one; such
    /// connections are never pooled, as for relayed requests.
    pub proxy_header: Option<Vec<u8>>,
    /// The request's route rules and id.
    pub shaping: crate::shape::Held,
}

/// Sends `req` (with the fill's validators) to a server of `group` on
/// behalf of a client, and gives the response to `fill`.
pub(crate) async fn fetch(
    group: &Group,
    req: &RequestHead,
    behalf: &Behalf,
    t: &Timeouts,
    fill: &mut Fill<'_>,
) -> Result<Fetched, FetchError> {
    let members = group.members();
    let now = Instant::now();
    // No server usable: the caller's stale copy, if any, comes before
    // panic mode (as in cache.rs `forward`).
    if !group.any_usable(&members, now) {
        return Err(FetchError::NoServer);
    }
    let index = group
        .pick(&members, Affinity::None, &[], now)
        .ok_or(FetchError::NoServer)?;
    let member = members.get(index).ok_or(FetchError::NoServer)?;
    let mut head = headers::upstream_request(
        req,
        &Forwarding {
            origin: behalf.origin,
            preserve_host: behalf.preserve_host,
            server_authority: &member.configured,
            upgrade: None,
            // The route rules and id of the request that started it.
            up: behalf.shaping.upward(req, &behalf.origin, member.addr),
        },
    );
    let validators = fill.validators();
    if !validators.is_empty() && head.ends_with(b"\r\n\r\n") {
        head.truncate(head.len() - 2);
        head.extend_from_slice(&validators);
        head.extend_from_slice(b"\r\n");
    }
    let (addr, state) = (member.addr, &member.state);
    let lease = begin(state);
    let sent = Instant::now();
    let dest = Dest {
        addr,
        tls: group.tls.as_ref().map(|g| (g, member.configured.as_str())),
        proxy_header: behalf.proxy_header.as_deref(),
    };
    let (mut up, mut buf, mut resp) = match exchange(&dest, &head, t).await {
        Ok(got) => got,
        Err(fault) => {
            observe_fault(group, state, addr, &fault);
            return Err(fault.into());
        }
    };
    observe_response(group, state, addr, resp.status, sent.elapsed());
    let reusable = resp.keep_alive;
    let stored = match fill.admit(req, &mut resp) {
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
    let poolable = reusable && dest.proxy_header.is_none() && buf.is_empty();
    if poolable && (stored || resp.framing == Framing::None) {
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
    dest: &Dest<'_>,
    head: &[u8],
    t: &Timeouts,
) -> Result<(UpstreamStream, BytesMut, ResponseHead), Fault> {
    let mut fresh_only = false;
    loop {
        let failed = match open_and_send(dest, head, fresh_only, t).await {
            Ok((mut up, reused)) => match final_head(&mut up, t).await {
                Ok((buf, resp)) => return Ok((up, buf, resp)),
                Err(fault) => (fault, reused),
            },
            Err(failed) => failed,
        };
        match failed {
            (fault, true) if fault.stale_connection() => fresh_only = true,
            (fault, _) => return Err(fault),
        }
    }
}

/// The response head after any 1xx.
async fn final_head(
    up: &mut UpstreamStream,
    t: &Timeouts,
) -> Result<(BytesMut, ResponseHead), Fault> {
    let mut buf = BytesMut::with_capacity(RESPONSE_CHUNK);
    loop {
        let resp = crate::proxy::read_response_head(up, &mut buf, t.upstream_read, false).await?;
        if !(100..200).contains(&resp.status) {
            return Ok((buf, resp));
        }
    }
}

/// Reads a whole response body into the fill, removing chunked coding.
async fn read_body(
    up: &mut UpstreamStream,
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
        match crate::timed::within(limit, up.read_buf(buf)).await {
            Err(_) => return Err(Fault::ReadTimeout.into()),
            Ok((Err(e), _)) => return Err(Fault::Read(e).into()),
            Ok((Ok(0), _)) if framing == Framing::UntilClose => return Ok(()),
            Ok((Ok(0), _)) => return Err(FetchError::Body("closed before its end".into())),
            Ok((Ok(_), _)) => {}
        }
    }
}
