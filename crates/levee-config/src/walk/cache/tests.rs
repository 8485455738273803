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
