//! `/cache` endpoints: each tier's size, health and hits, and purges by
//! URL, prefix or tag (every tier: memory, disk, and the fleet's shared one).
//! In a fleet a purge is also sent on the bus, and every other member
//! removes what its local tiers store ([`apply_fleet_purge`]) within a second.

use std::sync::atomic::Ordering::Relaxed;

use levee_cache::disk::Health;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::Storage;
use levee_fleet::bus::{Message, PurgeBy};
use levee_http::Site;
use levee_http::cache::{Purge, purge as purge_store, purge_local};
use serde_json::{Value, json};

use crate::server::Reply;

fn no_cache() -> Reply {
    Reply::error(404, "no route caches: the cache is off".to_owned())
}

/// `GET /cache`.
pub(super) fn status(site: &Site) -> Reply {
    let Some(cache) = &site.cache else {
        return no_cache();
    };
    let store = &cache.tier.store;
    let disk = store.disk.as_ref().map(|d| {
        let s = d.stats();
        let (state, reason) = match d.health() {
            Health::Loading => ("loading", None),
            Health::Ready => ("ready", None),
            Health::Degraded(why) => ("degraded", Some(why)),
            Health::Unusable(why) => ("unusable", Some(why)),
        };
        let c = d.settings();
        json!({
            "state": state,
            "reason": reason,
            "path": c.path.display().to_string(),
            "entries": d.len(),
            "bytes": d.bytes(),
            "max_size": c.max_size,
            "max_object_size": c.max_object_size,
            "writes": s.writes.load(Relaxed),
            "skipped": s.skipped.load(Relaxed),
            "errors": s.errors.load(Relaxed),
            "corrupt": s.corrupt.load(Relaxed),
            "evictions": s.evictions.load(Relaxed),
            "loaded": s.loaded.load(Relaxed),
            "load_ms": s.load_ms.load(Relaxed),
            "swept": s.swept.load(Relaxed),
        })
    });
    let shared = store.shared.as_ref().map(|sh| {
        let s = &sh.stats;
        json!({
            "store": "redis",
            "max_object_size": sh.settings.max_object_size,
            "hits": s.hits.load(Relaxed),
            "misses": s.misses.load(Relaxed),
            "errors": s.errors.load(Relaxed),
            "stored": s.stored.load(Relaxed),
            "locks_won": s.locks_won.load(Relaxed),
            "locks_waited": s.locks_waited.load(Relaxed),
            "lock_timeouts": s.lock_timeouts.load(Relaxed),
        })
    });
    Reply::json(
        200,
        &json!({
            // The memory tier's, at the top level as before there were tiers.
            "entries": store.len(),
            "bytes": store.bytes(),
            "max_size": store.capacity(),
            "max_object_size": store.max_object(),
            "evictions": store.evictions(),
            "hits": {
                "memory": Counters::get(&STATS.hits_memory),
                "disk": Counters::get(&STATS.hits_disk),
                "shared": Counters::get(&STATS.hits_shared),
            },
            "disk": disk,
            "shared": shared,
        }),
    )
}

/// `POST /cache/purge` with one of `{"url": …}`, `{"prefix": …}`, `{"tag": …}`:
/// 200 with the count, 404 (count 0) when nothing matched, 400 for a URL
/// that is not one. In a fleet: 200 with this member's count and `fleet`,
/// since the other members' stores may hold what this one does not.
pub(super) fn purge(site: &Site, body: &[u8]) -> Reply {
    let Some(cache) = &site.cache else {
        return no_cache();
    };
    let bad = || {
        Reply::error(
            400,
            "expected a JSON body with one of {\"url\": \"http://host/path\"}, {\"prefix\": \"http://host/path\"} or {\"tag\": \"name\"}"
                .to_owned(),
        )
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad();
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    let (by, value) = match (text("url"), text("prefix"), text("tag")) {
        (Some(url), None, None) => (PurgeBy::Url, url),
        (None, Some(prefix), None) => (PurgeBy::Prefix, prefix),
        (None, None, Some(tag)) => (PurgeBy::Tag, tag),
        _ => return bad(),
    };
    let removed = match purge_store(cache, what(by, value)) {
        Ok(removed) => removed,
        Err(e) => return Reply::error(400, e),
    };
    tracing::info!(%v, removed, "cache purge");
    if let Some(fleet) = levee_fleet::current() {
        let sent = fleet.is_up();
        if sent {
            fleet.publish(Message::Purge {
                by,
                value: value.to_owned(),
            });
        }
        return Reply::json(
            200,
            &json!({
                "purged": removed,
                "fleet": if sent { "sent to every member" } else { "not sent: Redis is unreachable" },
            }),
        );
    }
    if removed == 0 {
        // Said apart from a purge that removed something, so a script
        // that purges a misspelt URL learns it.
        return Reply::json(
            404,
            &json!({
                "purged": 0,
                "error": format!("nothing stored matches {} {value}", by_name(by)),
            }),
        );
    }
    Reply::json(200, &json!({ "purged": removed }))
}

fn what(by: PurgeBy, value: &str) -> Purge<'_> {
    match by {
        PurgeBy::Url => Purge::Url(value.as_bytes()),
        PurgeBy::Prefix => Purge::Prefix(value.as_bytes()),
        PurgeBy::Tag => Purge::Tag(value),
    }
}

fn by_name(by: PurgeBy) -> &'static str {
    match by {
        PurgeBy::Url => "url",
        PurgeBy::Prefix => "prefix",
        PurgeBy::Tag => "tag",
    }
}

/// A purge another member sent on the bus, applied to this member's local
/// tiers (memory and disk); how many entries went (none without a cache).
/// Not the shared tier: the member that took the purge removed it there
/// once already, and the fleet thread that calls this must not wait on Redis.
pub fn apply_fleet_purge(site: &Site, by: PurgeBy, value: &str) -> usize {
    let Some(cache) = &site.cache else { return 0 };
    match purge_local(cache, what(by, value)) {
        Ok(removed) => removed,
        Err(e) => {
            tracing::warn!(error = %e, "fleet purge not applied");
            0
        }
    }
}
