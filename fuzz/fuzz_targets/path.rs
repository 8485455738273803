//! The path normalisation never panics; what it accepts has a matched form
//! with no dot segment, empty segment, control byte or backslash, and both
//! forms are fixed points: normalising the forwarded path again changes
//! nothing and yields the same matched path.
#![no_main]

use levee_http::normal::normalise;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(n)) = normalise(data, b"") else {
        return;
    };
    let m = &n.matched;
    assert_eq!(m.first(), Some(&b'/'));
    let inner = &m[1..m.len() - usize::from(m.len() > 1 && m.ends_with(b"/"))];
    if !inner.is_empty() {
        for segment in inner.split(|&b| b == b'/') {
            assert!(!segment.is_empty() && segment != b"." && segment != b"..");
        }
    }
    assert!(!m.iter().any(|&b| b.is_ascii_control() || b == b'\\'));
    let forward = n.forward.as_deref().unwrap_or(data);
    let again = normalise(forward, b"").expect("the forwarded form is accepted");
    match again {
        None => assert_eq!(forward, &m[..]),
        Some(a) => {
            assert_eq!(a.matched, n.matched);
            assert_eq!(a.forward, None);
        }
    }
});
