//! Removing stored responses on demand: the `PURGE` method on a caching
//! route (from `[cache] purge_allow`), and [`purge`] for the admin API, by
//! URL, by prefix, or by surrogate key (tag), in every tier.
//!
//! Entry points for the fleet: [`purge`] is what the member that received
//! a purge runs (its local tiers, then the shared tier); a member that
//! hears of a purge from another (the fleet's bus) runs [`purge_local`]
//! only, since the shared tier was purged once already. [`purge_shared`]
//! is the shared tier alone, for async callers.

use levee_cache::key;
use levee_cache::purge::Selector;
pub use levee_cache::purge::{Purge, PurgeError};

use super::{RouteCache, SiteCache};
use crate::exchange::{Exchange, Outcome, Reply};
use crate::site::Site;

/// Removes what `what` names from this member's tiers and from the
/// fleet's shared tier; returns the most entries one tier removed (the
/// tiers hold the same objects: [`Purged`]). Scans the stores and waits
/// for Redis (at most its timeout), so it is for operators, not for every
/// request.
///
/// [`Purged`]: levee_cache::tiers::Purged
pub fn purge(cache: &SiteCache, what: Purge<'_>) -> Result<usize, PurgeError> {
    let selector = Selector::new(what)?;
    let store = &cache.tier.store;
    if store.shared.is_none() {
        return Ok(store.purge_selected(&selector).keys);
    }
    // The admin API answers from a thread that must not wait on a future:
    // the purge runs on a thread of its own (operators only).
    let removed = std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            Some(runtime.block_on(every_tier(cache, &selector)))
        })
        .join()
        .ok()
        .flatten()
    });
    // No runtime to run it on: this member's tiers at least.
    Ok(removed.unwrap_or_else(|| store.purge_selected(&selector).keys))
}

/// Removes what `selector` names from this member's tiers, then from the
/// shared tier, holding its gate (no store of this member's is on its way
/// to Redis meanwhile); the most entries one tier removed.
async fn every_tier(cache: &SiteCache, selector: &Selector) -> usize {
    let store = &cache.tier.store;
    let Some(shared) = &store.shared else {
        return store.purge_selected(selector).keys;
    };
    let _gate = shared.gate.write().await;
    let local = store.purge_selected(selector);
    local.with_shared(shared_selected(cache, selector).await)
}

/// Removes what `what` names from this member's local tiers (memory and
/// disk) only; returns how many keys went.
pub fn purge_local(cache: &SiteCache, what: Purge<'_>) -> Result<usize, PurgeError> {
    cache.tier.store.purge_local(what)
}

/// Removes what `what` names from the fleet's shared tier; returns how
/// many keys went (0 without a shared tier or when Redis fails, logged).
pub async fn purge_shared(cache: &SiteCache, what: Purge<'_>) -> Result<usize, PurgeError> {
    let selector = Selector::new(what)?;
    Ok(shared_selected(cache, &selector).await)
}

async fn shared_selected(cache: &SiteCache, selector: &Selector) -> usize {
    let Some(shared) = &cache.tier.store.shared else {
        return 0;
    };
    match shared.purge(selector).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, ?selector, "shared cache purge failed; its objects expire on their own");
            0
        }
    }
}

/// `PURGE /path`: removes the URL (all its variants) from every tier.
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
    let req = &ex.head;
    let urls = super::SCHEMES
        .iter()
        .map(|scheme| {
            let url = key::primary(&route.spec, scheme, req.host_name(), req.uri(), &[]);
            url.split(|&b| b == 0).next().unwrap_or_default().to_vec()
        })
        .collect();
    let selector = Selector::Urls(urls);
    let removed = every_tier(cache, &selector).await;
    let status = if removed > 0 { 200 } else { 404 };
    let body = format!("{{\"purged\": {removed}}}\n");
    let reply = Reply {
        status,
        fields: &[],
        content_type: "application/json",
        body: body.into_bytes().into(),
        close: false,
        error: false,
    };
    super::reply_bytes(ex, site, &reply).await
}
