//! A caching proxy route: the request's life when its route has `cache = true`.
//!
//! ```text
//! PURGE? ─▶ purge (allowed networks)
//! cacheable request? (method, bypass rules, no body) ── no ─▶ proxy (then invalidate after a successful unsafe method)
//!   ─▶ key ─▶ look up (Vary: marker, then variant)
//!   ─▶ fresh, or stale the client or stale-while-revalidate allows ─▶ answer from the store
//!   ─▶ only-if-cached ─▶ 504
//!   ─▶ coalesce: lead, or wait (bounded) for the lead and answer from its stored response
//!   ─▶ proxy with a Fill: store while streaming; on upstream failure answer stale if allowed
//! ```
//!
//! The RFC 9111 rules live in `levee-cache`; this module applies them to
//! levee's requests and sockets.

pub(crate) mod compressed;
mod fetch;
pub mod fill;
mod head;
mod invalidate;
mod purge;
mod refresh;
pub(crate) mod reply;
pub mod setup;
mod tiers;

use std::sync::Arc;

use levee_cache::directives::Request as RequestDirectives;
use levee_cache::flight::{Join, Landing, Lead};
use levee_cache::freshness::{Heuristic, Use, decide};
use levee_cache::shared::FleetLock;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::Object;
use levee_cache::tiers::Source;
use levee_cache::{Field, key};
use levee_upstream::Group;

use crate::exchange::{Exchange, Next, Outcome, Reply};
use crate::message::{Framing, RequestHead};
use crate::proxy;
use crate::site::Site;
use fill::{Admit, Answer, Fill};
pub(crate) use invalidate::invalidate;
pub use purge::{Purge, PurgeError, purge, purge_local, purge_shared};
pub use setup::{RouteCache, SiteCache, Tier};

/// Seconds since the epoch: the cache's clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves the exchange's request on a caching route: the cache lookup
/// phase, then a hit from the store, or the proxy with a [`Fill`] (the
/// cache fill phase).
pub async fn serve(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Arc<Group>,
    preserve_host: bool,
    route: &RouteCache,
) -> Outcome {
    let Some(cache) = site.cache.as_ref() else {
        return proxy::forward(ex, site, group, preserve_host).await;
    };
    if ex.head.method() == b"PURGE" {
        return purge::serve(ex, site, cache, route).await;
    }
    if group.config.protocol.is_http2() {
        // The cache does not apply to streams relayed to HTTP/2 servers:
        // straight to the proxy, never into a key's flight, where requests
        // would wait for a fill that stores nothing.
        return proxy::forward(ex, site, group, preserve_host).await;
    }
    let fields: Vec<Field<'_>> = ex.head.fields.iter().collect();
    if !cacheable_request(route, &ex.head, &fields) {
        // A Fill without a key stores nothing: after an unsafe method it
        // invalidates when the response head shows success, before the
        // client can send its next request, and it keeps targeted fields
        // that stop at levee from the client.
        let https = ex.origin.https;
        let mut fill = Fill::new(cache, Vec::new(), route, "bypass", None, https);
        return forward_and_finish(ex, site, group, preserve_host, &mut fill).await;
    }
    let cc: Vec<&[u8]> = levee_cache::values(&fields, "cache-control").collect();
    let directives = RequestDirectives::parse(&cc);
    let req = &ex.head;
    let key = key::primary(
        &route.spec,
        scheme(ex.origin.https),
        req.host_name(),
        req.uri(),
        &fields,
    );
    let (stale, source) = look_up(cache, &key, &fields).await;
    let mut miss = head::Miss {
        cache,
        route,
        group,
        preserve_host,
        key,
        fwd: "miss",
        stale,
        source,
    };
    if miss.stale.is_some() {
        match use_stored(ex, site, cache, &miss, &directives) {
            Ok(served) => return hit(ex, site, route, &served).await,
            Err(fwd) => miss.fwd = fwd,
        }
    }
    if directives.only_if_cached {
        return reply_bytes(ex, site, &Reply::error(504, &[])).await;
    }
    let (plain, head_miss) = plain_get_or_head(&ex.head, &fields);
    let lead = match flight(ex, site, &miss, plain, head_miss).await {
        Ok(lead) => lead,
        Err(answered) => return answered,
    };
    let (lead, fleet_lock) = match lead {
        Some(lead) if plain && miss.stale.is_none() && cache.tier.store.shared.is_some() => {
            match from_fleet(ex, site, &miss, lead).await {
                Ok((lead, lock)) => (Some(lead), lock),
                Err(answered) => return answered,
            }
        }
        other => (other, None),
    };
    Counters::add(&STATS.misses, 1);
    let mut fill = fill_for(miss, ex.origin.https, lead, fleet_lock, plain);
    let out = forward_and_finish(ex, site, group, preserve_host, &mut fill).await;
    match fill.answer().cloned() {
        Some(answer) => hit(ex, site, route, &Served::from(&answer)).await,
        None => out,
    }
}

