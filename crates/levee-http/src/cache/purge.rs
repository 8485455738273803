//! Removing stored responses on demand: the `PURGE` method on a caching
//! route (from `[cache] purge_allow`), and [`purge`] for the admin API, by
//! URL, by prefix, or by surrogate key (tag).

use levee_cache::key;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::{Entry, Storage, key_is_url};

use super::{RouteCache, SiteCache};
use crate::exchange::{Exchange, Outcome, Reply};
use crate::site::Site;

/// What to remove.
#[derive(Debug, Clone, Copy)]
pub enum Purge<'a> {
    /// One URL as `http://host[:port]/path?query`: all its variants and
    /// key parts, under either scheme.
    Url(&'a [u8]),
    /// Every URL starting with this (`http://host[:port]/prefix`), under
    /// either scheme.
    Prefix(&'a [u8]),
    /// Every object the app tagged with this in the tag header.
    Tag(&'a str),
}

/// Why a purge could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("`{0}` is not an absolute http:// or https:// URL")]
    NotUrl(String),
}

/// Removes what `what` names; returns how many entries went. Scans the
/// store, so it is for operators, not for every request.
///
/// A URL is matched as its keys were written: host without case or port
/// (keys never hold one), under both schemes, as `PURGE` and invalidation
/// treat an http and an https listener in front of one origin.
pub fn purge(cache: &SiteCache, what: Purge<'_>) -> Result<usize, PurgeError> {
    let keys = |url: &[u8]| {
        let target = key::url_target(url)
            .ok_or_else(|| PurgeError::NotUrl(String::from_utf8_lossy(url).into_owned()))?;
        Ok::<_, PurgeError>(
            super::SCHEMES.map(|scheme| [scheme.as_bytes(), b"://", &target].concat()),
        )
    };
    let store = &cache.tier.store;
    let removed = match what {
        Purge::Url(url) => {
            let urls = keys(url)?;
            store.purge(&|k, _| urls.iter().any(|u| key_is_url(k, u)))
        }
        Purge::Prefix(prefix) => {
            let prefixes = keys(prefix)?;
            store.purge(&|k, _| prefixes.iter().any(|p| k.starts_with(p)))
        }
        Purge::Tag(tag) => store.purge(&|_, e| match e {
            Entry::Object(o) => o.tags.iter().any(|t| &**t == tag),
            Entry::Vary(_) => false,
        }),
    };
    Counters::add(&STATS.purged, removed as u64);
    Ok(removed)
}

/// `PURGE /path`: removes the URL (all its variants) from the store.
pub(super) async fn serve(
    ex: &mut Exchange<'_>,
    site: &Site,
    cache: &SiteCache,
    route: &RouteCache,
) -> Outcome {
    if !cache.may_purge(ex.origin.ip) {
        return super::reply_bytes(ex, site, &Reply::error(405, &[])).await;
    }
    // Every entry of the URL: variants and route-added key parts included.
    // Every scheme: `PURGE` over either listener removes what both stored.
    let mut removed = 0;
    let req = &ex.head;
    for scheme in super::SCHEMES {
        let url = key::primary(&route.spec, scheme, req.host_name(), req.uri(), &[]);
        let url = url.split(|&b| b == 0).next().unwrap_or_default();
        let store = &cache.tier.store;
        removed += store.purge(&|k, _| key_is_url(k, url));
    }
    Counters::add(&STATS.purged, removed as u64);
    let status = if removed > 0 { 200 } else { 404 };
    let body = format!("{{\"purged\": {removed}}}\n");
    let reply = Reply {
        status,
        fields: &[],
        content_type: "application/json",
        body: body.into_bytes().into(),
        close: false,
    };
    super::reply_bytes(ex, site, &reply).await
}
