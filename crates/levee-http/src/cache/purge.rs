//! Removing stored responses on demand: the `PURGE` method on a caching
//! route (from `[cache] purge_allow`), and [`purge`] for the admin API, by
//! URL, by prefix, or by surrogate key (tag).

use levee_cache::key;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::{Entry, Storage, key_is_url};

use super::{RouteCache, SiteCache};
use crate::conn::Client;
use crate::message::RequestHead;
use crate::proxy::Outcome;
use crate::respond;
use crate::site::Site;

/// What to remove.
#[derive(Debug, Clone, Copy)]
pub enum Purge<'a> {
    /// One URL as `http://host/path?query`: all its variants and key parts.
    Url(&'a [u8]),
    /// Every URL starting with this (`http://host/prefix`).
    Prefix(&'a [u8]),
    /// Every object the app tagged with this in the tag header.
    Tag(&'a str),
}

/// Removes what `what` names; returns how many entries went. Scans the
/// store, so it is for operators, not for every request.
pub fn purge(cache: &SiteCache, what: Purge<'_>) -> usize {
    let store = &cache.tier.store;
    let removed = match what {
        Purge::Url(url) => store.purge(&|k, _| key_is_url(k, url)),
        Purge::Prefix(prefix) => store.purge(&|k, _| k.starts_with(prefix)),
        Purge::Tag(tag) => store.purge(&|_, e| match e {
            Entry::Object(o) => o.tags.iter().any(|t| &**t == tag),
            Entry::Vary(_) => false,
        }),
    };
    Counters::add(&STATS.purged, removed as u64);
    removed
}

/// `PURGE /path`: removes the URL (all its variants) from the store.
pub(super) async fn serve(
    client: &mut Client,
    site: &Site,
    cache: &SiteCache,
    req: &RequestHead,
    route: &RouteCache,
    keep_alive: bool,
) -> Outcome {
    if !cache.may_purge(client.origin.ip) {
        let bytes = respond::error(405, &[], keep_alive, false);
        return super::reply_bytes(client, site, bytes, 405, keep_alive).await;
    }
    // Every entry of the URL: variants and route-added key parts included.
    // Every scheme: `PURGE` over either listener removes what both stored.
    let mut removed = 0;
    for scheme in super::SCHEMES {
        let url = key::primary(&route.spec, scheme, req.host_name(), req.uri(), &[]);
        let url = url.split(|&b| b == 0).next().unwrap_or_default();
        removed += purge(cache, Purge::Url(url));
    }
    let status = if removed > 0 { 200 } else { 404 };
    let body = format!("{{\"purged\": {removed}}}\n");
    let bytes = crate::h1::write::simple_response(
        status,
        &[],
        "application/json",
        body.as_bytes(),
        keep_alive,
        false,
    );
    super::reply_bytes(client, site, bytes, status, keep_alive).await
}
