//! The `[cache]` table and the `cache_*` keys of a proxy route.

use std::path::PathBuf;

use super::Mention;
use crate::error::Sink;
use crate::model::{
    CacheConfig, DEFAULT_DISK_MAX_OBJECT, DiskCache, IpNet, RouteCache, SharedCache, SharedStore,
};
use crate::tree::{Fields, Item};

pub(crate) const CACHE_KEYS: &[&str] = &[
    "max_size",
    "max_object_size",
    "stale_if_down",
    "lock_timeout",
    "hit_for_miss",
    "tag_header",
    "purge_allow",
    "control_field",
    "control_field_forward",
    "cdn_cache_control",
    "cdn_cache_control_forward",
    "disk",
    "shared",
];

/// `[cache.disk]`.
pub(crate) const DISK_KEYS: &[&str] = &["path", "max_size", "max_object_size", "fsync"];

/// `[cache.shared]`.
pub(crate) const SHARED_KEYS: &[&str] = &[
    "store",
    "memcached",
    "max_object_size",
    "timeout",
    "lock_lease",
    "lock_wait",
];

/// The cache keys of a route; all but `cache` need `cache = true`.
pub(crate) const ROUTE_KEYS: &[&str] = &[
    "cache",
    "cache_key_drop_params",
    "cache_key_sort_params",
    "cache_key_headers",
    "cache_key_cookies",
    "cache_bypass_cookies",
    "cache_bypass_headers",
    "cache_methods",
    "cache_status",
    "cache_stale_if_down",
    "cache_strip_set_cookie",
];

