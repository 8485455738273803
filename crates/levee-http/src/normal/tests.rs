use proptest::prelude::*;

use super::*;

/// (matched, forwarded path) of `path`, without a query.
fn forms(path: &str) -> Result<(String, String), PathError> {
    let n = normalise(path.as_bytes(), b"")?;
    let (matched, forward) = match n {
        None => (path.as_bytes().to_vec(), path.as_bytes().to_vec()),
        Some(n) => (
            n.matched.to_vec(),
            n.forward.map_or(path.as_bytes().to_vec(), |f| f.to_vec()),
        ),
    };
    Ok((
        String::from_utf8_lossy(&matched).into_owned(),
        String::from_utf8_lossy(&forward).into_owned(),
    ))
}

fn matched(path: &str) -> String {
    forms(path).unwrap_or_else(|e| panic!("{path}: {e}")).0
}

fn forwarded(path: &str) -> String {
    forms(path).unwrap_or_else(|e| panic!("{path}: {e}")).1
}

#[test]
fn every_spelling_of_admin_matches_admin() {
    for p in [
        "/admin/",
        "/%61dmin/",
        "/%61%64%6D%69%6E/",
        "//admin/",
        "/./admin/",
        "/x/../admin/",
        "/x/%2e%2E/admin/",
        "/admin%2f",
        "/admin%2F",
        "/admin;x=1/",
        "/;x/admin/",
        "/admin//",
        "/admin/.",
        "/admin/x/..",
        "/admin/;",
    ] {
        assert_eq!(matched(p), "/admin/", "{p}");
    }
}

#[test]
fn the_forwarded_path_keeps_what_is_not_unreserved() {
    assert_eq!(forwarded("/%61dmin/"), "/admin/");
    assert_eq!(forwarded("//admin/"), "/admin/");
    assert_eq!(forwarded("/x/../admin/"), "/admin/");
    // An encoded slash stays encoded, in upper case.
    assert_eq!(forwarded("/admin%2f"), "/admin%2F");
    assert_eq!(forwarded("/a%2fb"), "/a%2Fb");
    assert_eq!(matched("/a%2fb"), "/a/b");
    // Path parameters are forwarded.
    assert_eq!(forwarded("/admin;x=1/"), "/admin;x=1/");
    assert_eq!(forwarded("/caf%c3%a9"), "/caf%C3%A9");
    assert_eq!(matched("/caf%c3%a9"), "/café");
    assert_eq!(forwarded("/a%20b%20"), "/a%20b%20");
    assert_eq!(matched("/a%20b%20"), "/a b ");
    assert_eq!(forwarded("/%3b"), "/%3B");
    // `%3B` is a character, not a parameter separator.
    assert_eq!(matched("/a%3bb/"), "/a;b/");
}

#[test]
fn case_is_kept() {
    assert_eq!(matched("/ADMIN/"), "/ADMIN/");
    assert!(normalise(b"/ADMIN/", b"").expect("fine").is_none());
}

#[test]
fn normal_paths_are_left_alone() {
    for p in [
        "/",
        "/a",
        "/a/b/",
        "/index.html",
        "/a.b/c..d/",
        "/.well-known/x",
        "/a-b_c~d!$&'()*+,=:@",
    ] {
        assert_eq!(normalise(p.as_bytes(), b"?q=1"), Ok(None), "{p}");
    }
}

#[test]
fn the_query_follows_a_changed_path() {
    let n = normalise(b"//redeem", b"?code=X")
        .expect("fine")
        .expect("changed");
    assert_eq!(&*n.matched, b"/redeem");
    assert_eq!(n.forward.as_deref(), Some(&b"/redeem?code=X"[..]));
    let n = normalise(b"/a%2Fb", b"?q").expect("fine").expect("changed");
    assert_eq!(n.forward, None, "the forwarded form is the client's");
}

#[test]
fn an_empty_path_is_the_root() {
    let n = normalise(b"", b"?x=1").expect("fine").expect("changed");
    assert_eq!(&*n.matched, b"/");
    assert_eq!(n.forward.as_deref(), Some(&b"/?x=1"[..]));
}

#[test]
fn refusals() {
    for (p, e) in [
        ("/..", PathError::AboveRoot),
        ("/a/../..", PathError::AboveRoot),
        ("/%2e%2e/x", PathError::AboveRoot),
        ("/admin%00", PathError::Nul),
        ("/a;%00", PathError::Nul),
        ("/a%0d%0aSet-Cookie:x", PathError::Control),
        ("/a%7f", PathError::Control),
        ("/a\\b", PathError::Backslash),
        ("/a%5cb", PathError::Backslash),
        ("/a#frag", PathError::Fragment),
        ("/a%zz", PathError::BadEscape),
        ("/a%4", PathError::BadEscape),
        ("/a%", PathError::BadEscape),
        ("/%c0%ae%c0%ae/x", PathError::Overlong),
        ("/%c1%9c", PathError::Overlong),
        ("/%e0%80%af", PathError::Overlong),
        ("/%f0%80%80%af", PathError::Overlong),
        ("/a/..;/admin/", PathError::HiddenDot),
        ("/admin/.;x/", PathError::HiddenDot),
        ("/admin%2f..%2fpublic", PathError::HiddenDot),
        ("/x/..%2fadmin", PathError::HiddenDot),
    ] {
        assert_eq!(normalise(p.as_bytes(), b""), Err(e), "{p}");
    }
    // Raw bytes over 0x7F: only overlong forms are refused.
    assert!(normalise(b"/\xC0\xAE", b"").is_err());
    assert_eq!(matched("/caf\u{e9}"), "/café");
    assert!(normalise(b"/%E9t%E9", b"").is_ok(), "Latin-1 passes");
}

/// The normalised forms are fixed points: normalising them again changes
/// nothing, and the matched form of the forwarded path is the matched path.
fn stable(path: &[u8]) {
    let Ok(n) = normalise(path, b"") else { return };
    let Some(n) = n else { return };
    let forward = n.forward.as_deref().unwrap_or(path);
    let again = normalise(forward, b"").expect("the forwarded form is valid");
    let matched_again = again.as_ref().map_or(forward, |a| &a.matched);
    assert_eq!(matched_again, &*n.matched, "{path:?}");
    if let Some(a) = &again {
        assert_eq!(a.forward, None, "forwarded form of {path:?} changed again");
    }
    assert_eq!(n.matched.first(), Some(&b'/'));
    assert!(!n.matched.windows(2).any(|w| w == b"//"), "{:?}", n.matched);
}

proptest! {
    #[test]
    fn normalising_is_idempotent(parts in prop::collection::vec(
        prop::sample::select(vec![
            "/", "a", "b", ".", "..", "%2e", "%2E", "%2f", "%2F", ";", ";p=1",
            "%61", "%3b", "%20", "~", "%7e", "%C3%A9", "é",
        ]),
        0..12,
    )) {
        let path = format!("/{}", parts.concat());
        stable(path.as_bytes());
    }

    /// Whatever the bytes, no panic, and an accepted path's matched form
    /// holds no dot segment, control byte or backslash.
    #[test]
    fn any_bytes(path in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut p = vec![b'/'];
        p.extend_from_slice(&path);
        if let Ok(Some(n)) = normalise(&p, b"") {
            let m = &n.matched;
            prop_assert!(!m.split(|&b| b == b'/').any(|s| s == b"." || s == b".."));
            prop_assert!(!m.iter().any(|&b| b.is_ascii_control() || b == b'\\'));
        }
        stable(&p);
    }
}
