use super::*;

/// 2015-10-21T07:28:00Z, size 0x1234.
fn validators() -> Validators {
    Validators::new(
        Some(UNIX_EPOCH + Duration::from_secs(1_445_412_480)),
        0x1234,
    )
}

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const EARLIER: &[u8] = b"Wed, 21 Oct 2015 07:27:59 GMT";
const LATER: &[u8] = b"Wed, 21 Oct 2015 07:28:01 GMT";

#[test]
fn etag_and_last_modified_in_nginx_format() {
    let v = validators();
    assert_eq!(v.etag, "\"56273e80-1234\"");
    assert_eq!(v.last_modified, LAST_MODIFIED);
}

#[test]
fn out_of_range_mtimes_are_clamped_not_panicking() {
    let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
    assert_eq!(
        Validators::new(Some(before_epoch), 1).last_modified,
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    assert_eq!(Validators::new(None, 1).etag, "\"0-1\"");
    let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
    assert_eq!(
        Validators::new(Some(far), 1).last_modified,
        "Fri, 31 Dec 9999 23:59:59 GMT"
    );
}

#[test]
fn if_none_match_weak_comparison_lists_and_star() {
    let v = validators();
    let inm = |value: &str| v.not_modified(Some(value.as_bytes()), None);
    assert!(inm("\"56273e80-1234\""));
    assert!(inm("W/\"56273e80-1234\""));
    assert!(inm("\"other\", \"56273e80-1234\""));
    assert!(inm("\"a,b\",W/\"56273e80-1234\""));
    assert!(inm("*"));
    assert!(inm(" * "));
    assert!(!inm("\"56273e80-1235\""));
    assert!(!inm("\"other\""));
    assert!(!inm("56273e80-1234"));
    assert!(!inm("\"56273e80-1234"));
    assert!(!inm("\"5627 3e80-1234\""));
    assert!(!inm("\"x\" junk, \"56273e80-1234\""));
    assert!(!inm(""));
}

#[test]
fn if_modified_since_compares_whole_seconds() {
    let v = validators();
    let ims = |value: &[u8]| v.not_modified(None, Some(value));
    assert!(ims(LAST_MODIFIED.as_bytes()));
    assert!(ims(LATER));
    assert!(!ims(EARLIER));
    assert!(!ims(b"not a date"));
    assert!(!ims(b""));
    // The obsolete formats RFC 9110 requires recipients to accept.
    assert!(ims(b"Wednesday, 21-Oct-15 07:28:00 GMT"));
    assert!(ims(b"Wed Oct 21 07:28:00 2015"));
}

#[test]
fn if_none_match_takes_precedence_over_if_modified_since() {
    let v = validators();
    assert!(!v.not_modified(Some(b"\"stale\""), Some(LATER)));
    assert!(v.not_modified(Some(b"\"56273e80-1234\""), Some(EARLIER)));
    assert!(!v.not_modified(None, None));
}

#[test]
fn if_range_strong_etag_or_exact_date() {
    let v = validators();
    assert!(v.if_range_holds(b"\"56273e80-1234\""));
    assert!(!v.if_range_holds(b"W/\"56273e80-1234\""));
    assert!(!v.if_range_holds(b"\"other\""));
    assert!(!v.if_range_holds(b"\"56273e80-1234\", \"other\""));
    assert!(v.if_range_holds(LAST_MODIFIED.as_bytes()));
    assert!(!v.if_range_holds(LATER));
    assert!(!v.if_range_holds(EARLIER));
    assert!(!v.if_range_holds(b"garbage"));
}
