//! RFC 9111 §4.2 (freshness and age), §4.2.4 (serving stale) and the
//! response directives that govern reuse (§5.2.2), as the shared cache
//! levee is.

use super::*;

fn stored(cc: &str) -> Stored {
    Stored {
        status: 200,
        request_time: 1000,
        response_time: 1000,
        date: Some(1000),
        age: 0,
        expires: None,
        last_modified: None,
        directives: Response::parse(&[cc.as_bytes()]),
    }
}

const H: Heuristic = Heuristic {
    fraction: 0.1,
    max: 86_400,
};

/// RFC 9111 §4.2.1: s-maxage, then max-age, then Expires minus Date.
#[test]
fn s4_2_1_lifetime_precedence() {
    let mut s = stored("max-age=60, s-maxage=120");
    s.expires = Some(Expires::At(5000));
    assert_eq!(s.lifetime(H), 120);
    s.directives.s_maxage = None;
    assert_eq!(s.lifetime(H), 60, "max-age wins over Expires (§5.3)");
    s.directives.max_age = None;
    assert_eq!(s.lifetime(H), 4000);
    s.expires = Some(Expires::Invalid);
    assert_eq!(s.lifetime(H), 0, "an invalid Expires means already expired");
}

/// RFC 9111 §4.2.1: a directive given twice keeps its first value.
#[test]
fn s4_2_1_a_repeated_directive_keeps_its_first_value() {
    assert_eq!(stored("max-age=1800, max-age=1").lifetime(H), 1800);
    let two_lines = Response::parse(&[b"max-age=1800", b"max-age=1"]);
    assert_eq!(two_lines.max_age, Some(1800));
}

/// RFC 9111 §4.2.2: no heuristic when an explicit lifetime is present;
/// otherwise only for heuristically cacheable statuses or `public`.
#[test]
fn s4_2_2_heuristic_only_without_explicit_freshness_and_for_heuristic_statuses() {
    let mut s = stored("");
    s.last_modified = Some(0);
    assert_eq!(s.lifetime(H), 100, "10% of 1000 s");
    s.status = 302;
    assert_eq!(s.lifetime(H), 0);
    s.directives.public = true;
    assert_eq!(s.lifetime(H), 100);
    s.status = 200;
    s.date = Some(10_000_000);
    assert_eq!(s.lifetime(H), 86_400, "capped");
    s.directives.max_age = Some(5);
    assert_eq!(s.lifetime(H), 5, "explicit beats the heuristic");
}

/// RFC 9111 §4.2.3.
#[test]
fn s4_2_3_age_honours_upstream_age_and_delays() {
    let mut s = stored("max-age=60");
    s.request_time = 995;
    s.response_time = 1000;
    s.age = 30;
    s.date = Some(990);
    assert_eq!(
        s.initial_age(),
        35,
        "Age 30 + 5 s response delay beats 10 s apparent age"
    );
    assert_eq!(s.current_age(1010), 45);
    assert_eq!(decide(&s, &Request::default(), 1020, H), Use::Fresh);
    assert_eq!(decide(&s, &Request::default(), 1025, H), Use::Revalidate);
    s.age = 0;
    s.date = Some(900);
    assert_eq!(s.initial_age(), 100, "apparent age from Date");
}

/// RFC 9111 §5.1: a list-valued Age keeps its first member (also across
/// field lines); an invalid one is ignored.
#[test]
fn s5_1_age_uses_the_first_member_and_ignores_invalid_values() {
    let age = |lines: &[&'static [u8]]| {
        let fields: Vec<Field<'_>> = lines.iter().map(|v| (&b"Age"[..], *v)).collect();
        age_field(&fields)
    };
    assert_eq!(age(&[b"7200, 0"]), 7200);
    assert_eq!(age(&[b"7200,0"]), 7200);
    assert_eq!(age(&[b"0, 7200"]), 0);
    assert_eq!(age(&[b"7200", b"0"]), 7200);
    assert_eq!(age(&[b" 30 "]), 30);
    for invalid in [&b"abc"[..], b"-7200", b"7200.0", b""] {
        assert_eq!(age(&[invalid]), 0, "{}", String::from_utf8_lossy(invalid));
    }
    assert_eq!(age(&[b"99999999999999999999999"]), 1 << 31);
    assert_eq!(age_field(&[]), 0);
}

/// The record of a response: Expires is ignored when a targeted field
/// governs (RFC 9213 §2.2).
#[test]
fn stored_records_dates_age_and_expires() {
    let fields: [Field<'_>; 4] = [
        (b"Date", b"Thu, 01 Jan 1970 00:16:40 GMT"),
        (b"Expires", b"0"),
        (b"Age", b"7200, 0"),
        (b"Last-Modified", b"Thu, 01 Jan 1970 00:00:00 GMT"),
    ];
    let s = Stored::new(200, 999, 1001, &fields, Control::default());
    assert_eq!(s.date, Some(1000));
    assert_eq!(s.expires, Some(Expires::Invalid));
    assert_eq!(s.age, 7200);
    assert_eq!(s.last_modified, Some(0));
    let targeted = Control {
        directives: Response::default(),
        targeted: true,
    };
    assert_eq!(Stored::new(200, 999, 1001, &fields, targeted).expires, None);
}

