//! A request's way through levee once its head is read, whatever the
//! client spoke (docs/architecture.md, "A request's life"): the phases
//! after `read head`, each a function.
//!
//! ```text
//! serve ─▶ route ─▶ rewrite (rewrite.rs) ─▶ protect (screen.rs) ─▶ act ─▶ (the caller) log
//!                                          │
//!                                          ├─ proxy: cache lookup (cache.rs) ─▶ forward (proxy.rs)
//!                                          ├─ static (static_route.rs), mirrors (mirror_route.rs)
//!                                          └─ redirect, respond (respond.rs)
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use levee_upstream::stats::RouteStats;

use crate::access_log::Entry;
use crate::exchange::{Exchange, Outcome, Reply};
use crate::message::RequestHead;
use crate::origin::Origin;
use crate::shape::RequestId;
use crate::site::{Routed, Site, Target};
use crate::{Shared, respond};

/// Routes, protects and acts on the request of `ex`, received on the
/// listener bound to `listener`; `served` requests came before it on its
/// connection. The caller logs it ([`log`]) once its response is out and
/// counts it in flight until then; the route it matched is returned for
/// its counters.
pub(crate) async fn serve<'s: 'c, 'c>(
    ex: &mut Exchange<'c>,
    listener: SocketAddr,
    shared: &Shared,
    site: &'s Site,
    served: u64,
) -> (Outcome, Option<&'s Routed>) {
    crate::listener::stats::count_request(listener);
    ex.shaping.id_field = site.request_id.as_ref();
    let max = site.limits.max_requests_per_connection;
    ex.keep_alive = ex.head.keep_alive && !shared.draining() && (max == 0 || served + 1 < max);
    // ACME HTTP-01 (levee_tls::challenge), before routing: a CA validating
    // a name levee is ordering gets the key authorization whatever the
    // routes say. Costs one prefix comparison per request; here, where
    // HTTP/1 and HTTP/2 exchanges both pass.
    if let Some(answer) = levee_tls::challenge::http01(ex.head.path()) {
        let reply = Reply {
            status: 200,
            fields: &[],
            content_type: "application/octet-stream",
            body: Cow::Borrowed(answer.as_bytes()),
            close: false,
            error: false,
        };
        return (ex.reply(&reply, site).await, None);
    }
    let Some(routed) = site.route(listener, ex.head.host_name(), ex.head.path()) else {
        return (ex.reply(&Reply::error(404, &[]), site).await, None);
    };
    // The matched route's header rules and error pages, for a refusal or a
    // redirect its rewrites answer with; the route they settle on replaces it.
    ex.shaping.shape = Some(&routed.shape);
    // The route's rewrites, boxed so that their state does not widen every
    // connection's task (conn.rs's size test); a route without any costs
    // this branch. Then the forwarded path (`forward_path`).
    let routed = if routed.rewrite.is_some() {
        match Box::pin(crate::rewrite::settle(ex, site, listener, routed)).await {
            Ok(routed) => routed,
            Err((answered, on)) => return (answered, on),
        }
    } else {
        routed.choose_path(&mut ex.head);
        routed
    };
    ex.shaping.shape = Some(&routed.shape);
    if let Some(refused) = crate::screen::protect(ex, site, routed).await {
        return (refused, Some(routed));
    }
    // One reference count for a route that compresses; nothing otherwise.
    ex.compress.clone_from(&routed.compress);
    (act(ex, site, &routed.target).await, Some(routed))
}

/// The counters of the route a request matched (`None`: no route).
pub(crate) fn route_stats(routed: Option<&Routed>) -> &RouteStats {
    match routed {
        Some(r) => &r.stats,
        None => Site::unrouted(),
    }
}

/// Runs a route's action.
async fn act(ex: &mut Exchange<'_>, site: &Site, target: &Target) -> Outcome {
    match target {
        Target::Proxy {
            group,
            preserve_host,
            cache,
        } => match cache {
            Some(c) => crate::cache::serve(ex, site, group, *preserve_host, c).await,
            None => crate::proxy::forward(ex, site, group, *preserve_host).await,
        },
        Target::Respond {
            status,
            body,
            content_type,
        } => {
            let reply = Reply {
                status: *status,
                fields: &[],
                content_type,
                body: Cow::Borrowed(body),
                close: false,
                error: false,
            };
            ex.reply(&reply, site).await
        }
        Target::Redirect(r) => {
            let location = respond::location(r, &ex.head);
            let fields = [("Location", location.as_bytes())];
            ex.reply(&Reply::error(r.status, &fields), site).await
        }
        Target::Static(root) => crate::static_route::serve(ex, site, root).await,
        // Boxed: its state must not widen every connection's task.
        Target::Mirrors(set) => Box::pin(crate::mirror_route::serve(ex, site, set)).await,
    }
}

/// The read head phase's last step: the request's id, taken from a
/// trusted client or minted (shape/id.rs); none when ids are off.
pub(crate) fn request_id(site: &Site, head: &RequestHead, origin: &Origin) -> RequestId {
    match &site.request_id {
        Some(field) => field.id_for(head, origin),
        None => RequestId::none(),
    }
}

/// The log phase: the request's access log line, and its count on its
/// route's counters (`None` for a request whose head could not be read).
/// The count reuses the log's one clock reading.
pub(crate) fn log(
    site: &Site,
    client: IpAddr,
    head: Option<(&RequestHead, &RequestId)>,
    outcome: &Outcome,
    started: Instant,
    route: Option<&RouteStats>,
) {
    let request_time = crate::clock::now_std().saturating_duration_since(started);
    if let Some(route) = route {
        route.observe(outcome.status, request_time);
    }
    site.access_log.log(&Entry {
        client,
        request: head.map(|(h, _)| h),
        request_id: head.map(|(_, id)| id.as_bytes()).unwrap_or_default(),
        status: outcome.status,
        bytes: outcome.bytes,
        request_time,
        upstream_time: outcome.upstream_time,
        upstream: outcome.upstream,
    });
}

/// A request's span, inside its connection's, naming its id: every line
/// logged about the request carries it. Its fields are formatted only when
/// it is on.
pub(crate) fn request_span(head: &RequestHead, id: &RequestId) -> tracing::Span {
    tracing::debug_span!(
        target: SPAN_TARGET,
        "request",
        method = %String::from_utf8_lossy(head.method()),
        path = %String::from_utf8_lossy(head.path()),
        request_id = %String::from_utf8_lossy(id.as_bytes()),
    )
}

/// The target of the connection and request spans: `[log] level =
/// "info,levee::span=debug"` turns them on (docs/operations.md, "Logs").
pub const SPAN_TARGET: &str = "levee::span";
