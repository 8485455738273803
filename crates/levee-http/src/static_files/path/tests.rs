use super::*;

/// The segments of `raw` as a request carries it: normalised by
/// `normal.rs` when its head is parsed, then split here.
fn segments(raw: &str) -> Vec<String> {
    let matched = matched(raw.as_bytes());
    let clean = CleanPath::parse(&matched).expect("path should parse");
    clean
        .segments
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn matched(raw: &[u8]) -> Vec<u8> {
    match crate::normal::normalise(raw, b"").expect("a valid path") {
        Some(n) => n.matched.to_vec(),
        None => raw.to_vec(),
    }
}

fn error(raw: &[u8]) -> PathError {
    CleanPath::parse(raw).expect_err("path should be rejected")
}

#[test]
fn plain_paths() {
    assert_eq!(segments("/"), Vec::<String>::new());
    assert_eq!(segments("/a/b.txt"), ["a", "b.txt"]);
    assert!(CleanPath::parse(b"/").expect("root").trailing_slash);
    assert!(!CleanPath::parse(b"/a").expect("file").trailing_slash);
    assert!(CleanPath::parse(b"/a/").expect("dir").trailing_slash);
}

#[test]
fn climbing_above_root_is_rejected() {
    for raw in [
        &b"/.."[..],
        b"/../etc/passwd",
        b"/a/../../x",
        b"/%2e%2e/",
        b"/%2E%2E/etc/passwd",
        b"/%2E./etc",
        b"/.%2e/etc",
        b"/%2e%2e%2fetc",
        b"/..%2f",
        b"/..%2Fetc%2Fpasswd",
        b"/a/%2e%2e/%2e%2e/b",
        b"//../x",
        b"/./../x",
    ] {
        // Refused where the request's head is parsed (normal.rs), and by
        // this module on its own for the decoded forms.
        let normal = crate::normal::normalise(raw, b"");
        assert!(
            matches!(
                normal,
                Err(crate::normal::PathError::AboveRoot | crate::normal::PathError::HiddenDot)
            ),
            "{}: {normal:?}",
            String::from_utf8_lossy(raw)
        );
        if !raw.contains(&b'%') {
            assert_eq!(error(raw), PathError::AboveRoot);
        }
    }
}

#[test]
fn dots_inside_the_root_normalise() {
    assert_eq!(segments("/a/../b"), ["b"]);
    assert_eq!(segments("/a/./b/."), ["a", "b"]);
    assert_eq!(segments("/a/%2e%2e/b"), ["b"]);
    assert_eq!(segments("/a/b/.."), ["a"]);
    assert!(CleanPath::parse(b"/a/b/..").expect("dir").trailing_slash);
    assert!(CleanPath::parse(b"/a/.").expect("dir").trailing_slash);
    // Three dots are a file name, not a traversal.
    assert_eq!(segments("/.../x"), ["...", "x"]);
    assert_eq!(segments("/..a"), ["..a"]);
}

#[test]
fn slashes_merge_and_encoded_slash_is_a_separator() {
    assert_eq!(segments("//a///b"), ["a", "b"]);
    assert_eq!(segments("/a%2fb"), ["a", "b"]);
    assert_eq!(segments("/a%2Fb%2F"), ["a", "b"]);
    assert!(
        CleanPath::parse(&matched(b"/a%2Fb%2F"))
            .expect("dir")
            .trailing_slash
    );
}

#[test]
fn decodes_exactly_once() {
    assert_eq!(segments("/%252e%252e/x"), ["%2e%2e", "x"]);
    // Decoded already: a `%` here is a file-name byte.
    let clean = CleanPath::parse(b"/%2e%2e/%41").expect("parses");
    assert_eq!(clean.segments, [b"%2e%2e".to_vec(), b"%41".to_vec()]);
    assert_eq!(segments("/caf%C3%A9"), ["café"]);
    assert_eq!(segments("/a%20b"), ["a b"]);
}

#[test]
fn nul_backslash_and_bad_escapes_are_rejected() {
    assert_eq!(error(b"/a\0b"), PathError::Nul);
    assert_eq!(error(b"/a.html\0"), PathError::Nul);
    assert_eq!(error(b"/..\\etc"), PathError::Backslash);
    assert_eq!(error(b"/a\\b"), PathError::Backslash);
    // Their encoded forms never get here: normal.rs refuses them.
    for raw in [&b"/%00"[..], b"/a%5Cb", b"/%", b"/%2", b"/%zz", b"/%+1"] {
        assert!(crate::normal::normalise(raw, b"").is_err(), "{raw:?}");
    }
    assert_eq!(error(b"a/b"), PathError::NotAbsolute);
    assert_eq!(error(b"*"), PathError::NotAbsolute);
    assert_eq!(error(b""), PathError::NotAbsolute);
    assert_eq!(error(b"%2fetc"), PathError::NotAbsolute);
}

#[test]
fn directory_location_is_canonical_and_encoded() {
    let loc = |raw: &[u8]| {
        CleanPath::parse(&matched(raw))
            .expect("parses")
            .directory_location()
    };
    assert_eq!(loc(b"/docs"), "/docs/");
    assert_eq!(loc(b"/a/./b/../docs"), "/a/docs/");
    // A protocol-relative Location would send the browser to another host.
    assert_eq!(loc(b"//evil.example/docs"), "/evil.example/docs/");
    assert_eq!(
        CleanPath::parse(b"/a b/\r\nSet-Cookie:x")
            .expect("parses")
            .directory_location(),
        "/a%20b/%0D%0ASet-Cookie:x/"
    );
    assert_eq!(loc(b"/caf%c3%a9"), "/caf%C3%A9/");
    assert_eq!(loc(b"/q%3Fx%23y"), "/q%3Fx%23y/");
}

#[test]
fn never_panics_and_never_yields_unsafe_segments() {
    // Every string of up to four bytes over an alphabet of tricky bytes
    // (with repeats; 13^4 inputs).
    let alphabet: &[u8] = b"/.%2eEfF0\\\x00a";
    let mut inputs = vec![Vec::new()];
    for _ in 0..4 {
        let longer: Vec<Vec<u8>> = inputs
            .iter()
            .flat_map(|s| alphabet.iter().map(move |&b| [s.as_slice(), &[b]].concat()))
            .collect();
        inputs.extend(longer);
    }
    for input in inputs {
        let raw = [b"/".as_slice(), &input].concat();
        if let Ok(clean) = CleanPath::parse(&raw) {
            for seg in &clean.segments {
                assert!(!seg.is_empty() && seg != b"." && seg != b"..", "{raw:?}");
                assert!(!seg.contains(&b'/') && !seg.contains(&0) && !seg.contains(&b'\\'));
            }
        }
    }
}
