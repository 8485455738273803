//! What ships beside the code: every example under `examples/` parses,
//! and docs/config.md names every key.

use super::*;

#[test]
fn every_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path) {
                panic!("{} does not parse:\n{e}", path.display());
            }
            seen.push(path);
        }
    }
    assert!(
        seen.len() >= 3,
        "expected at least 3 examples, found {seen:?}"
    );
}

#[test]
fn docs_cover_every_key() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md"))
            .expect("docs/config.md exists");
    use crate::walk::*;
    let tables = [
        ROOT_KEYS,
        LOG_KEYS,
        LIMIT_KEYS,
        TIMEOUT_KEYS,
        LISTENER_KEYS,
        TLS_KEYS,
        CERT_KEYS,
        UPSTREAM_TLS_KEYS,
        ROUTE_KEYS,
        ROUTE_REWRITE_KEYS,
        REWRITE_RULE_KEYS,
        STATIC_KEYS,
        UPSTREAM_KEYS,
        SERVER_KEYS,
        HEALTH_CHECK_KEYS,
        ADMIN_KEYS,
        PROTECT_KEYS,
        RATE_LIMIT_KEYS,
        RESOLVER_KEYS,
        CACHE_KEYS,
        DISK_KEYS,
        SHARED_KEYS,
        ROUTE_CACHE_KEYS,
        MAIL_KEYS,
        MIRRORS_KEYS,
        MIRROR_KEYS,
        crate::walk::HTTP2_KEYS,
        COMPRESS_KEYS,
        HTTP_KEYS,
        ROUTE_SHAPE_KEYS,
        PAGE_KEYS,
        &["set", "add", "remove", "always"],
        FLEET_KEYS,
        ACME_KEYS,
        ACME_DNS_KEYS,
        ON_DEMAND_KEYS,
        DNS_KEYS,
        ZONE_KEYS,
        FLEET_RECORD_KEYS,
    ];
    for key in tables.iter().flat_map(|t| t.iter()) {
        assert!(
            docs.contains(&format!("| `{key}` |"))
                || docs.contains(&format!("`servers[].{key}`"))
                || docs.contains(&format!("## `[{key}]`"))
                || docs.contains(&format!("## `[[{key}]]`"))
                || docs.contains(&format!("## `[{key}.NAME]`")),
            "docs/config.md has no table row for `{key}`"
        );
    }
}
