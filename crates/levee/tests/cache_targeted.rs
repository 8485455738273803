//! Targeted cache control (RFC 9213) against a real nginx origin:
//! `CDN-Cache-Control` and levee's own field override `Cache-Control` for
//! levee, an invalid one is ignored, and each is sent on or not as
//! configured.

mod support;

use support::*;

/// The default: CDN-Cache-Control is obeyed and sent on; levee's own
/// field is obeyed before it and never reaches the client.
#[test]
fn targeted_fields_override_cache_control() {
    let b = start("", "");
    let miss = b.get("/cdn/a.txt");
    assert_eq!(miss.header("cache-status"), Some("levee; fwd=miss; stored"));
    let hit = b.get("/cdn/a.txt");
    assert!(
        is_hit(&hit),
        "CDN-Cache-Control: max-age=60 beats Cache-Control: no-store"
    );
    for r in [&miss, &hit] {
        assert_eq!(r.header("cdn-cache-control"), Some("max-age=60"));
        assert_eq!(
            r.header("cache-control"),
            Some("no-store"),
            "passed through"
        );
    }
    assert_eq!(b.origin_requests("/cdn/a.txt", 1), 1);

    // Levee-Cache-Control comes first in the target list.
    let miss = b.get("/own/a.txt");
    let hit = b.get("/own/a.txt");
    assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
    for r in [&miss, &hit] {
        assert_eq!(r.header("levee-cache-control"), None, "{:?}", r.headers);
        assert_eq!(r.header("cdn-cache-control"), Some("no-store"));
    }
    b.get("/ownns/a.txt");
    let again = b.get("/ownns/a.txt");
    assert_eq!(again.header("cache-status"), Some("levee; fwd=miss"));
    assert_eq!(again.header("levee-cache-control"), None);
    assert_eq!(b.origin_requests("/ownns/a.txt", 2), 2);
}

/// RFC 9213 §2.1: a field that is not a valid Structured Field (here a
/// String where max-age takes an Integer) is ignored: Cache-Control's
/// no-store governs.
#[test]
fn an_invalid_targeted_field_falls_back_to_cache_control() {
    let b = start("", "");
    for _ in 0..2 {
        let r = b.get("/cdnbad/a.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-status"), Some("levee; fwd=miss"));
    }
    assert_eq!(b.origin_requests("/cdnbad/a.txt", 2), 2);
}

/// The operator names levee's field (as Fastly's Surrogate-Control) and
/// chooses what is sent on; a CDN-Cache-Control levee does not obey is
/// always sent on and changes nothing.
#[test]
fn the_field_name_and_forwarding_are_configured() {
    let b = start(
        "",
        "control_field = \"Surrogate-Control\"\ncdn_cache_control_forward = false\n",
    );
    b.get("/sur/a.txt");
    let hit = b.get("/sur/a.txt");
    assert!(is_hit(&hit), "{:?}", hit.header("cache-status"));
    assert_eq!(hit.header("surrogate-control"), None);
    b.get("/cdn/a.txt");
    let hit = b.get("/cdn/a.txt");
    assert!(is_hit(&hit));
    assert_eq!(
        hit.header("cdn-cache-control"),
        None,
        "stripped as configured"
    );
    // Levee-Cache-Control is no longer levee's field: an ordinary one.
    b.get("/own/a.txt");
    let own = b.get("/own/a.txt");
    assert_eq!(own.header("levee-cache-control"), Some("max-age=60"));
    assert_eq!(own.header("cache-status"), Some("levee; fwd=miss"));

    let b = start("", "control_field = \"\"\ncdn_cache_control = false\n");
    b.get("/cdn/a.txt");
    let r = b.get("/cdn/a.txt");
    assert_eq!(
        r.header("cache-status"),
        Some("levee; fwd=miss"),
        "not obeyed"
    );
    assert_eq!(r.header("cdn-cache-control"), Some("max-age=60"), "sent on");
}