/// `[cache]`, and where `[cache.shared]` was written (it needs `[fleet]`,
/// which the cross-checks know).
pub(crate) fn cache(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> (CacheConfig, Option<Mention>) {
    let mut c = CacheConfig::default();
    let Some(fields) = Fields::of(sink, item, CACHE_KEYS) else {
        return (c, None);
    };
    if let Some(i) = fields.get("max_size")
        && let Some(n) = i.size(sink)
    {
        if n == 0 {
            i.error(sink, "must be greater than zero");
        } else {
            c.max_size = n;
        }
    }
    if let Some(i) = fields.get("max_object_size")
        && let Some(n) = i.size(sink)
    {
        if n == 0 || n > c.max_size {
            i.error(sink, "must be greater than zero and at most `max_size`");
        } else {
            c.max_object_size = n;
        }
    }
    if let Some(d) = fields.get("stale_if_down").and_then(|i| i.duration(sink)) {
        c.stale_if_down = d;
    }
    if let Some(d) = fields.get("lock_timeout").and_then(|i| i.duration(sink)) {
        c.lock_timeout = d;
    }
    if let Some(d) = fields.get("hit_for_miss").and_then(|i| i.duration(sink)) {
        c.hit_for_miss = d;
    }
    if let Some(s) = fields.get("tag_header").and_then(|i| i.text(sink)) {
        c.tag_header = s.to_owned();
    }
    if let Some(items) = fields.get("purge_allow").and_then(|i| i.one_or_many(sink)) {
        for (i, text) in items {
            match text.parse::<IpNet>() {
                Ok(net) => c.purge_allow.push(net),
                Err(message) => i.error(sink, message),
            }
        }
    }
    if let Some(i) = fields.get("control_field")
        && let Some(name) = i.str(sink)
    {
        if let Err(message) = control_field(name) {
            i.error(sink, message);
        } else {
            c.control_field = name.to_owned();
        }
    }
    for (key, slot) in [
        ("control_field_forward", &mut c.control_field_forward),
        ("cdn_cache_control", &mut c.cdn_cache_control),
        (
            "cdn_cache_control_forward",
            &mut c.cdn_cache_control_forward,
        ),
    ] {
        if let Some(b) = fields.get(key).and_then(|i| i.bool(sink)) {
            *slot = b;
        }
    }
    if !c.cdn_cache_control
        && !c.cdn_cache_control_forward
        && let Some(i) = fields.get("cdn_cache_control_forward")
    {
        i.error(
            sink,
            "a CDN-Cache-Control levee does not obey (`cdn_cache_control = false`) must be sent on (RFC 9213 §2.2)",
        );
    }
    c.disk = fields.get("disk").and_then(|i| disk(sink, i));
    let shared = fields.get("shared");
    c.shared = shared.and_then(|i| self::shared(sink, i));
    (c, shared.map(|i| Mention::of(i, "cache.shared")))
}

/// `[cache.disk]`: `path` is required and absolute (levee may start from
/// any directory, and the journal names files under it).
fn disk(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<DiskCache> {
    let fields = Fields::of(sink, item, DISK_KEYS)?;
    let path = fields.require(sink, "path").and_then(|i| {
        let text = i.text(sink)?;
        let path = PathBuf::from(text);
        if !path.is_absolute() {
            i.error(sink, format!("`{text}` is not an absolute path"));
            return None;
        }
        Some(path)
    });
    let max_size = fields.require(sink, "max_size").and_then(|i| {
        let n = i.size(sink)?;
        if n < MIN_DISK {
            i.error(sink, "must be at least 1m");
            return None;
        }
        Some(n)
    });
    let max_object_size = match (fields.get("max_object_size"), max_size) {
        (Some(i), max) => i.size(sink).and_then(|n| {
            if n == 0 || max.is_some_and(|m| n > m) {
                i.error(sink, "must be greater than zero and at most `max_size`");
                return None;
            }
            Some(n)
        }),
        (None, max) => Some(DEFAULT_DISK_MAX_OBJECT.min(max.unwrap_or(u64::MAX))),
    };
    let fsync = match fields.get("fsync") {
        Some(i) => i.bool(sink)?,
        None => false,
    };
    Some(DiskCache {
        path: path?,
        max_size: max_size?,
        max_object_size: max_object_size?,
        fsync,
    })
}

/// The smallest disk tier: a few objects and the journal.
const MIN_DISK: u64 = 1024 * 1024;

/// `[cache.shared]`.
fn shared(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<SharedCache> {
    let fields = Fields::of(sink, item, SHARED_KEYS)?;
    let mut c = SharedCache::default();
    let mut ok = true;
    let servers = fields.get("memcached").and_then(|i| {
        let items = i.one_or_many(sink)?;
        let mut out = Vec::new();
        for (i, text) in items {
            match text.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                Some((host, Ok(port))) if !host.is_empty() && port != 0 => {
                    out.push(text.to_owned())
                }
                _ => i.error(sink, format!("`{text}` is not host:port")),
            }
        }
        Some(out)
    });
    match fields.get("store") {
        Some(i) => match i.text(sink) {
            Some("redis") => {
                if let Some(m) = fields.get("memcached") {
                    m.error(sink, "`memcached` goes with `store = \"memcached\"`");
                    ok = false;
                }
            }
            Some("memcached") => match servers {
                Some(list) if !list.is_empty() => c.store = SharedStore::Memcached(list),
                _ => {
                    i.error(
                        sink,
                        "`store = \"memcached\"` needs `memcached = [\"host:port\", …]`",
                    );
                    ok = false;
                }
            },
            Some(other) => {
                i.error(
                    sink,
                    format!("`{other}` is not a shared store: \"redis\" or \"memcached\""),
                );
                ok = false;
            }
            None => ok = false,
        },
        None => {
            if let Some(m) = fields.get("memcached") {
                m.error(sink, "`memcached` goes with `store = \"memcached\"`");
                ok = false;
            }
        }
    }
    if let Some(i) = fields.get("max_object_size") {
        match i.size(sink) {
            // memcached's default item limit is 1 MiB; Redis takes 512 MB.
            Some(n) if n > 0 && n <= MAX_SHARED_OBJECT => c.max_object_size = n,
            Some(_) => {
                i.error(sink, "must be greater than zero and at most 64m");
                ok = false;
            }
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("timeout", &mut c.timeout),
        ("lock_lease", &mut c.lock_lease),
        ("lock_wait", &mut c.lock_wait),
    ] {
        if let Some(i) = fields.get(key) {
            match i.positive_duration(sink) {
                Some(d) => *slot = d,
                None => ok = false,
            }
        }
    }
    ok.then_some(c)
}

/// The largest `[cache.shared] max_object_size`: a shared object crosses
/// the network on every hit from another member.
const MAX_SHARED_OBJECT: u64 = 64 * 1024 * 1024;

/// Checks the name of levee's targeted field: a field name (token), not
/// one the cache reads otherwise. Empty turns the field off.
fn control_field(name: &str) -> Result<(), String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(tchar) {
        return Err(format!("`{name}` is not a header field name"));
    }
    for taken in [
        "cache-control",
        "cdn-cache-control",
        "expires",
        "pragma",
        "age",
    ] {
        if name.eq_ignore_ascii_case(taken) {
            return Err(format!(
                "`{name}` already has a meaning; choose a name of levee's own, such as \"Levee-Cache-Control\""
            ));
        }
    }
    Ok(())
}

/// A proxy route's cache settings; `None` unless `cache = true`.
pub(crate) fn route_cache(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> Option<RouteCache> {
    let enabled = fields
        .get("cache")
        .and_then(|i| i.bool(sink))
        .unwrap_or(false);
    if !enabled {
        for key in &ROUTE_KEYS[1..] {
            if let Some(i) = fields.get(key) {
                i.error(sink, "only applies with `cache = true`");
            }
        }
        return None;
    }
    let mut c = RouteCache::default();
    let list = |sink: &mut Sink<'_>, key: &str, lower: bool| -> Option<Vec<String>> {
        let items = fields.get(key)?.one_or_many(sink)?;
        Some(
            items
                .into_iter()
                .map(|(_, s)| {
                    if lower {
                        s.to_ascii_lowercase()
                    } else {
                        s.to_owned()
                    }
                })
                .collect(),
        )
    };
    if let Some(v) = list(sink, "cache_key_drop_params", false) {
        c.key_drop_params = v;
    }
    if let Some(v) = list(sink, "cache_key_headers", true) {
        c.key_headers = v;
    }
    if let Some(v) = list(sink, "cache_key_cookies", false) {
        c.key_cookies = v;
    }
    if let Some(v) = list(sink, "cache_bypass_cookies", false) {
        c.bypass_cookies = v;
    }
    if let Some(v) = list(sink, "cache_bypass_headers", true) {
        c.bypass_headers = v;
    }
    if let Some(i) = fields.get("cache_methods")
        && let Some(items) = i.one_or_many(sink)
    {
        c.methods = items.iter().map(|(_, m)| m.to_ascii_uppercase()).collect();
        if let Some(bad) = c.methods.iter().find(|m| *m != "GET" && *m != "HEAD") {
            i.error(
                sink,
                format!("`{bad}` cannot be served from the cache: only GET and HEAD"),
            );
        }
    }
    for (key, slot) in [
        ("cache_key_sort_params", &mut c.key_sort_params),
        ("cache_status", &mut c.status_header),
        ("cache_stale_if_down", &mut c.stale_if_down),
        ("cache_strip_set_cookie", &mut c.strip_set_cookie),
    ] {
        if let Some(b) = fields.get(key).and_then(|i| i.bool(sink)) {
            *slot = b;
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests;
