//! stale-while-revalidate (RFC 5861): the client got the stale response;
//! this task fetches a new one in the background, without a client.
//!
//! One refresh per key at a time: the task leads the key's flight, so
//! concurrent stale hits start no second fetch (and misses arriving
//! meanwhile wait for it). The fetch is the plain part of a proxy exchange:
//! pick a server, connect, send the head with the stored validators, read
//! the response; a 304 refreshes the stored response, a storable response
//! replaces it. It does not feed passive health or use the pool: it is
//! rare, and a failure changes nothing but the age of what is stored.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use levee_cache::flight::Join;
use levee_cache::store::Object;
use levee_config::Timeouts;
use levee_upstream::stream::UpstreamStream;
use levee_upstream::{Affinity, Group};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

use super::fill::{Admit, Fill};
use super::{RouteCache, SiteCache, unix_now};
use crate::body::BodySink;
use crate::h1::ChunkedDecoder;
use crate::message::{Framing, RequestHead};
use crate::proxy::headers::{self, Forwarding};

/// What a background refresh needs, owned, since it outlives the request.
#[derive(Debug)]
pub struct Refresh {
    pub cache: Arc<SiteCache>,
    pub route: RouteCache,
    pub group: Arc<Group>,
    pub req: RequestHead,
    pub client_ip: IpAddr,
    /// The client came over TLS (`X-Forwarded-Proto`).
    pub tls: bool,
    /// The PROXY header to send first, when the upstream takes one.
    pub proxy_header: Option<Vec<u8>>,
    pub preserve_host: bool,
    pub timeouts: Timeouts,
    pub key: Vec<u8>,
    pub stale: (Arc<Object>, Vec<u8>),
}

/// Starts the refresh unless one for the key is in flight already.
pub fn spawn(r: Refresh) {
    tokio::spawn(async move {
        let Join::Lead(lead) = r.cache.tier.flights.join(&r.key, unix_now()) else {
            return;
        };
        let mut fill = Fill::new(
            &r.cache,
            r.key.clone(),
            &r.route,
            "stale",
            Some(r.stale.clone()),
        );
        fill.validate();
        fill.lead(lead);
        if let Err(e) = fetch(&r, &mut fill).await {
            tracing::debug!(error = %e, "background refresh failed");
        }
        fill.land();
    });
}

#[derive(Debug, thiserror::Error)]
enum RefreshError {
    #[error("no server available")]
    NoServer,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("bad response: {0}")]
    Upstream(String),
}

impl From<tokio::time::error::Elapsed> for RefreshError {
    fn from(_: tokio::time::error::Elapsed) -> RefreshError {
        RefreshError::Timeout
    }
}

async fn fetch(r: &Refresh, fill: &mut Fill<'_>) -> Result<(), RefreshError> {
    let t = &r.timeouts;
    let members = r.group.members();
    let index = r
        .group
        .pick(&members, Affinity::None, &[], Instant::now())
        .ok_or(RefreshError::NoServer)?;
    let member = members.get(index).ok_or(RefreshError::NoServer)?;
    let mut head = headers::upstream_request(
        &r.req,
        &Forwarding {
            client_ip: r.client_ip,
            preserve_host: r.preserve_host,
            server_authority: &member.configured,
            tls: r.tls,
            upgrade: None,
        },
    );
    fill.add_validators(&mut head);
    let tls = r
        .group
        .tls
        .as_ref()
        .map(|t| (t, member.configured.as_str()));
    let mut up = crate::proxy::connect(member.addr, tls, t.upstream_connect)
        .await
        .map_err(|e| RefreshError::Upstream(e.to_string()))?;
    let write = async {
        if let Some(h) = &r.proxy_header {
            up.write_all(h).await?;
        }
        up.write_all(&head).await?;
        up.flush().await
    };
    timeout(t.upstream_write, write).await??;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let resp = loop {
        let resp = crate::proxy::read_response_head(&mut up, &mut buf, t.upstream_read, false)
            .await
            .map_err(|e| RefreshError::Upstream(e.to_string()))?;
        if !(100..200).contains(&resp.status) {
            break resp;
        }
    };
    let Admit::Relay { copy: true, .. } = fill.admit(&r.req, &resp) else {
        return Ok(());
    };
    read_body(&mut up, &mut buf, resp.framing, fill, t.upstream_read).await?;
    fill.complete();
    Ok(())
}

/// Reads a whole response body into the fill, removing chunked coding.
async fn read_body(
    up: &mut UpstreamStream,
    buf: &mut BytesMut,
    framing: Framing,
    tee: &mut Fill<'_>,
    limit: std::time::Duration,
) -> Result<(), RefreshError> {
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
                    .map_err(|e| RefreshError::Upstream(e.to_string()))?;
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
            return Ok(());
        }
        buf.reserve(16 * 1024);
        if timeout(limit, up.read_buf(buf)).await?? == 0 {
            return match framing {
                Framing::UntilClose => Ok(()),
                _ => Err(RefreshError::Upstream(
                    "closed before the end of the body".into(),
                )),
            };
        }
    }
}
