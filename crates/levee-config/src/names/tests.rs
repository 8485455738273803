use super::*;

#[test]
fn host_patterns() {
    assert_eq!(
        parse_host_pattern("Example.COM"),
        Ok(HostMatch::Exact("example.com".into()))
    );
    assert_eq!(
        parse_host_pattern("*.Example.com"),
        Ok(HostMatch::Wildcard(".example.com".into()))
    );
    assert_eq!(
        parse_host_pattern("[::1]"),
        Ok(HostMatch::Exact("[::1]".into()))
    );
    assert_eq!(
        parse_host_pattern("10.0.0.1"),
        Ok(HostMatch::Exact("10.0.0.1".into()))
    );
    assert_eq!(
        parse_host_pattern("localhost"),
        Ok(HostMatch::Exact("localhost".into()))
    );
}

#[test]
fn bad_host_patterns() {
    for text in [
        "",
        "*",
        "*.",
        "a*.com",
        "*.*.com",
        "**.com",
        "example.com:80",
        "exa mple.com",
        "example..com",
        ".example.com",
        "example.com.",
        "[::1]:80",
        "[zz]",
        "ex/ample",
    ] {
        assert!(
            parse_host_pattern(text).is_err(),
            "{text:?} should be rejected"
        );
    }
    assert_eq!(
        parse_host_pattern("a*.com"),
        Err("invalid host pattern `a*.com`: `*` is only allowed as a whole first label, as in \"*.example.com\"".into())
    );
}

#[test]
fn server_addresses() {
    for text in [
        "127.0.0.1:8080",
        "[::1]:80",
        "[2001:db8::1]:65535",
        "app.internal:1",
        "backend_1:9000",
    ] {
        assert_eq!(check_server_address(text), Ok(()), "{text}");
    }
}

#[test]
fn bad_server_addresses() {
    for text in [
        "",
        "127.0.0.1",
        "127.0.0.1:",
        ":80",
        "host:0",
        "host:65536",
        "host:-1",
        "host:+80",
        "::1:80",
        "[::1]",
        "[nope]:80",
        "a b:80",
        "http://x:80",
        "host:80x",
    ] {
        assert!(
            check_server_address(text).is_err(),
            "{text:?} should be rejected"
        );
    }
    assert_eq!(
        check_server_address("host:0"),
        Err("invalid server address `host:0`: the port must be 1..=65535".into())
    );
}

#[test]
fn route_paths() {
    assert_eq!(check_route_path("/"), Ok(()));
    assert_eq!(check_route_path("/api/v1/"), Ok(()));
    assert!(check_route_path("").is_err());
    assert!(check_route_path("api").is_err());
    assert!(check_route_path("/a b").is_err());
    assert!(check_route_path("/a?b").is_err());
    assert!(check_route_path("/a\n").is_err());
    // Routes match the normalised, decoded path: other spellings never would.
    assert_eq!(check_route_path("/café/"), Ok(()));
    for bad in [
        "/%61dmin/",
        "/a;b/",
        "/a\\b",
        "//admin/",
        "/a/./b",
        "/a/../b",
        "/a/.",
        "/..",
    ] {
        assert!(check_route_path(bad).is_err(), "{bad}");
    }
}
