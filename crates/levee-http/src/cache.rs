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

pub mod fill;
mod head;
mod purge;
mod refresh;
mod reply;
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

use crate::conn::{Client, Next};
use crate::message::{Framing, RequestHead};
use crate::proxy::{self, Outcome};
use crate::respond;
use crate::site::Site;
use fill::{Answer, Fill};
pub use purge::{Purge, PurgeError, purge, purge_local, purge_shared};
pub use setup::{RouteCache, SiteCache, Tier};

/// Seconds since the epoch: the cache's clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves `req` on a caching route.
pub async fn serve(
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    group: &Arc<Group>,
    preserve_host: bool,
    route: &RouteCache,
    keep_alive: bool,
) -> Outcome {
    let Some(cache) = site.cache.as_ref() else {
        return proxy::forward(client, site, req, group, preserve_host, keep_alive).await;
    };
    let fields: Vec<Field<'_>> = req.fields.iter().collect();
    if req.method() == b"PURGE" {
        return purge::serve(client, site, cache, req, route, keep_alive).await;
    }
    if !cacheable_request(route, req, &fields) {
        // A Fill without a key stores nothing: after an unsafe method it
        // invalidates when the response head shows success, before the
        // client can send its next request, and it keeps targeted fields
        // that stop at levee from the client.
        let https = client.origin.https;
        let mut fill = Fill::new(cache, Vec::new(), route, "bypass", None, https);
        let out = proxy::forward_with(
            client,
            site,
            req,
            group,
            preserve_host,
            keep_alive,
            Some(&mut fill),
        )
        .await;
        // What it invalidated goes from the shared tier too.
        fill.finish().await;
        return out;
    }
    let cc: Vec<&[u8]> = levee_cache::values(&fields, "cache-control").collect();
    let directives = RequestDirectives::parse(&cc);
    let key = key::primary(
        &route.spec,
        scheme(client),
        req.host_name(),
        req.uri(),
        &fields,
    );
    let mut looked = tiers::lookup_keyed(cache, &key, &fields);
    if looked.is_none() {
        // Asked by every local miss, so a stale shared response is
        // revalidated or stands in for a failed upstream as a local one.
        looked = tiers::find_shared(cache, &key, &fields).await;
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
                let served = Served::plain(obj, "hit", source);
                return hit(client, site, req, route, &served, keep_alive).await;
            }
            Use::StaleAllowed => {
                Counters::add(&STATS.stale, 1);
                let served = Served::plain(obj, "hit; detail=stale", source);
                return hit(client, site, req, route, &served, keep_alive).await;
            }
            Use::StaleWhileRevalidate => {
                Counters::add(&STATS.stale, 1);
                if let Some(stale) = found.clone() {
                    refresh::spawn(refresh::Refresh {
                        cache: cache.clone(),
                        route: route.clone(),
                        group: group.clone(),
                        req: req.clone(),
                        origin: client.origin,
                        proxy_header: crate::proxy::proxy_header(group, client),
                        preserve_host,
                        timeouts: site.timeouts,
                        key: key.clone(),
                        stale,
                    });
                }
                let served = Served::plain(obj, "hit; detail=stale-while-revalidate", source);
                return hit(client, site, req, route, &served, keep_alive).await;
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
        let bytes = respond::error(504, &[], keep_alive, req.is_head());
        return reply_bytes(client, site, bytes, 504, keep_alive).await;
    }
    // Only a plain GET fetches for others: a conditional or a range request
    // gets an answer that is not the complete representation. A plain HEAD
    // leads too, fetching with GET (head.rs).
    let unconditional = ["range", "if-none-match", "if-modified-since", "if-range"]
        .iter()
        .all(|f| levee_cache::first(&fields, f).is_none());
    let plain = req.method() == b"GET" && unconditional;
    let head_miss = req.is_head() && unconditional;
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
                keep_alive,
                key: key.clone(),
                fwd,
                stale: found.clone(),
                source,
            };
            if let Some(out) = head::fetch_as_get(client, site, req, miss, lead).await {
                return out;
            }
            None
        }
        Join::Lead(lead) => Some(lead),
        Join::Wait(waiter) => {
            Counters::add(&STATS.coalesced, 1);
            if waiter.wait(cache.config.lock_timeout).await == Landing::Stored
                && let Some((obj, source)) = tiers::after_wait(cache, &key, &fields).await
            {
                Counters::add(&STATS.hits, 1);
                let served = Served::plain(&obj, "hit; collapsed", source);
                return hit(client, site, req, route, &served, keep_alive).await;
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
            match tiers::ask_shared(cache, &key, &fields, &directives).await {
                tiers::Asked::Hit(obj) => {
                    let pass_for = cache.config.hit_for_miss.as_secs();
                    lead.land(Landing::Stored, unix_now(), pass_for);
                    let served = Served::plain(&obj, "hit", Source::Shared);
                    return hit(client, site, req, route, &served, keep_alive).await;
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
    let https = client.origin.https;
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
    let out = proxy::forward_with(
        client,
        site,
        req,
        group,
        preserve_host,
        keep_alive,
        Some(&mut fill),
    )
    .await;
    fill.finish().await;
    match fill.answer().cloned() {
        Some(answer) => hit(client, site, req, route, &Served::from(&answer), keep_alive).await,
        None => out,
    }
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
}

impl<'a> Served<'a> {
    fn plain(obj: &'a Object, detail: &'a str, source: Source) -> Served<'a> {
        Served {
            obj,
            detail,
            extra: &[],
            source,
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
        }
    }
}

/// Answers from a stored response.
async fn hit(
    client: &mut Client,
    site: &Site,
    req: &RequestHead,
    route: &RouteCache,
    served: &Served<'_>,
    keep_alive: bool,
) -> Outcome {
    let Served {
        obj,
        detail,
        extra,
        source,
    } = *served;
    if detail == "hit" {
        Counters::add(&STATS.hits, 1);
    }
    source.count_hit();
    let mut lines = if route.status_header {
        format!("Cache-Status: levee; {detail}{}\r\n", source.status_param()).into_bytes()
    } else {
        Vec::new()
    };
    lines.extend_from_slice(extra);
    let age = obj.meta.current_age(unix_now());
    let mut answer = reply::answer(obj, req, age, &lines, keep_alive);
    // A hit is the same response as the miss was: HSTS included.
    respond::add_hsts(&mut answer.head, client.hsts);
    let bytes = answer.body_len();
    let limit = site.timeouts.client_send;
    // A small response in memory goes out in one write; a large one piece
    // by piece under the client's minimum progress (pace.rs), as a relayed
    // body does, and a disk tier body with `sendfile`.
    let ok = if bytes <= 16 * 1024 && tiers::in_memory(&answer.body) {
        let mut all = answer.head;
        for slice in &answer.body {
            if let levee_cache::body::Slice::Bytes(b) = slice {
                all.extend_from_slice(b);
            }
        }
        crate::pace::write_all(&mut client.stream, &all, limit)
            .await
            .is_ok()
    } else {
        crate::pace::write_all(&mut client.stream, &answer.head, limit)
            .await
            .is_ok()
            && tiers::send_body(client, site, &answer.body).await
    };
    Outcome {
        status: answer.status,
        bytes,
        upstream_time: None,
        upstream: None,
        next: if ok && keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        },
    }
}

pub(crate) async fn reply_bytes(
    client: &mut Client,
    site: &Site,
    bytes: Vec<u8>,
    status: u16,
    keep_alive: bool,
) -> Outcome {
    let ok = respond::send(&mut client.stream, &bytes, site.timeouts.client_send).await;
    Outcome {
        status,
        bytes: 0,
        upstream_time: None,
        upstream: None,
        next: if ok && keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        },
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
/// told in `X-Forwarded-Proto`, so a trusted balancer's https and http
/// clients, both on plain connections, never share a stored response (an
/// app's redirect to https must not be served to https clients).
pub(crate) fn scheme(client: &Client) -> &'static str {
    if client.origin.https { "https" } else { "http" }
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
mod tests {
    use super::{Origin, same_origin_path};

    #[test]
    fn locations_of_the_same_origin() {
        let site = Origin {
            https: false,
            authority: b"site",
        };
        assert_eq!(same_origin_path(b"/a?b", &site), Some(&b"/a?b"[..]));
        assert_eq!(same_origin_path(b"http://SITE/x", &site), Some(&b"/x"[..]));
        assert_eq!(
            same_origin_path(b"http://site:80/x", &site),
            Some(&b"/x"[..])
        );
        assert_eq!(same_origin_path(b"http://site", &site), Some(&b"/"[..]));
        assert_eq!(
            same_origin_path(b"http://site:8080/x", &site),
            None,
            "another port"
        );
        assert_eq!(
            same_origin_path(b"https://site/x", &site),
            None,
            "another scheme"
        );
        assert_eq!(same_origin_path(b"http://other/x", &site), None);
        assert_eq!(same_origin_path(b"//site/x", &site), None);
        assert_eq!(same_origin_path(b"relative", &site), None);
        let tls = Origin {
            https: true,
            authority: b"site:8443",
        };
        assert_eq!(
            same_origin_path(b"https://site:8443/y", &tls),
            Some(&b"/y"[..])
        );
        assert_eq!(same_origin_path(b"https://site/y", &tls), None);
    }
}
