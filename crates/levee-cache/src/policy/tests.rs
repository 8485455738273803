//! RFC 9111 §3 (storing), §3.1–§3.2 (stored fields) and §4.4
//! (invalidation), as the shared cache levee is.

use super::*;

fn rules() -> Rules {
    Rules::default()
}

fn check(req: &[Field<'_>], status: u16, resp: &[Field<'_>]) -> Result<Response, NotStored> {
    storable(b"GET", req, status, resp, &rules()).map(|c| c.directives)
}

fn cc(v: &'static [u8]) -> [Field<'static>; 1] {
    [(&b"Cache-Control"[..], v)]
}

/// The fields of a stored head, visible ones first.
fn stored(fields: &[Field<'_>], rules: &Rules) -> (Vec<String>, Vec<String>) {
    let control = Control::of(fields, &rules.targets);
    let head = stored_head(fields, &control.directives, rules, 1000);
    let text = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let visible = head.visible as usize;
    (text(&head.lines[..visible]), text(&head.lines[visible..]))
}

#[test]
fn s3_only_get_responses_are_stored() {
    assert_eq!(
        storable(b"POST", &[], 200, &cc(b"max-age=60"), &rules()).err(),
        Some(NotStored::Method)
    );
    assert!(check(&[], 200, &cc(b"max-age=60")).is_ok());
}

/// RFC 9111 §3: any final status may be stored with explicit freshness
/// (nginx stores them too); 206 and 304 are not, since levee does not
/// combine partial responses and a 304 only updates a stored one.
#[test]
fn s3_any_final_status_with_explicit_freshness_is_stored() {
    for status in [
        200, 203, 299, 302, 303, 307, 400, 403, 404, 499, 500, 502, 503, 504, 599,
    ] {
        assert!(
            check(&[], status, &cc(b"max-age=60")).is_ok(),
            "{status} with max-age"
        );
    }
    let expires = [(&b"Expires"[..], &b"Thu, 01 Jan 2099 00:00:00 GMT"[..])];
    assert!(check(&[], 500, &expires).is_ok(), "500 with Expires");
    assert!(check(&[], 503, &cc(b"public")).is_ok(), "503 marked public");
    for status in [100, 101, 206, 304, 600] {
        assert_eq!(
            check(&[], status, &cc(b"max-age=60")).err(),
            Some(NotStored::Status),
            "{status}"
        );
    }
}

/// RFC 9110 §15.1: without explicit freshness only the heuristically
/// cacheable statuses are stored.
#[test]
fn s3_without_explicit_freshness_only_heuristically_cacheable_statuses() {
    let lm = [(&b"Last-Modified"[..], &b"Thu, 01 Jan 2015 00:00:00 GMT"[..])];
    for status in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
        assert!(check(&[], status, &lm).is_ok(), "{status}");
    }
    for status in [302, 303, 307, 400, 403, 500, 502, 503, 504] {
        assert_eq!(
            check(&[], status, &lm).err(),
            Some(NotStored::NoFreshness),
            "{status}"
        );
    }
}

#[test]
fn s3_no_store_in_the_request_or_the_response_is_never_stored() {
    assert_eq!(
        check(&[], 200, &cc(b"No-Store, max-age=60")).err(),
        Some(NotStored::NoStore)
    );
    assert_eq!(
        check(&cc(b"no-store"), 200, &cc(b"max-age=60")).err(),
        Some(NotStored::NoStore)
    );
}

/// RFC 9111 §5.2.2.3: a cache that understands the status ignores
/// no-store beside must-understand; one it does not understand is not stored.
#[test]
fn s5_2_2_3_must_understand_overrides_no_store_for_understood_statuses() {
    let mu = cc(b"must-understand, no-store, max-age=60");
    assert!(check(&[], 200, &mu).is_ok());
    assert!(check(&[], 404, &mu).is_ok());
    assert_eq!(check(&[], 299, &mu).err(), Some(NotStored::Status));
    assert_eq!(
        check(&[], 299, &cc(b"must-understand, max-age=60")).err(),
        Some(NotStored::Status)
    );
}

#[test]
fn s3_private_is_not_stored_by_a_shared_cache() {
    assert_eq!(
        check(&[], 200, &cc(b"private, max-age=60")).err(),
        Some(NotStored::Private)
    );
    assert!(check(&[], 200, &cc(b"private=\"x-user\", max-age=60")).is_ok());
}

/// RFC 9111 §3.5.
#[test]
fn s3_5_authorization_only_with_public_s_maxage_or_must_revalidate() {
    let auth = [(&b"Authorization"[..], &b"Basic x"[..])];
    assert_eq!(
        check(&auth, 200, &cc(b"max-age=60")).err(),
        Some(NotStored::Authorization)
    );
    for allowed in [
        &b"s-maxage=60"[..],
        b"public, max-age=60",
        b"must-revalidate, max-age=60",
    ] {
        assert!(check(&auth, 200, &[(b"Cache-Control", allowed)]).is_ok());
    }
}

#[test]
fn s4_1_vary_star_is_not_stored() {
    let vary = [
        (&b"Cache-Control"[..], &b"max-age=60"[..]),
        (b"Vary", b"Accept, *"),
    ];
    assert_eq!(check(&[], 200, &vary).err(), Some(NotStored::VaryStar));
}