/// Whether the request is a plain GET, or a plain HEAD: only those lead a
/// fetch others wait for, since a conditional or a range request gets an
/// answer that is not the complete representation. A HEAD leads fetching
/// with GET (head.rs).
fn plain_get_or_head(req: &RequestHead, fields: &[Field<'_>]) -> (bool, bool) {
    let unconditional = ["range", "if-none-match", "if-modified-since", "if-range"]
        .iter()
        .all(|f| levee_cache::first(fields, f).is_none());
    (
        req.method() == b"GET" && unconditional,
        req.is_head() && unconditional,
    )
}

/// The stored response for `key`, and the key it is stored under (a Vary
/// variant's): the local tiers first, then the fleet's shared tier.
async fn look_up(
    cache: &SiteCache,
    key: &[u8],
    fields: &[Field<'_>],
) -> (Option<(Arc<Object>, Vec<u8>)>, Source) {
    let mut looked = tiers::lookup_keyed(cache, key, fields);
    if looked.is_none() && cache.tier.store.shared.is_some() {
        // Asked by every local miss, so a stale shared response is
        // revalidated or stands in for a failed upstream as a local one.
        // Boxed, as the shared tier's other asks below: their state would
        // widen every connection's future (conn.rs's size test), and only
        // a fleet's shared cache pays the box.
        looked = Box::pin(tiers::find_shared(cache, key, fields)).await;
    }
    match looked {
        Some((obj, stored_under, source)) => (Some((obj, stored_under)), source),
        None => (None, Source::Memory),
    }
}

/// What the stored response is good for (RFC 9111 §4.2, §5.2.1): an
/// answer, fresh or stale where the client or stale-while-revalidate
/// allows (refreshed in the background then); else (`Err`) the reason it
/// is revalidated upstream, for `Cache-Status`.
fn use_stored<'m>(
    ex: &Exchange<'_>,
    site: &Site,
    cache: &Arc<SiteCache>,
    miss: &'m head::Miss<'_>,
    directives: &RequestDirectives,
) -> Result<Served<'m>, &'static str> {
    let Some((obj, under)) = &miss.stale else {
        return Err(miss.fwd);
    };
    match decide(&obj.meta, directives, unix_now(), Heuristic::default()) {
        Use::Fresh => Ok(Served {
            coded_from: Some((miss.cache, &under[..])),
            ..Served::plain(obj, "hit", miss.source)
        }),
        Use::StaleAllowed => {
            Counters::add(&STATS.stale, 1);
            Ok(Served::plain(obj, "hit; detail=stale", miss.source))
        }
        Use::StaleWhileRevalidate => {
            Counters::add(&STATS.stale, 1);
            refresh::spawn(refresh::Refresh {
                cache: cache.clone(),
                route: miss.route.clone(),
                group: miss.group.clone(),
                req: ex.head.clone(),
                origin: ex.origin,
                proxy_header: crate::proxy::proxy_header(miss.group, ex),
                preserve_host: miss.preserve_host,
                shaping: ex.held(),
                timeouts: site.timeouts,
                key: miss.key.clone(),
                stale: (obj.clone(), under.clone()),
            });
            let detail = "hit; detail=stale-while-revalidate";
            Ok(Served::plain(obj, detail, miss.source))
        }
        Use::Revalidate if directives.no_cache => Err("request"),
        Use::Revalidate => Err("stale"),
    }
}

/// The request's place in its key's flight (coalescing): its lead
/// (`Some`), or one answered (`Err`) from what another request stored, or
/// a HEAD miss's fetch with GET; `None`: it goes upstream on its own.
/// Others than a plain GET or HEAD wait for a fetch in flight but never
/// lead one.
async fn flight<'c>(
    ex: &mut Exchange<'_>,
    site: &Site,
    miss: &head::Miss<'c>,
    plain: bool,
    head_miss: bool,
) -> Result<Option<Lead<'c>>, Outcome> {
    let flights = &miss.cache.tier.flights;
    let join = if plain || head_miss {
        flights.join(&miss.key, unix_now())
    } else {
        flights.wait_for(&miss.key).map_or(Join::Pass, Join::Wait)
    };
    match join {
        Join::Lead(lead) if head_miss => {
            let miss = head::Miss {
                key: miss.key.clone(),
                stale: miss.stale.clone(),
                ..*miss
            };
            match Box::pin(head::fetch_as_get(ex, site, miss, lead)).await {
                Some(answered) => Err(answered),
                None => Ok(None),
            }
        }
        Join::Lead(lead) => Ok(Some(lead)),
        Join::Wait(waiter) => {
            Counters::add(&STATS.coalesced, 1);
            if waiter.wait(miss.cache.config.lock_timeout).await != Landing::Stored {
                return Ok(None);
            }
            // The fields again: the caller's borrow the exchange, which a
            // hit takes mutably.
            let fields: Vec<Field<'_>> = ex.head.fields.iter().collect();
            let Some((obj, source)) =
                Box::pin(tiers::after_wait(miss.cache, &miss.key, &fields)).await
            else {
                return Ok(None);
            };
            Counters::add(&STATS.hits, 1);
            let served = Served::plain(&obj, "hit; collapsed", source);
            Err(hit(ex, site, miss.route, &served).await)
        }
        Join::Pass => Ok(None),
    }
}

