//! Removing stored responses on demand: the `PURGE` method on a caching
//! route (from `[cache] purge_allow`), and [`purge`] for the admin API, by
//! URL, by prefix, or by surrogate key (tag), in every tier.
//!
//! Entry points for the fleet: [`purge`] is what the member that received
//! a purge runs (its local tiers now, the shared tier in the background);
//! a member that hears of a purge from another (the fleet's bus) runs
//! [`purge_local`] only, since the shared tier was purged once already.

use levee_cache::key;
use levee_cache::purge::Selector;
pub use levee_cache::purge::{Purge, PurgeError};

use super::{RouteCache, SiteCache};
use crate::conn::Client;
use crate::message::RequestHead;
use crate::proxy::Outcome;
use crate::respond;
use crate::site::Site;

/// Removes what `what` names from this member's tiers and, in the
/// background, from the fleet's shared tier; returns how many keys went
/// here. Scans the stores, so it is for operators, not for every request.
pub fn purge(cache: &SiteCache, what: Purge<'_>) -> Result<usize, PurgeError> {
    let removed = purge_local(cache, what)?;
    purge_shared(cache, what)?;
    Ok(removed)
}

/// Removes what `what` names from this member's local tiers (memory and
/// disk) only; returns how many keys went.
pub fn purge_local(cache: &SiteCache, what: Purge<'_>) -> Result<usize, PurgeError> {
    cache.tier.store.purge_local(what)
}

/// Removes what `what` names from the fleet's shared tier, in a task of
/// its own (it waits on Redis); nothing without a shared tier.
pub fn purge_shared(cache: &SiteCache, what: Purge<'_>) -> Result<(), PurgeError> {
    let selector = Selector::new(what)?;
    spawn_shared(cache, selector);
    Ok(())
}

fn spawn_shared(cache: &SiteCache, selector: Selector) {
    let Some(shared) = cache.tier.store.shared.clone() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("shared cache: a purge outside the runtime was not sent to the shared tier");
        return;
    };
    runtime.spawn(async move {
        match shared.purge(&selector).await {
            Ok(n) => tracing::info!(removed = n, ?selector, "shared cache purge"),
            Err(e) => tracing::warn!(error = %e, ?selector, "shared cache purge failed; its objects expire on their own"),
        }
    });
}

/// `PURGE /path`: removes the URL (all its variants) from every tier.
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
    let urls = super::SCHEMES
        .iter()
        .map(|scheme| {
            let url = key::primary(&route.spec, scheme, req.host_name(), req.uri(), &[]);
            url.split(|&b| b == 0).next().unwrap_or_default().to_vec()
        })
        .collect();
    let selector = Selector::Urls(urls);
    let removed = cache.tier.store.purge_selected(&selector);
    spawn_shared(cache, selector);
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
