use std::time::Duration;

use crate::model::{Action, CacheConfig, RouteCache};
use crate::tests::{errors_of, ok};
use crate::{to_toml, validate};

const BASE: &str =
    "[[listener]]\naddress = \"127.0.0.1:80\"\n[upstream.app]\nservers = [\"127.0.0.1:81\"]\n";

#[test]
fn cache_keys_become_the_model_and_survive_a_round_trip() {
    let text = format!(
        "{BASE}[cache]\nmax_size = \"64m\"\nmax_object_size = \"1m\"\nstale_if_down = \"10m\"\nlock_timeout = \"2s\"\nhit_for_miss = \"30s\"\ntag_header = \"Cache-Tag\"\npurge_allow = \"127.0.0.1/32\"\n\
         [[route]]\nproxy = \"app\"\ncache = true\ncache_key_drop_params = [\"utm_source\"]\ncache_key_sort_params = true\ncache_key_headers = \"X-Tenant\"\ncache_bypass_cookies = \"sid\"\ncache_methods = \"get\"\ncache_status = false\ncache_stale_if_down = false\n"
    );
    let config = ok(&text);
    assert_eq!(config.cache.max_size, 64 << 20);
    assert_eq!(config.cache.max_object_size, 1 << 20);
    assert_eq!(config.cache.stale_if_down, Duration::from_secs(600));
    assert_eq!(config.cache.tag_header, "Cache-Tag");
    assert_eq!(config.cache.purge_allow.len(), 1);
    let Action::Proxy(p) = &config.routes[0].action else {
        panic!("a proxy route")
    };
    let expected = RouteCache {
        key_drop_params: vec!["utm_source".into()],
        key_sort_params: true,
        key_headers: vec!["x-tenant".into()],
        bypass_cookies: vec!["sid".into()],
        methods: vec!["GET".into()],
        status_header: false,
        stale_if_down: false,
        ..RouteCache::default()
    };
    assert_eq!(p.cache.as_ref(), Some(&expected));
    assert_eq!(ok(&to_toml(&config)).cache, config.cache);
    assert_eq!(validate(&config), Ok(()));
}

#[test]
fn defaults_and_errors() {
    let config = ok(&format!("{BASE}[[route]]\nproxy = \"app\"\n"));
    assert_eq!(config.cache, CacheConfig::default());
    let Action::Proxy(p) = &config.routes[0].action else {
        panic!()
    };
    assert_eq!(p.cache, None);
    assert_eq!(
        errors_of(&format!(
            "{BASE}[[route]]\nproxy = \"app\"\ncache_status = true\n"
        )),
        ["t.toml:7:16: route[0].cache_status: only applies with `cache = true`"]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}[[route]]\nproxy = \"app\"\ncache = true\ncache_methods = \"POST\"\n"
        )),
        [
            "t.toml:8:17: route[0].cache_methods: `POST` cannot be served from the cache: only GET and HEAD"
        ]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}[cache]\nmax_size = \"1m\"\nmax_object_size = \"2m\"\n[[route]]\nstatic = \"/\"\n"
        )),
        ["t.toml:7:19: cache.max_object_size: must be greater than zero and at most `max_size`"]
    );
}

#[test]
fn targeted_fields_and_set_cookie_keys() {
    let text = format!(
        "{BASE}[cache]\ncontrol_field = \"Surrogate-Control\"\ncontrol_field_forward = true\ncdn_cache_control = false\n\
         [[route]]\nproxy = \"app\"\ncache = true\ncache_strip_set_cookie = true\n"
    );
    let config = ok(&text);
    assert_eq!(config.cache.control_field, "Surrogate-Control");
    assert!(config.cache.control_field_forward);
    assert!(!config.cache.cdn_cache_control);
    assert!(config.cache.cdn_cache_control_forward);
    let Action::Proxy(p) = &config.routes[0].action else {
        panic!("a proxy route")
    };
    assert!(p.cache.as_ref().is_some_and(|c| c.strip_set_cookie));
    assert_eq!(ok(&to_toml(&config)).cache, config.cache);
    assert_eq!(ok(&to_toml(&config)).routes, config.routes);
    let off = ok(&format!("{BASE}[cache]\ncontrol_field = \"\"\n"));
    assert_eq!(off.cache.control_field, "");
    let defaults = CacheConfig::default();
    assert_eq!(defaults.control_field, "Levee-Cache-Control");
    assert!(!defaults.control_field_forward);
    assert!(defaults.cdn_cache_control && defaults.cdn_cache_control_forward);
    assert!(!RouteCache::default().strip_set_cookie);
}

#[test]
fn targeted_field_errors() {
    assert_eq!(
        errors_of(&format!(
            "{BASE}[cache]\ncontrol_field = \"Cache-Control\"\n"
        )),
        [
            "t.toml:6:17: cache.control_field: `Cache-Control` already has a meaning; choose a name of levee's own, such as \"Levee-Cache-Control\""
        ]
    );
    assert_eq!(
        errors_of(&format!("{BASE}[cache]\ncontrol_field = \"My Field\"\n")),
        ["t.toml:6:17: cache.control_field: `My Field` is not a header field name"]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}[cache]\ncdn_cache_control = false\ncdn_cache_control_forward = false\n"
        )),
        [
            "t.toml:7:29: cache.cdn_cache_control_forward: a CDN-Cache-Control levee does not obey (`cdn_cache_control = false`) must be sent on (RFC 9213 §2.2)"
        ]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}[[route]]\nproxy = \"app\"\ncache_strip_set_cookie = true\n"
        )),
        ["t.toml:7:26: route[0].cache_strip_set_cookie: only applies with `cache = true`"]
    );
}

