//! stale-while-revalidate (RFC 5861): the client got the stale response;
//! this task fetches a new one in the background, without a client.
//!
//! One refresh per key at a time: the task leads the key's flight, so
//! concurrent stale hits start no second fetch (and misses arriving
//! meanwhile wait for it). The fetch is a proxy exchange without a client
//! (`cache/fetch.rs`): a pooled connection, the stored validators, the
//! server's passive health and metrics fed as for any request; a 304
//! refreshes the stored response, a storable response replaces it, and a
//! failure changes nothing but the age of what is stored.

use std::sync::Arc;

use levee_cache::flight::Join;
use levee_cache::store::{Entry, Object, Storage};
use levee_config::Timeouts;
use levee_upstream::Group;

use super::fill::Fill;
use super::{RouteCache, SiteCache, unix_now};
use crate::message::RequestHead;
use crate::origin::Origin;

/// What a background refresh needs, owned, since it outlives the request.
#[derive(Debug)]
pub(super) struct Refresh {
    pub cache: Arc<SiteCache>,
    pub route: RouteCache,
    pub group: Arc<Group>,
    pub req: RequestHead,
    /// Who the request was for (origin.rs).
    pub origin: Origin,
    /// The PROXY header to send first, when the upstream takes one.
    pub proxy_header: Option<Vec<u8>>,
    pub preserve_host: bool,
    /// The stale hit's route rules and id (shape.rs).
    pub shaping: crate::shape::Held,
    pub timeouts: Timeouts,
    pub key: Vec<u8>,
    pub stale: (Arc<Object>, Vec<u8>),
}

/// Starts the refresh unless one for the key is in flight already.
pub(super) fn spawn(r: Refresh) {
    tokio::spawn(async move {
        let Join::Lead(lead) = r.cache.tier.flights.join(&r.key, unix_now()) else {
            return;
        };
        // A refresh that landed between this request's lookup and now has
        // replaced the stale response already: nothing left to do.
        let (stale, key) = &r.stale;
        // (A disk tier hit reads a new copy of the same response each
        // time: the same head and times are the same response.)
        // (A response only the shared tier holds is looked up there.)
        let store = &r.cache.tier.store;
        let mut current = store.get(key);
        if current.is_none()
            && let Some(shared) = &store.shared
        {
            current = shared.get(key).await.ok().flatten();
        }
        let same = |o: &Arc<Object>| {
            Arc::ptr_eq(o, stale) || (o.meta == stale.meta && o.head == stale.head)
        };
        if current.is_some() && !matches!(current, Some(Entry::Object(o)) if same(&o)) {
            return;
        }
        let mut fill = Fill::new(
            &r.cache,
            r.key.clone(),
            &r.route,
            "stale",
            Some(r.stale.clone()),
            r.origin.https,
        );
        fill.validate();
        fill.lead(lead);
        let behalf = super::fetch::Behalf {
            origin: r.origin,
            preserve_host: r.preserve_host,
            proxy_header: r.proxy_header.clone(),
            shaping: r.shaping.clone(),
        };
        let fetched = super::fetch::fetch(&r.group, &r.req, &behalf, &r.timeouts, &mut fill).await;
        if let Err(e) = fetched {
            tracing::debug!(error = %e, "background refresh failed");
        }
        fill.finish().await;
    });
}
