//! RFC 9213 targeted fields, as the cache-tests suite's CDN-Cache-Control
//! cases put them.

use super::*;

fn targets() -> Vec<String> {
    vec!["levee-cache-control".into(), "cdn-cache-control".into()]
}

fn control(fields: &[Field<'_>]) -> Control {
    Control::of(fields, &targets())
}

#[test]
fn a_targeted_field_overrides_cache_control() {
    let c = control(&[
        (b"Cache-Control", b"no-store"),
        (b"CDN-Cache-Control", b"max-age=10000"),
    ]);
    assert!(c.targeted);
    assert_eq!(c.directives.max_age, Some(10000));
    assert!(!c.directives.no_store);
    let short = control(&[
        (b"Cache-Control", b"max-age=3600"),
        (b"CDN-Cache-Control", b"max-age=1"),
    ]);
    assert_eq!(short.directives.max_age, Some(1));
}

#[test]
fn the_first_valid_field_of_the_target_list_wins() {
    let both = [
        (&b"CDN-Cache-Control"[..], &b"max-age=60"[..]),
        (b"Levee-Cache-Control", b"max-age=600"),
    ];
    assert_eq!(control(&both).directives.max_age, Some(600));
    let broken_own = [
        (&b"CDN-Cache-Control"[..], &b"max-age=60"[..]),
        (b"Levee-Cache-Control", b"max-age=\"600\""),
    ];
    assert_eq!(control(&broken_own).directives.max_age, Some(60));
    // Off the target list: no effect.
    let c = Control::of(&both, &["levee-cache-control".into()]);
    assert_eq!(c.directives.max_age, Some(600));
    let c = Control::of(&both[..1], &[]);
    assert!(!c.targeted);
}

/// RFC 9213 §2.1: an empty field, one that is not a Structured Field
/// Dictionary, or one that gives a directive the wrong type is ignored,
/// and Cache-Control governs.
#[test]
fn an_invalid_field_falls_back_to_cache_control() {
    for bad in [
        &b""[..],
        b"max-age=10000, &&&&&",
        b"max-age=\"10000\"",
        b"max-age =100",
        b"max-age= 100",
        b"MaX-aGe=3600",
        b"max-age=-1",
        b"max-age=1.5",
        b"max-age=10,",
        b"no-store=1",
        b"private=x",
        b"max-age=1234567890123456",
    ] {
        let c = control(&[(b"Cache-Control", b"no-store"), (b"CDN-Cache-Control", bad)]);
        assert!(!c.targeted, "{}", String::from_utf8_lossy(bad));
        assert!(c.directives.no_store);
    }
}

#[test]
fn directives_map_from_structured_values() {
    let r = parse(b"max-age=99999999999, no-cache=\"Set-Cookie, X-A\", private, must-revalidate")
        .expect("valid");
    assert_eq!(r.max_age, Some(1 << 31), "capped at 2^31");
    assert_eq!(&r.no_cache_fields[..], ["set-cookie", "x-a"]);
    assert!(!r.no_cache && r.private && r.must_revalidate);
    let r = parse(b"foobar, max-age=3600;x=1, stale-while-revalidate=30, stale-if-error=60")
        .expect("extensions and parameters are ignored");
    assert_eq!(r.max_age, Some(3600));
    assert_eq!(r.stale_while_revalidate, Some(30));
    assert_eq!(r.stale_if_error, Some(60));
    let r = parse(b"no-store=?0, public=?1, ext=(a \"b\" 1.5), t=tok/en, b=:aGk=:").expect("valid");
    assert!(!r.no_store && r.public);
    assert_eq!(
        parse(b"max-age=1, max-age=2").and_then(|r| r.max_age),
        Some(2)
    );
}

/// The field already targets levee: s-maxage and proxy-revalidate mean
/// nothing more in it.
#[test]
fn s_maxage_and_proxy_revalidate_are_ignored() {
    let r = parse(b"s-maxage=600, proxy-revalidate, max-age=60").expect("valid");
    assert_eq!((r.s_maxage, r.max_age), (None, Some(60)));
    assert!(!r.proxy_revalidate);
    let r = parse(b"s-maxage=\"x\"").expect("an ignored member's type does not matter");
    assert_eq!(r, Response::default());
}

#[test]
fn field_lines_combine() {
    let c = control(&[
        (b"CDN-Cache-Control", b"max-age=60"),
        (b"CDN-Cache-Control", b"no-cache"),
    ]);
    assert!(c.targeted && c.directives.no_cache);
    assert_eq!(c.directives.max_age, Some(60));
}