/// RFC 9111 §5.2.1: the request's max-age, min-fresh, no-cache, max-stale.
#[test]
fn s5_2_1_request_directives_tighten_or_loosen() {
    let s = stored("max-age=60");
    let req = |t: &str| Request::parse(&[t.as_bytes()]);
    assert_eq!(decide(&s, &req(""), 1030, H), Use::Fresh);
    assert_eq!(decide(&s, &req("max-age=10"), 1030, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("min-fresh=40"), 1030, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("no-cache"), 1001, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("max-stale=30"), 1080, H), Use::StaleAllowed);
    assert_eq!(decide(&s, &req("max-stale=10"), 1080, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("max-stale"), 99_999, H), Use::StaleAllowed);
}

/// RFC 9111 §5.2.2.4: no-cache is stored but always revalidated; with
/// field names, the stored response (which never holds them) is reused.
#[test]
fn s5_2_2_4_no_cache_revalidates_and_qualified_no_cache_does_not() {
    let s = stored("max-age=60, no-cache");
    assert_eq!(decide(&s, &Request::default(), 1001, H), Use::Revalidate);
    let s = stored("max-age=60, no-cache=\"set-cookie\"");
    assert_eq!(decide(&s, &Request::default(), 1001, H), Use::Fresh);
}

/// RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10: must-revalidate,
/// proxy-revalidate and (for a shared cache) s-maxage forbid stale use,
/// even where the client or stale-while-revalidate would allow it.
#[test]
fn s4_2_4_revalidation_directives_forbid_stale() {
    let req = Request::parse(&[b"max-stale"]);
    for cc in [
        "max-age=60, must-revalidate, stale-while-revalidate=100",
        "max-age=60, proxy-revalidate, stale-while-revalidate=100",
        "s-maxage=60",
    ] {
        let s = stored(cc);
        assert_eq!(decide(&s, &req, 1070, H), Use::Revalidate, "{cc}");
        assert_eq!(
            decide(&s, &Request::default(), 1070, H),
            Use::Revalidate,
            "{cc}"
        );
    }
}

/// s-maxage forbids stale use only by implication (§5.2.2.10); a
/// stale-while-revalidate the same response grants is the origin's own
/// word and is honoured (`s-maxage=1, stale-while-revalidate=59`, as
/// frameworks send and CDNs read it). A client's max-stale is not.
#[test]
fn s_maxage_yields_to_the_stale_use_the_response_grants() {
    let s = stored("s-maxage=60, stale-while-revalidate=100");
    assert_eq!(
        decide(&s, &Request::default(), 1070, H),
        Use::StaleWhileRevalidate
    );
    assert_eq!(decide(&s, &Request::default(), 1170, H), Use::Revalidate);
    let no_swr = stored("s-maxage=60");
    let req = Request::parse(&[b"max-stale"]);
    assert_eq!(decide(&no_swr, &req, 1070, H), Use::Revalidate);
    let s = stored("max-age=100, s-maxage=60, stale-if-error=100");
    assert_eq!(
        stale_on_error(&s, 1070, H, 0),
        Some(StaleReason::StaleIfError)
    );
    // The route's allowance is not the origin's grant.
    assert_eq!(stale_on_error(&stored("s-maxage=60"), 1070, H, 1000), None);
}

/// RFC 5861 stale-while-revalidate, within its window only.
#[test]
fn stale_while_revalidate_within_its_window() {
    let s = stored("max-age=60, stale-while-revalidate=30");
    assert_eq!(
        decide(&s, &Request::default(), 1080, H),
        Use::StaleWhileRevalidate
    );
    assert_eq!(decide(&s, &Request::default(), 1100, H), Use::Revalidate);
}

/// RFC 9111 §4.2.4: on an upstream failure a stale response stands in
/// within stale-if-error, or the route's allowance for an unreachable
/// upstream, and never when its directives forbid stale use; the reason
/// is named.
#[test]
fn s4_2_4_stale_on_error_only_where_allowed_and_says_why() {
    let s = stored("max-age=60, stale-if-error=100");
    assert_eq!(
        stale_on_error(&s, 1150, H, 0),
        Some(StaleReason::StaleIfError)
    );
    assert_eq!(stale_on_error(&s, 1170, H, 0), None);
    assert_eq!(stale_on_error(&s, 1170, H, 600), Some(StaleReason::Down));
    assert_eq!(
        stale_on_error(&stored("max-age=60"), 1170, H, 600),
        Some(StaleReason::Down)
    );
    assert_eq!(stale_on_error(&stored("max-age=60"), 1170, H, 0), None);
    for forbidding in [
        "max-age=60, must-revalidate, stale-if-error=100",
        "max-age=60, proxy-revalidate, stale-if-error=100",
        "max-age=60, no-cache, stale-if-error=100",
    ] {
        let s = stored(forbidding);
        assert_eq!(stale_on_error(&s, 1070, H, 1000), None, "{forbidding}");
    }
    assert_eq!(StaleReason::Down.detail(), "stale-if-down");
}

#[test]
fn http_dates() {
    assert_eq!(
        http_date(Some(b"Thu, 01 Jan 1970 00:16:40 GMT")),
        Some(Some(1000))
    );
    assert_eq!(http_date(Some(b"0")), Some(None));
    assert_eq!(http_date(None), None);
}
