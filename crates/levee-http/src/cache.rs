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
mod purge;
mod refresh;
pub(crate) mod reply;
pub mod setup;
mod tiers;

use std::sync::Arc;

use levee_cache::directives::Request as RequestDirectives;
use levee_cache::flight::{Join, Landing};
use levee_cache::freshness::{Heuristic, Use, decide};
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::{Object, Storage};
use levee_cache::tiers::Source;
use levee_cache::{Field, key};
use levee_upstream::Group;

use crate::exchange::{Exchange, Next, Outcome, Reply};
use crate::message::{Framing, RequestHead};
use crate::proxy;
use crate::site::Site;
use fill::{Admit, Answer, Fill};
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
        // What it invalidated goes from the shared tier too (finish).
        return Box::pin(forward_and_finish(
            ex,
            site,
            group,
            preserve_host,
            &mut fill,
        ))
        .await;
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
    let mut looked = tiers::lookup_keyed(cache, &key, &fields);
    if looked.is_none() && cache.tier.store.shared.is_some() {
        // Asked by every local miss, so a stale shared response is
        // revalidated or stands in for a failed upstream as a local one.
        // Boxed, as the shared tier's other asks below: their state would
        // widen every connection's future (conn.rs's size test), and only
        // a fleet's shared cache pays the box.
        looked = Box::pin(tiers::find_shared(cache, &key, &fields)).await;
    }
    let (found, source) = match looked {
        Some((obj, stored_under, source)) => (Some((obj, stored_under)), source),
        None => (None, Source::Memory),
    };
    let mut fwd = "miss";
    if let Some((obj, _)) = &found {
        let now = unix_now();
        match decide(&obj.meta, &directives, now, Heuristic::default()) {
            Use::Fresh => {
                let served = Served {
                    coded_from: found.as_ref().map(|(_, under)| (&**cache, &under[..])),
                    ..Served::plain(obj, "hit", source)
                };
                return hit(ex, site, route, &served).await;
            }
            Use::StaleAllowed => {
                Counters::add(&STATS.stale, 1);
                let served = Served::plain(obj, "hit; detail=stale", source);
                return hit(ex, site, route, &served).await;
            }
            Use::StaleWhileRevalidate => {
                Counters::add(&STATS.stale, 1);
                if let Some(stale) = found.clone() {
                    refresh::spawn(refresh::Refresh {
                        cache: cache.clone(),
                        route: route.clone(),
                        group: group.clone(),
                        req: ex.head.clone(),
                        origin: ex.origin,
                        proxy_header: crate::proxy::proxy_header(group, ex),
                        preserve_host,
                        shaping: ex.held(),
                        timeouts: site.timeouts,
                        key: key.clone(),
                        stale,
                    });
                }
                let served = Served::plain(obj, "hit; detail=stale-while-revalidate", source);
                return hit(ex, site, route, &served).await;
            }
            Use::Revalidate => {
                fwd = if directives.no_cache {
                    "request"
                } else {
                    "stale"
                }
            }
        }
    }
    if directives.only_if_cached {
        return reply_bytes(ex, site, &Reply::error(504, &[])).await;
    }
    // Only a plain GET fetches for others: a conditional or a range request
    // gets an answer that is not the complete representation. A plain HEAD
    // leads too, fetching with GET (head.rs).
    let unconditional = ["range", "if-none-match", "if-modified-since", "if-range"]
        .iter()
        .all(|f| levee_cache::first(&fields, f).is_none());
    let plain = ex.head.method() == b"GET" && unconditional;
    let head_miss = ex.head.is_head() && unconditional;
    // Others wait for a fetch in flight but never lead one.
    let flights = &cache.tier.flights;
    let join = if plain || head_miss {
        flights.join(&key, unix_now())
    } else {
        flights.wait_for(&key).map_or(Join::Pass, Join::Wait)
    };
    let lead = match join {
        Join::Lead(lead) if head_miss => {
            let miss = head::Miss {
                cache,
                route,
                group,
                preserve_host,
                key: key.clone(),
                fwd,
                stale: found.clone(),
                source,
            };
            if let Some(out) = Box::pin(head::fetch_as_get(ex, site, miss, lead)).await {
                return out;
            }
            None
        }
        Join::Lead(lead) => Some(lead),
        Join::Wait(waiter) => {
            Counters::add(&STATS.coalesced, 1);
            if waiter.wait(cache.config.lock_timeout).await == Landing::Stored
                && let Some((obj, source)) = Box::pin(tiers::after_wait(cache, &key, &fields)).await
            {
                Counters::add(&STATS.hits, 1);
                let served = Served::plain(&obj, "hit; collapsed", source);
                return hit(ex, site, route, &served).await;
            }
            None
        }
        Join::Pass => None,
    };
    // The lead of a plain GET asks the fleet's shared tier before the
    // origin (one request per member: the others wait on the local flight).
    let mut fleet_lock = None;
    let lead = match lead {
        Some(lead) if plain && found.is_none() && cache.tier.store.shared.is_some() => {
            // The fields again: the HEAD-miss arm above borrowed the
            // exchange mutably since they were first read.
            let asked = {
                let fields: Vec<Field<'_>> = ex.head.fields.iter().collect();
                let cc: Vec<&[u8]> = levee_cache::values(&fields, "cache-control").collect();
                let directives = RequestDirectives::parse(&cc);
                Box::pin(tiers::ask_shared(cache, &key, &fields, &directives)).await
            };
            match asked {
                tiers::Asked::Hit(obj) => {
                    let pass_for = cache.config.hit_for_miss.as_secs();
                    lead.land(Landing::Stored, unix_now(), pass_for);
                    let served = Served::plain(&obj, "hit", Source::Shared);
                    return hit(ex, site, route, &served).await;
                }
                tiers::Asked::Fetch(lock) => {
                    fleet_lock = lock;
                    Some(lead)
                }
            }
        }
        other => other,
    };
    Counters::add(&STATS.misses, 1);
    let https = ex.origin.https;
    let mut fill = Fill::new(cache, key, route, fwd, found, https);
    fill.stale_from(source);
    fill.fleet_lock(fleet_lock);
    if let Some(lead) = lead {
        fill.lead(lead);
    }
    if plain {
        // The client's own validators go upstream as they are otherwise.
        fill.validate();
    }
    // Boxed, like the bypass above and the HEAD miss: a fill's state would
    // otherwise widen every connection's future by ~2 KB (conn.rs's size
    // test), and a miss allocates far more than this one box anyway.
    let out = Box::pin(forward_and_finish(
        ex,
        site,
        group,
        preserve_host,
        &mut fill,
    ))
    .await;
    match fill.answer().cloned() {
        Some(answer) => hit(ex, site, route, &Served::from(&answer)).await,
        None => out,
    }
}

