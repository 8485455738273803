//! Unit tests of invalidate.rs: which locations are of the same origin.

use super::{Origin, same_origin_path};

#[test]
fn locations_of_the_same_origin() {
    let site = Origin {
        https: false,
        authority: b"site",
    };
    assert_eq!(same_origin_path(b"/a?b", &site), Some(&b"/a?b"[..]));
    assert_eq!(same_origin_path(b"http://SITE/x", &site), Some(&b"/x"[..]));
    assert_eq!(
        same_origin_path(b"http://site:80/x", &site),
        Some(&b"/x"[..])
    );
    assert_eq!(same_origin_path(b"http://site", &site), Some(&b"/"[..]));
    assert_eq!(
        same_origin_path(b"http://site:8080/x", &site),
        None,
        "another port"
    );
    assert_eq!(
        same_origin_path(b"https://site/x", &site),
        None,
        "another scheme"
    );
    assert_eq!(same_origin_path(b"http://other/x", &site), None);
    assert_eq!(same_origin_path(b"//site/x", &site), None);
    assert_eq!(same_origin_path(b"relative", &site), None);
    let tls = Origin {
        https: true,
        authority: b"site:8443",
    };
    assert_eq!(
        same_origin_path(b"https://site:8443/y", &tls),
        Some(&b"/y"[..])
    );
    assert_eq!(same_origin_path(b"https://site/y", &tls), None);
}
