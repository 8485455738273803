//! `/cache` endpoints: each tier's size, health and hits, and purges by
//! URL, prefix or tag (every tier: memory, disk, and the fleet's shared one).

use std::sync::atomic::Ordering::Relaxed;

use levee_cache::disk::Health;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::Storage;
use levee_http::Site;
use levee_http::cache::{Purge, purge as purge_store};
use serde_json::{Value, json};

use crate::server::Reply;

fn no_cache() -> Reply {
    Reply::error(404, "no route caches: the cache is off".to_owned())
}

/// `GET /cache`.
pub fn status(site: &Site) -> Reply {
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
/// that is not one.
pub fn purge(site: &Site, body: &[u8]) -> Reply {
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
    let (what, by, value) = match (text("url"), text("prefix"), text("tag")) {
        (Some(url), None, None) => (Purge::Url(url.as_bytes()), "url", url),
        (None, Some(prefix), None) => (Purge::Prefix(prefix.as_bytes()), "prefix", prefix),
        (None, None, Some(tag)) => (Purge::Tag(tag), "tag", tag),
        _ => return bad(),
    };
    let removed = match purge_store(cache, what) {
        Ok(removed) => removed,
        Err(e) => return Reply::error(400, e),
    };
    tracing::info!(%v, removed, "cache purge");
    if removed == 0 {
        // Said apart from a purge that removed something, so a script
        // that purges a misspelt URL learns it.
        return Reply::json(
            404,
            &json!({
                "purged": 0,
                "error": format!("nothing stored matches {by} {value}"),
            }),
        );
    }
    Reply::json(200, &json!({ "purged": removed }))
}
