//! Writes the cache keys back out (see `walk/cache.rs` for reading them).

use toml::{Table, Value};

use super::{duration, size};
use crate::model::{CacheConfig, RouteCache, SharedStore};

/// A list key, left out when empty (an empty list is an error when read).
fn strings(t: &mut Table, key: &str, list: &[String]) {
    if !list.is_empty() {
        let values = list.iter().map(|s| s.as_str().into()).collect();
        t.insert(key.into(), Value::Array(values));
    }
}

pub(super) fn root(root: &mut Table, c: &CacheConfig) {
    let mut t = Table::new();
    t.insert("max_size".into(), size(c.max_size));
    t.insert("max_object_size".into(), size(c.max_object_size));
    t.insert("stale_if_down".into(), duration(c.stale_if_down));
    t.insert("lock_timeout".into(), duration(c.lock_timeout));
    t.insert("hit_for_miss".into(), duration(c.hit_for_miss));
    t.insert("tag_header".into(), c.tag_header.as_str().into());
    let nets: Vec<String> = c.purge_allow.iter().map(|n| n.to_string()).collect();
    strings(&mut t, "purge_allow", &nets);
    t.insert("control_field".into(), c.control_field.as_str().into());
    t.insert(
        "control_field_forward".into(),
        c.control_field_forward.into(),
    );
    t.insert("cdn_cache_control".into(), c.cdn_cache_control.into());
    t.insert(
        "cdn_cache_control_forward".into(),
        c.cdn_cache_control_forward.into(),
    );
    if let Some(d) = &c.disk {
        let mut disk = Table::new();
        disk.insert("path".into(), d.path.to_string_lossy().as_ref().into());
        disk.insert("max_size".into(), size(d.max_size));
        disk.insert("max_object_size".into(), size(d.max_object_size));
        disk.insert("fsync".into(), d.fsync.into());
        t.insert("disk".into(), Value::Table(disk));
    }
    if let Some(s) = &c.shared {
        let mut shared = Table::new();
        match &s.store {
            SharedStore::Redis => {
                shared.insert("store".into(), "redis".into());
            }
            SharedStore::Memcached(servers) => {
                shared.insert("store".into(), "memcached".into());
                strings(&mut shared, "memcached", servers);
            }
        }
        shared.insert("max_object_size".into(), size(s.max_object_size));
        shared.insert("timeout".into(), duration(s.timeout));
        shared.insert("lock_lease".into(), duration(s.lock_lease));
        shared.insert("lock_wait".into(), duration(s.lock_wait));
        t.insert("shared".into(), Value::Table(shared));
    }
    root.insert("cache".into(), Value::Table(t));
}

pub(super) fn route(t: &mut Table, c: Option<&RouteCache>) {
    let Some(c) = c else { return };
    t.insert("cache".into(), true.into());
    strings(t, "cache_key_drop_params", &c.key_drop_params);
    t.insert("cache_key_sort_params".into(), c.key_sort_params.into());
    strings(t, "cache_key_headers", &c.key_headers);
    strings(t, "cache_key_cookies", &c.key_cookies);
    strings(t, "cache_bypass_cookies", &c.bypass_cookies);
    strings(t, "cache_bypass_headers", &c.bypass_headers);
    strings(t, "cache_methods", &c.methods);
    t.insert("cache_status".into(), c.status_header.into());
    t.insert("cache_stale_if_down".into(), c.stale_if_down.into());
    t.insert("cache_strip_set_cookie".into(), c.strip_set_cookie.into());
}
