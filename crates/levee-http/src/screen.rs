//! Between routing and acting: the runtime ban list and a route's
//! protections (allow/deny list, Basic auth, rate limits, from
//! `levee-protect`), and for a proxied request
//! the start of its body, read under the client's minimum progress
//! (`pace.rs`) before any upstream is involved.

use std::net::IpAddr;
use std::time::Instant;

use levee_protect::{Request, Verdict};

use crate::conn::Client;
use crate::message::{Framing, RequestHead};
use crate::pace::{self, PaceError};
use crate::respond;
use crate::site::{Routed, Site, Target};

/// Body bytes read here before the proxy takes over: the proxy's own
/// prebuffer is the same size, so it finds them already there.
const BODY_START: u64 = 16 * 1024;

/// What the screening decided.
pub(crate) enum Screened {
    /// Go on to the route's action.
    Pass,
    /// Answer with this response instead.
    Reply(Vec<u8>),
}

/// A request head and its client, as rate-limit keys read them.
struct View<'a> {
    head: &'a RequestHead,
    peer: IpAddr,
}

impl Request for View<'_> {
    fn peer(&self) -> IpAddr {
        self.peer
    }

    fn path(&self) -> &[u8] {
        self.head.path()
    }

    fn query(&self) -> &[u8] {
        self.head.query()
    }

    fn header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) {
        for (n, v) in self.head.fields.iter() {
            if n.eq_ignore_ascii_case(name.as_bytes()) && f(v) {
                return;
            }
        }
    }
}

pub(crate) async fn screen(
    client: &mut Client,
    site: &Site,
    head: &RequestHead,
    routed: &Routed,
    keep_alive: bool,
) -> Screened {
    if let Some(reply) = guard(head, routed, client.origin.ip, keep_alive).await {
        return Screened::Reply(reply);
    }
    if matches!(routed.target, Target::Proxy { .. })
        && let Err(status) = read_body_start(client, head, site).await
    {
        return Screened::Reply(respond::error(status, &[], false, head.is_head()));
    }
    Screened::Pass
}

/// The route's allow/deny, Basic auth and rate limits for a request from
/// `peer`: the response that refuses it, if one does. HTTP/2 streams
/// relayed to an HTTP/2 upstream (http2/upstream.rs) pass here too.
pub(crate) async fn guard(
    head: &RequestHead,
    routed: &Routed,
    peer: IpAddr,
    keep_alive: bool,
) -> Option<Vec<u8>> {
    // A runtime ban (`levee ctl ban`) also ends a keep-alive connection
    // opened before it; with no ban this is one relaxed load.
    if levee_protect::ban::banned(peer) {
        return Some(respond::error(403, &[], false, head.is_head()));
    }
    let guard = routed.guard.as_ref()?;
    let view = View { head, peer };
    let authorization = head.fields.get("authorization");
    match guard.check(&view, authorization, Instant::now()).await {
        Verdict::Pass => None,
        Verdict::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Verdict::Denied => Some(respond::error(403, &[], keep_alive, head.is_head())),
        Verdict::Ambiguous { .. } => Some(respond::error(400, &[], keep_alive, head.is_head())),
        Verdict::Unauthorized { challenge } => {
            let extra = [("WWW-Authenticate", challenge.as_bytes())];
            Some(respond::error(401, &extra, keep_alive, head.is_head()))
        }
        Verdict::Limited {
            status,
            retry_after,
            ..
        } => {
            let retry = retry_after.to_string();
            let extra = [("Retry-After", retry.as_bytes())];
            Some(respond::error(status, &extra, keep_alive, head.is_head()))
        }
    }
}

/// Reads the first [`BODY_START`] bytes of a `Content-Length` body (all of a
/// smaller one) under the client's minimum progress. A body trickled in a
/// few bytes at a time is refused with 408 here instead of tying up a
/// connection for as long as the client likes. Chunked bodies and
/// `Expect: 100-continue` are left to the proxy's prebuffer.
async fn read_body_start(client: &mut Client, head: &RequestHead, site: &Site) -> Result<(), u16> {
    let Framing::Length(n) = head.framing else {
        return Ok(());
    };
    if site.pace.is_none() || head.expect_continue {
        return Ok(());
    }
    let max = site.limits.max_body;
    if max > 0 && n > max {
        // The proxy answers 413 without reading.
        return Ok(());
    }
    let want = usize::try_from(n.min(BODY_START)).unwrap_or(usize::MAX);
    while client.buf.len() < want {
        client.buf.reserve(want - client.buf.len());
        match pace::read_buf(
            &mut client.stream,
            &mut client.buf,
            site.timeouts.client_body,
        )
        .await
        {
            Ok(0) | Err(PaceError::Io(_)) => return Err(400),
            Ok(_) => {}
            Err(PaceError::TimedOut) => return Err(408),
        }
    }
    Ok(())
}
