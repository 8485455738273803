use super::*;

fn segments(raw: &str) -> Vec<String> {
    let clean = CleanPath::parse(raw.as_bytes()).expect("path should parse");
    clean
        .segments
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
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
        assert_eq!(
            error(raw),
            PathError::AboveRoot,
            "{}",
            String::from_utf8_lossy(raw)
        );
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
    assert!(CleanPath::parse(b"/a%2Fb%2F").expect("dir").trailing_slash);
}

#[test]
fn decodes_exactly_once() {
    assert_eq!(segments("/%252e%252e/x"), ["%2e%2e", "x"]);
    assert_eq!(segments("/caf%C3%A9"), ["café"]);
    assert_eq!(segments("/a%20b"), ["a b"]);
}

#[test]
fn nul_backslash_and_bad_escapes_are_rejected() {
    assert_eq!(error(b"/%00"), PathError::Nul);
    assert_eq!(error(b"/a%00.html"), PathError::Nul);
    assert_eq!(error(b"/a\0b"), PathError::Nul);
    assert_eq!(error(b"/..\\etc"), PathError::Backslash);
    assert_eq!(error(b"/a%5c..%5c..%5cetc"), PathError::Backslash);
    assert_eq!(error(b"/a%5Cb"), PathError::Backslash);
    assert_eq!(error(b"/%"), PathError::BadEscape);
    assert_eq!(error(b"/%2"), PathError::BadEscape);
    assert_eq!(error(b"/%zz"), PathError::BadEscape);
    assert_eq!(error(b"/%+1"), PathError::BadEscape);
    assert_eq!(error(b"a/b"), PathError::NotAbsolute);
    assert_eq!(error(b"*"), PathError::NotAbsolute);
    assert_eq!(error(b""), PathError::NotAbsolute);
    assert_eq!(error(b"%2fetc"), PathError::NotAbsolute);
}

#[test]
fn directory_location_is_canonical_and_encoded() {
    let loc = |raw: &[u8]| CleanPath::parse(raw).expect("parses").directory_location();
    assert_eq!(loc(b"/docs"), "/docs/");
    assert_eq!(loc(b"/a/./b/../docs"), "/a/docs/");
    // A protocol-relative Location would send the browser to another host.
    assert_eq!(loc(b"//evil.example/docs"), "/evil.example/docs/");
    assert_eq!(
        loc(b"/a%20b/%0d%0aSet-Cookie:x"),
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