const FLEET: &str = "[fleet]\nname = \"f\"\nredis = \"redis://127.0.0.1\"\n";

#[test]
fn disk_and_shared_tiers_become_the_model_and_survive_a_round_trip() {
    let text = format!(
        "{BASE}{FLEET}[cache.disk]\npath = \"/var/cache/levee\"\nmax_size = \"10g\"\nmax_object_size = \"100m\"\nfsync = true\n\
         [cache.shared]\nstore = \"redis\"\nmax_object_size = \"512k\"\ntimeout = \"30ms\"\nlock_lease = \"5s\"\nlock_wait = \"1s\"\n"
    );
    let config = ok(&text);
    let disk = config.cache.disk.as_ref().expect("[cache.disk]");
    assert_eq!(disk.path, std::path::Path::new("/var/cache/levee"));
    assert_eq!(disk.max_size, 10 << 30);
    assert_eq!(disk.max_object_size, 100 << 20);
    assert!(disk.fsync);
    let shared = config.cache.shared.as_ref().expect("[cache.shared]");
    assert_eq!(shared.store, crate::model::SharedStore::Redis);
    assert_eq!(shared.max_object_size, 512 << 10);
    assert_eq!(shared.timeout, Duration::from_millis(30));
    assert_eq!(shared.lock_lease, Duration::from_secs(5));
    assert_eq!(shared.lock_wait, Duration::from_secs(1));
    assert_eq!(ok(&to_toml(&config)).cache, config.cache);
    // Defaults: Redis, 1 MB; the disk's objects up to 1 GB or its size.
    let config = ok(&format!(
        "{BASE}{FLEET}[cache.disk]\npath = \"/c\"\nmax_size = \"64m\"\n[cache.shared]\n"
    ));
    let disk = config.cache.disk.as_ref().expect("[cache.disk]");
    assert_eq!((disk.max_object_size, disk.fsync), (64 << 20, false));
    assert_eq!(
        config.cache.shared,
        Some(crate::model::SharedCache::default())
    );
    assert_eq!(ok(&to_toml(&config)).cache, config.cache);
    // memcached: the servers in the order given (the hash ring's names).
    let config = ok(&format!(
        "{BASE}{FLEET}[cache.shared]\nstore = \"memcached\"\nmemcached = [\"10.0.0.2:11211\", \"mc1:11211\"]\n"
    ));
    let shared = config.cache.shared.as_ref().expect("[cache.shared]");
    assert_eq!(
        shared.store,
        crate::model::SharedStore::Memcached(vec!["10.0.0.2:11211".into(), "mc1:11211".into()])
    );
    assert_eq!(ok(&to_toml(&config)).cache, config.cache);
    let one = ok(&format!(
        "{BASE}{FLEET}[cache.shared]\nstore = \"memcached\"\nmemcached = \"127.0.0.1:11211\"\n"
    ));
    assert_eq!(
        one.cache.shared.map(|s| s.store),
        Some(crate::model::SharedStore::Memcached(vec![
            "127.0.0.1:11211".into()
        ]))
    );
}

#[test]
fn tier_errors_name_their_keys() {
    assert_eq!(
        errors_of(&format!(
            "{BASE}[cache.disk]\npath = \"cache\"\nmax_size = \"1k\"\nmax_object_size = \"2g\"\n"
        )),
        [
            "t.toml:6:8: cache.disk.path: `cache` is not an absolute path",
            "t.toml:7:12: cache.disk.max_size: must be at least 1m",
        ]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}[cache.disk]\nmax_size = \"1g\"\nmax_object_size = \"2g\"\n"
        )),
        [
            "t.toml:5:1: cache.disk.path: missing required key `path`",
            "t.toml:7:19: cache.disk.max_object_size: must be greater than zero and at most `max_size`",
        ]
    );
    assert_eq!(
        errors_of(&format!("{BASE}[cache.shared]\nmax_object_size = \"1m\"\n")),
        [
            "t.toml:5:1: cache.shared: the shared cache tier needs a [fleet] section (docs/cache.md, \"Tiers\")"
        ]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}{FLEET}[cache.shared]\nstore = \"memcached\"\nmax_object_size = \"100m\"\nlock_wait = \"0s\"\n"
        )),
        [
            "t.toml:9:9: cache.shared.store: `store = \"memcached\"` needs `memcached = [\"host:port\", …]`",
            "t.toml:10:19: cache.shared.max_object_size: must be greater than zero and at most 64m",
            "t.toml:11:13: cache.shared.lock_wait: must be greater than zero",
        ]
    );
    assert_eq!(
        errors_of(&format!(
            "{BASE}{FLEET}[cache.shared]\nstore = \"etcd\"\nmemcached = \"nohost\"\n"
        )),
        [
            "t.toml:9:9: cache.shared.store: `etcd` is not a shared store: \"redis\" or \"memcached\"",
            "t.toml:10:13: cache.shared.memcached: `nohost` is not host:port",
        ]
    );
}
