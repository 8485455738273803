//! The protect phase, between routing and acting: the runtime ban list
//! and a route's protections (allow/deny list, Basic auth, rate limits,
//! from `levee-protect`), and for a proxied request the start of its body,
//! read under the client's minimum progress (`pace.rs`) before any
//! upstream is involved.

use std::net::IpAddr;
use std::time::Instant;

use levee_protect::{Request, Verdict};

use crate::exchange::{Exchange, Outcome, Reply};
use crate::message::RequestHead;
use crate::site::{Routed, Site, Target};

/// How the protections refuse a request: the status, the one field
/// that goes with it (`WWW-Authenticate`, `Retry-After`), and whether the
/// connection ends with it (a ban).
#[derive(Debug)]
pub(crate) struct Refused {
    pub status: u16,
    pub field: Option<(&'static str, String)>,
    pub close: bool,
}

impl Refused {
    fn of(status: u16) -> Refused {
        Refused {
            status,
            field: None,
            close: false,
        }
    }

    /// Answers the exchange with the refusal.
    pub(crate) async fn answer(&self, ex: &mut Exchange<'_>, site: &Site) -> Outcome {
        let field = self.field.as_ref().map(|(n, v)| (*n, v.as_bytes()));
        let reply = Reply::error(self.status, field.as_slice());
        let reply = if self.close { reply.closing() } else { reply };
        ex.reply(&reply, site).await
    }
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

/// The protect phase: the route's protections, then, for a proxied
/// request, the start of its body under the client's minimum progress.
/// `Some`: the request was answered instead.
pub(crate) async fn protect(
    ex: &mut Exchange<'_>,
    site: &Site,
    routed: &Routed,
) -> Option<Outcome> {
    if let Some(refused) = refuse(ex, site, routed).await {
        return Some(refused);
    }
    // A stream to an HTTP/2 server is relayed as it comes (gRPC).
    let h2 = ex.is_h2();
    if let Target::Proxy { group, .. } = &routed.target
        && !(h2 && group.config.protocol.is_http2())
        && let Err(status) = ex.read_body_start(site).await
    {
        return Some(ex.reply(&Reply::error(status, &[]).closing(), site).await);
    }
    None
}

/// The route's protections alone, without the body's start: those of a
/// route a rewrite leaves (rewrite.rs). `Some`: the request was answered.
pub(crate) async fn refuse(ex: &mut Exchange<'_>, site: &Site, routed: &Routed) -> Option<Outcome> {
    let refused = guard(&ex.head, routed, ex.origin.ip).await?;
    Some(refused.answer(ex, site).await)
}

/// The runtime ban list, then the route's allow/deny, Basic auth and rate
/// limits for a request from `peer`: the refusal, if one refuses it.
async fn guard(head: &RequestHead, routed: &Routed, peer: IpAddr) -> Option<Refused> {
    // A runtime ban (`levee ctl ban`) also ends a keep-alive connection
    // opened before it; with no ban this is one relaxed load.
    if levee_protect::ban::banned(peer) {
        return Some(Refused {
            close: true,
            ..Refused::of(403)
        });
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
        Verdict::Denied => Some(Refused::of(403)),
        Verdict::Ambiguous { .. } => Some(Refused::of(400)),
        Verdict::Unauthorized { challenge } => Some(Refused {
            field: Some(("WWW-Authenticate", challenge)),
            ..Refused::of(401)
        }),
        Verdict::Limited {
            status,
            retry_after,
            ..
        } => Some(Refused {
            field: Some(("Retry-After", retry_after.to_string())),
            ..Refused::of(status)
        }),
    }
}