/// [`forward`], then the fill finished (landed; stored in or purged from
/// the shared tier): one future, which the caller boxes.
async fn forward_and_finish(
    ex: &mut Exchange<'_>,
    site: &Site,
    group: &Group,
    preserve_host: bool,
    fill: &mut Fill<'_>,
) -> Outcome {
    let out = forward(ex, site, group, preserve_host, fill).await;
    fill.finish().await;
    out
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

/// After a successful request with an unsafe method (RFC 9111 §4.4): the
/// target and the same-origin `Location`/`Content-Location` are no longer
/// served from the cache. Keys are built with the request's own fields, so
/// route-added key parts (tenant header, cookie) match the entries this
/// client would hit. `https`: the client's connection has TLS. Returns the
/// keys, for the shared tier.
pub(crate) fn invalidate(
    cache: &SiteCache,
    spec: &key::KeySpec,
    req: &RequestHead,
    https: bool,
    locations: &[&[u8]],
) -> Vec<Vec<u8>> {
    let fields: Vec<Field<'_>> = req.fields.iter().collect();
    let host = req.host_name();
    let authority = req.host.map(|h| req.fields.span_of(h)).unwrap_or_default();
    let origin = Origin { https, authority };
    let same_origin = locations
        .iter()
        .filter_map(|l| same_origin_path(l, &origin));
    let store = &cache.tier.store;
    let mut keys = Vec::new();
    // Both schemes: an http and an https listener in front of one origin
    // serve the same resource.
    for target in std::iter::once(req.uri()).chain(same_origin) {
        for scheme in SCHEMES {
            let key = key::primary(spec, scheme, host, target, &fields);
            store.remove(&key);
            Counters::add(&STATS.purged, 1);
            keys.push(key);
        }
    }
    keys
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

/// The origin of a request (RFC 9110 §4.3.1): the client's scheme and
/// the `Host` it named.
struct Origin<'a> {
    https: bool,
    authority: &'a [u8],
}

impl Origin<'_> {
    /// Whether `authority` under the scheme `https` is this origin: host
    /// compared without case, a missing port the scheme's default.
    fn is(&self, https: bool, authority: &[u8]) -> bool {
        let default = if https { &b":443"[..] } else { b":80" };
        let normal = |a: &[u8]| {
            let mut a = a.to_ascii_lowercase();
            if a.ends_with(default) {
                a.truncate(a.len() - default.len());
            }
            a
        };
        https == self.https && normal(authority) == normal(self.authority)
    }
}

/// The path and query of a `Location` of the same origin as the request: a
/// path as it is, an absolute URI only when its scheme, host and port are
/// the request's (RFC 9111 §4.4 forbids invalidating another origin's).
fn same_origin_path<'a>(location: &'a [u8], origin: &Origin<'_>) -> Option<&'a [u8]> {
    if location.starts_with(b"/") && !location.starts_with(b"//") {
        return Some(location);
    }
    let (https, rest) = match location.strip_prefix(b"http://") {
        Some(rest) => (false, rest),
        None => (true, location.strip_prefix(b"https://")?),
    };
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !origin.is(https, authority) {
        return None;
    }
    Some(if path.starts_with(b"/") { path } else { b"/" })
}

#[cfg(test)]
mod tests;