/// The lead of a plain GET that found nothing asks the fleet's shared
/// tier before the origin (one request per member: the others wait on
/// the local flight). A hit there answers (`Err`); else the lead fetches,
/// holding the fleet's lock if it won it.
async fn from_fleet<'c>(
    ex: &mut Exchange<'_>,
    site: &Site,
    miss: &head::Miss<'c>,
    lead: Lead<'c>,
) -> Result<(Lead<'c>, Option<FleetLock>), Outcome> {
    let asked = {
        let fields: Vec<Field<'_>> = ex.head.fields.iter().collect();
        let cc: Vec<&[u8]> = levee_cache::values(&fields, "cache-control").collect();
        let directives = RequestDirectives::parse(&cc);
        Box::pin(tiers::ask_shared(
            miss.cache,
            &miss.key,
            &fields,
            &directives,
        ))
        .await
    };
    match asked {
        tiers::Asked::Hit(obj) => {
            let pass_for = miss.cache.config.hit_for_miss.as_secs();
            lead.land(Landing::Stored, unix_now(), pass_for);
            let served = Served::plain(&obj, "hit", Source::Shared);
            Err(hit(ex, site, miss.route, &served).await)
        }
        tiers::Asked::Fetch(lock) => Ok((lead, lock)),
    }
}

/// The fill a miss is forwarded with: what it stores under, the stale
/// response it may stand in with, the flight it leads and the fleet's lock.
fn fill_for<'c>(
    miss: head::Miss<'c>,
    https: bool,
    lead: Option<Lead<'c>>,
    fleet_lock: Option<FleetLock>,
    plain: bool,
) -> Fill<'c> {
    let mut fill = Fill::new(
        miss.cache, miss.key, miss.route, miss.fwd, miss.stale, https,
    );
    fill.stale_from(miss.source);
    fill.fleet_lock(fleet_lock);
    if let Some(lead) = lead {
        fill.lead(lead);
    }
    if plain {
        // The client's own validators go upstream as they are otherwise.
        fill.validate();
    }
    fill
}

/// [`forward`], then the fill finished (landed; stored in or purged from
/// the shared tier). Boxed, as the HEAD miss is: a fill's state would
/// otherwise widen every connection's future by ~2 KB (conn.rs's size
/// test), and a miss allocates far more than this one box anyway.
async fn forward_and_finish(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    preserve_host: bool,
    fill: &mut Fill<'_>,
) -> Outcome {
    Box::pin(async move {
        let out = forward(ex, site, group, preserve_host, fill).await;
        fill.finish().await;
        out
    })
    .await
}

/// The proxy's phases with the cache fill between receive and respond:
/// the stored validators go upstream, the response head decides storing
/// (or answering from the store: a 304, a stale response standing in for
/// an error), and the body is copied as it is relayed. A stale response
/// may also answer for a request no server could take or answer.
async fn forward(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    preserve_host: bool,
    fill: &mut Fill<'_>,
) -> Outcome {
    let members = group.members();
    // With no server usable, a stale copy the cache may serve answers
    // before panic mode sends the request to a server believed down.
    if !group.any_usable(&members, tokio::time::Instant::now())
        && let Some(out) = fall_back(fill, 503, None, None)
    {
        return out;
    }
    let validators = fill.validators();
    let fwd = proxy::Forward {
        group,
        preserve_host,
        validators: &validators,
    };
    let mut answer = None;
    let mut received = match proxy::send(ex, site, &fwd, &members, &mut answer).await {
        Ok(received) => received,
        Err(failed) => {
            if failed.fault.cause() != levee_upstream::Cause::Client
                && let Some(out) = fall_back(
                    fill,
                    failed.fault.status(),
                    failed.upstream_time,
                    failed.upstream,
                )
            {
                return out;
            }
            return proxy::answer(ex, site, group, failed).await;
        }
    };
    // A 101 turns the exchange into a tunnel before any caching.
    if received.upgrades() {
        return proxy::respond(ex, site, group, received, &[], None).await;
    }
    let Some(resp) = received.head_mut() else {
        return proxy::respond(ex, site, group, received, &[], None).await;
    };
    let admitted = fill.admit(&ex.head, resp);
    // An invalidation reaches the shared tier before the client hears of
    // its success.
    fill.remove_shared().await;
    match admitted {
        Admit::Answer => proxy::answered(received, group),
        Admit::Relay { copy, status_line } => {
            let tee = copy.then_some(fill as &mut dyn crate::body::BodySink);
            proxy::respond(ex, site, group, received, &status_line, tee).await
        }
    }
}

