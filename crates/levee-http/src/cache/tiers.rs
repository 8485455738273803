//! The cache glue's side of the tiers (`levee_cache::tiers`): which tier a
//! stored response came from, asking the fleet's shared tier on a local
//! miss. A body that lives in a disk tier file is sent by the exchange's
//! end (`Exchange::send_stored`: `sendfile` on plain HTTP/1, reads and
//! DATA frames on HTTP/2).

use std::sync::Arc;

use levee_cache::Field;
use levee_cache::directives::Request as RequestDirectives;
use levee_cache::freshness::{Heuristic, Use, decide};
use levee_cache::key;
use levee_cache::shared::{FleetLock, Lookup};
use levee_cache::store::{Entry, Object, Storage, variant_key};
use levee_cache::tiers::Source;

use super::setup::SiteCache;
use super::unix_now;

/// A stored response, the key it is stored under, and the tier it came from.
pub(super) type Found = (Arc<Object>, Vec<u8>, Source);

/// The stored response for the request in the local tiers, following a
/// Vary marker.
pub(super) fn lookup_keyed(cache: &SiteCache, key: &[u8], fields: &[Field<'_>]) -> Option<Found> {
    let store = &cache.tier.store;
    let (entry, source) = store.get_from(key)?;
    match entry {
        Entry::Object(obj) => Some((obj, key.to_vec(), source)),
        Entry::Vary(names) => {
            let variant = variant_key(key, &key::secondary(&names, fields));
            match store.get_from(&variant)? {
                (Entry::Object(obj), source) => Some((obj, variant, source)),
                (Entry::Vary(_), _) => None,
            }
        }
    }
}

/// What the shared tier said about a local miss.
pub(super) enum Asked {
    /// A usable object, now stored locally too.
    Hit(Arc<Object>),
    /// Fetch from the origin, holding the fleet's lock when won.
    Fetch(Option<FleetLock>),
}

/// Asks the shared tier for a key the local tiers miss (the lead of the
/// key's local flight does, so one request per member asks). An object
/// found is kept locally, so the member's next request is a local hit; one
/// too stale for this request goes to the origin like a miss.
pub(super) async fn ask_shared(
    cache: &SiteCache,
    key: &[u8],
    fields: &[Field<'_>],
    directives: &RequestDirectives,
) -> Asked {
    let Some(shared) = &cache.tier.store.shared else {
        return Asked::Fetch(None);
    };
    if !cache.tier.store.shared_visible(key) {
        return Asked::Fetch(None);
    }
    match shared.lookup(key, fields).await {
        Lookup::Hit(obj, stored_under, names) => {
            keep(cache, key, &obj, &stored_under, names);
            match decide(&obj.meta, directives, unix_now(), Heuristic::default()) {
                Use::Fresh | Use::StaleAllowed => Asked::Hit(obj),
                // Its freshness ran out in the shared tier as well.
                Use::StaleWhileRevalidate | Use::Revalidate => Asked::Fetch(None),
            }
        }
        Lookup::Fetch(lock) => Asked::Fetch(lock),
    }
}

/// Stores a shared object in the local tiers, with its Vary marker.
fn keep(
    cache: &SiteCache,
    key: &[u8],
    obj: &Arc<Object>,
    stored_under: &[u8],
    names: Option<Arc<[String]>>,
) {
    let store = &cache.tier.store;
    store.put(stored_under.to_vec(), Entry::Object(obj.clone()));
    if let Some(names) = names {
        store.put(key.to_vec(), Entry::Vary(names));
    }
}

/// The stored response in the shared tier, kept locally when found.
pub(super) async fn find_shared(
    cache: &SiteCache,
    key: &[u8],
    fields: &[Field<'_>],
) -> Option<Found> {
    let shared = cache.tier.store.shared.as_ref()?;
    if !cache.tier.store.shared_visible(key) {
        return None;
    }
    let (obj, stored_under, names) = shared.find(key, fields).await.ok()??;
    keep(cache, key, &obj, &stored_under, names);
    Some((obj, stored_under, Source::Shared))
}

/// After waiting for another request's fetch: the stored response, from
/// the local tiers or, when the fetch stored it only there, the shared one.
pub(super) async fn after_wait(
    cache: &SiteCache,
    key: &[u8],
    fields: &[Field<'_>],
) -> Option<(Arc<Object>, Source)> {
    if let Some((obj, _, source)) = lookup_keyed(cache, key, fields) {
        return Some((obj, source));
    }
    find_shared(cache, key, fields)
        .await
        .map(|(obj, _, source)| (obj, source))
}