/// levee's own rule: a Set-Cookie response is stored only when the
/// cookie is left out, by the origin's private=/no-cache= or the route.
#[test]
fn set_cookie_is_stored_only_without_the_cookie() {
    let cookie = [
        (&b"Cache-Control"[..], &b"max-age=60"[..]),
        (b"Set-Cookie", b"a=b"),
        (b"ETag", b"\"1\""),
    ];
    assert_eq!(check(&[], 200, &cookie).err(), Some(NotStored::SetCookie));
    let strip = Rules {
        strip_set_cookie: true,
        ..Rules::default()
    };
    assert!(storable(b"GET", &[], 200, &cookie, &strip).is_ok());
    let (visible, hidden) = stored(&cookie, &strip);
    assert!(
        visible.iter().all(|l| !l.starts_with("Set-Cookie")),
        "{visible:?}"
    );
    assert!(hidden.is_empty());
    let named = [
        (
            &b"Cache-Control"[..],
            &b"max-age=60, private=set-cookie"[..],
        ),
        (b"Set-Cookie", b"a=b"),
    ];
    assert!(check(&[], 200, &named).is_ok());
    let (visible, _) = stored(&named, &rules());
    assert!(
        visible.iter().all(|l| !l.starts_with("Set-Cookie")),
        "{visible:?}"
    );
}

/// RFC 9111 §3.1 and RFC 9110 §7.6.1: every field is stored, unknown ones
/// included, except hop-by-hop fields, the fields Connection names, the
/// proxy's authentication fields, Age, and what private=/no-cache= name.
#[test]
fn s3_1_stored_fields() {
    let fields: [Field<'_>; 13] = [
        (
            b"Cache-Control",
            b"max-age=60, no-cache=\"X-B\", private=x-c",
        ),
        (b"Connection", b"a, B"),
        (b"Connection", b"keep-alive"),
        (b"a", b"1"),
        (b"b", b"2"),
        (b"c", b"3"),
        (b"X-B", b"nc"),
        (b"x-c", b"p"),
        (b"Proxy-Authenticate", b"Basic"),
        (b"Proxy-Authentication-Info", b"x"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Age", b"10"),
        (b"Test-Header", b"kept"),
    ];
    let (visible, hidden) = stored(&fields, &rules());
    assert_eq!(
        visible[..3],
        [
            "Cache-Control: max-age=60, no-cache=\"X-B\", private=x-c",
            "c: 3",
            "Test-Header: kept"
        ]
    );
    assert!(visible[3].starts_with("Date: "), "{visible:?}");
    assert_eq!(visible.len(), 4);
    assert!(hidden.is_empty());
}

/// RFC 9110 §6.6.1: a response stored without Date gets the time it
/// arrived; one with a Date keeps it.
#[test]
fn date_is_added_when_the_origin_sent_none() {
    let (visible, _) = stored(&cc(b"max-age=60"), &rules());
    assert_eq!(visible[1], "Date: Thu, 01 Jan 1970 00:16:40 GMT");
    let dated = [
        (&b"Date"[..], &b"Mon, 01 Jan 2024 00:00:00 GMT"[..]),
        (b"Cache-Control", b"max-age=60"),
    ];
    let (visible, _) = stored(&dated, &rules());
    assert_eq!(visible.len(), 2, "{visible:?}");
}

/// Targeted fields that stop at levee are stored after the visible lines.
#[test]
fn hidden_fields_are_stored_apart() {
    let rules = Rules {
        targets: vec!["levee-cache-control".into(), "cdn-cache-control".into()],
        hidden: vec!["levee-cache-control".into()],
        strip_set_cookie: false,
    };
    let fields = [
        (&b"Date"[..], &b"Mon, 01 Jan 2024 00:00:00 GMT"[..]),
        (b"Levee-Cache-Control", b"max-age=600"),
        (b"CDN-Cache-Control", b"max-age=60"),
    ];
    let (visible, hidden) = stored(&fields, &rules);
    assert_eq!(
        visible,
        [
            "Date: Mon, 01 Jan 2024 00:00:00 GMT",
            "CDN-Cache-Control: max-age=60"
        ]
    );
    assert_eq!(hidden, ["Levee-Cache-Control: max-age=600"]);
}

/// RFC 9111 §3.2: the 304's fields replace the stored ones of the same
/// name, except the ones never stored and those its Connection names;
/// its Set-Cookie is for the client that asked.
#[test]
fn s3_2_a_304_updates_the_stored_fields() {
    let old: [Field<'_>; 4] = [
        (b"Cache-Control", b"max-age=1"),
        (b"ETag", b"\"1\""),
        (b"Test-Header", b"A"),
        (b"Kept", b"yes"),
    ];
    let update: [Field<'_>; 7] = [
        (b"Cache-Control", b"max-age=3600"),
        (b"Test-Header", b"B"),
        (b"Connection", b"x-hop"),
        (b"X-Hop", b"no"),
        (b"Content-Length", b"99"),
        (b"Set-Cookie", b"s=1"),
        (b"Age", b"5"),
    ];
    let merged = updated_fields(&old, &update);
    let text: Vec<String> = merged
        .iter()
        .map(|(n, v)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect();
    assert_eq!(
        text,
        [
            "ETag: \"1\"",
            "Kept: yes",
            "Cache-Control: max-age=3600",
            "Test-Header: B"
        ]
    );
}

/// RFC 9111 §4.4: any method not known to be safe invalidates on a
/// non-error status, M-SEARCH and lower-case spellings included.
#[test]
fn s4_4_unsafe_and_unknown_methods_invalidate() {
    for method in [
        &b"POST"[..],
        b"PUT",
        b"DELETE",
        b"PATCH",
        b"M-SEARCH",
        b"get",
        b"PURGEX",
    ] {
        assert!(
            invalidates(method, 200),
            "{}",
            String::from_utf8_lossy(method)
        );
        assert!(invalidates(method, 302));
        assert!(!invalidates(method, 404));
        assert!(!invalidates(method, 500));
    }
    for safe in [&b"GET"[..], b"HEAD", b"OPTIONS", b"TRACE"] {
        assert!(!invalidates(safe, 200));
    }
}