/// Leaves a failure to the cache when it has a stale response that may
/// stand in for it (stale-if-error, every server down); the returned
/// outcome is then replaced by the cache's answer.
fn fall_back(
    fill: &mut Fill<'_>,
    status: u16,
    upstream_time: Option<std::time::Duration>,
    upstream: Option<std::net::SocketAddr>,
) -> Option<Outcome> {
    fill.fall_back(status).then_some(Outcome {
        upstream_time,
        upstream,
        ..Outcome::of(status, Next::KeepAlive)
    })
}

/// Whether the request may be answered from, and stored in, the cache.
fn cacheable_request(route: &RouteCache, req: &RequestHead, fields: &[Field<'_>]) -> bool {
    let method_ok = match req.method() {
        b"GET" => route.get,
        b"HEAD" => route.head,
        _ => false,
    };
    method_ok
        && req.framing == Framing::None
        && !route
            .bypass_headers
            .iter()
            .any(|h| levee_cache::first(fields, h).is_some())
        && !route
            .bypass_cookies
            .iter()
            .any(|c| key::cookie(fields, c).is_some())
}

/// What a hit answers with.
struct Served<'a> {
    obj: &'a Object,
    /// The RFC 9211 `Cache-Status` detail.
    detail: &'a str,
    /// Lines for this client only (a 304's `Set-Cookie`).
    extra: &'a [u8],
    /// The tier it came from.
    source: Source,
    /// A fresh hit's store and key: its compressed variants may answer.
    coded_from: Option<(&'a SiteCache, &'a [u8])>,
}

impl<'a> Served<'a> {
    fn plain(obj: &'a Object, detail: &'a str, source: Source) -> Served<'a> {
        Served {
            obj,
            detail,
            extra: &[],
            source,
            coded_from: None,
        }
    }
}

impl<'a> From<&'a Answer> for Served<'a> {
    fn from(a: &'a Answer) -> Served<'a> {
        Served {
            obj: &a.obj,
            detail: &a.detail,
            extra: &a.extra,
            source: a.source,
            coded_from: None,
        }
    }
}

/// Answers from a stored response.
async fn hit(
    ex: &mut Exchange<'_>,
    site: &Site,
    route: &RouteCache,
    served: &Served<'_>,
) -> Outcome {
    let Served {
        obj,
        detail,
        extra,
        source,
        coded_from,
    } = *served;
    if detail == "hit" {
        Counters::add(&STATS.hits, 1);
    }
    source.count_hit();
    // A stored compressed variant answers as the identity entry would.
    let coded = coded_from.and_then(|(cache, under)| compressed::variant(ex, cache, under, obj));
    let (obj, detail) = match &coded {
        Some((v, true)) => (&**v, "hit; detail=variant"),
        Some((v, false)) => (&**v, detail),
        None => (obj, detail),
    };
    let mut lines = if route.status_header {
        format!("Cache-Status: levee; {detail}{}\r\n", source.status_param()).into_bytes()
    } else {
        Vec::new()
    };
    lines.extend_from_slice(extra);
    let age = obj.meta.current_age(unix_now());
    let answer = reply::answer(obj, &ex.head, age, &lines, ex.keep_alive);
    let status = answer.status;
    let stored_len = answer.body_len();
    let (ok, coded) = ex.send_stored(answer, site).await;
    Outcome {
        bytes: coded.unwrap_or(stored_len),
        ..Outcome::of(
            status,
            if ok && ex.keep_alive {
                Next::KeepAlive
            } else {
                Next::Close
            },
        )
    }
}

/// Sends `reply` as the cache's answer (no HSTS), keeping the connection
/// open if the exchange may.
pub(crate) async fn reply_bytes(ex: &mut Exchange<'_>, site: &Site, reply: &Reply<'_>) -> Outcome {
    let keep_alive = ex.keep_alive;
    let sent = ex.send_reply(reply, keep_alive, false, site).await;
    let next = if sent.is_some() && keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    };
    Outcome {
        bytes: sent.unwrap_or(0),
        ..Outcome::of(reply.status, next)
    }
}

/// The schemes a key may start with.
pub(crate) use levee_cache::purge::SCHEMES;

/// The client's scheme, the first part of its keys: what the upstream is
/// told in `X-Forwarded-Proto` (the origin's), so a trusted balancer's https
/// and http clients, both on plain connections, never share a stored
/// response (an app's redirect to https must not be served to https clients).
pub(crate) fn scheme(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}
