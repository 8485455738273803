use super::*;
use crate::h1::{HeadLimits, Parsed, parse_request};

fn head(target: &str) -> RequestHead {
    let text = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
    let limits = HeadLimits {
        max_request_line: 8192,
        max_header_bytes: 8192,
        max_headers: 10,
    };
    match parse_request(text.as_bytes(), 0, &limits) {
        Ok(Parsed::Complete(parts, len)) => {
            let bytes = bytes::Bytes::from(text.into_bytes());
            parts.into_head(bytes.slice(..len))
        }
        other => panic!("{target}: {other:?}"),
    }
}

fn rule(pattern: &str, to: &str, flag: RewriteFlag) -> levee_config::RewriteRule {
    let re = regex::bytes::Regex::new(pattern).expect("a valid regex");
    let to =
        levee_config::RewriteTemplate::parse(to, re.captures_len()).expect("a valid replacement");
    levee_config::RewriteRule {
        pattern: levee_config::Pattern(re),
        to,
        flag,
    }
}

fn rewrite(rules: Vec<levee_config::RewriteRule>) -> RouteRewrite {
    RouteRewrite {
        rules,
        ..RouteRewrite::default()
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("ASCII")
}

#[test]
fn a_capture_is_rewritten_and_the_query_kept() {
    let rw = rewrite(vec![rule("^/old/(.*)$", "/new/$1", RewriteFlag::Last)]);
    let mut h = head("/old/a/b?x=1");
    assert_eq!(rules(&rw, &mut h), Ok(Step::Again));
    assert_eq!(text(h.path()), "/new/a/b");
    assert_eq!(text(h.uri()), "/new/a/b?x=1");
    assert_eq!(text(h.query()), "x=1");
}

#[test]
fn a_question_mark_in_the_replacement_replaces_the_query() {
    let rw = rewrite(vec![rule(
        "^/item/([0-9]+)$",
        "/show?id={1}&v=2",
        RewriteFlag::Break,
    )]);
    let mut h = head("/item/42?x=1");
    assert_eq!(rules(&rw, &mut h), Ok(Step::Stay(true)));
    assert_eq!(text(h.uri()), "/show?id=42&v=2");
    assert_eq!(text(h.query()), "id=42&v=2");
    // A bare `?` at the end drops the query.
    let rw = rewrite(vec![rule("^/a$", "/b?", RewriteFlag::Break)]);
    let mut h = head("/a?secret=1");
    rules(&rw, &mut h).expect("rewritten");
    assert_eq!(text(h.uri()), "/b");
}

#[test]
fn decoded_characters_in_a_capture_stay_characters() {
    // `%3F` is a `?` in the matched path; put back, it must not start a
    // query, nor `%3B` a path parameter, nor `%25` an escape.
    let rw = rewrite(vec![rule("^/f/(.*)$", "/g/$1", RewriteFlag::Break)]);
    let mut h = head("/f/a%3Fb%3Bc%25d%20e");
    rules(&rw, &mut h).expect("rewritten");
    assert_eq!(text(h.path()), "/g/a?b;c%d e");
    assert_eq!(text(h.uri()), "/g/a%3Fb%3Bc%25d%20e");
    assert_eq!(text(h.query()), "");
}

#[test]
fn a_rewritten_path_is_normalised_like_a_clients() {
    let rw = rewrite(vec![rule("^/f/(.*)$", "/g/../$1", RewriteFlag::Last)]);
    // Encoded and doubled spellings reach the rule decoded, and the
    // result's dot segments resolve: `/g/../admin/x` is `/admin/x`.
    for spelling in ["/f/admin/x", "/f/%61dmin/x", "/f//admin/x", "/f/./admin/x"] {
        let mut h = head(spelling);
        assert_eq!(rules(&rw, &mut h), Ok(Step::Again), "{spelling}");
        assert_eq!(text(h.path()), "/admin/x", "{spelling}");
        assert_eq!(text(h.uri()), "/admin/x", "{spelling}");
    }
    // A capture that climbs above the root is refused, as a client's is.
    let climb = rewrite(vec![rule(
        "^/f/([.]+)x/(.*)$",
        "/$1/$1/$2",
        RewriteFlag::Last,
    )]);
    let mut h = head("/f/..x/y");
    assert_eq!(rules(&climb, &mut h), Err(PathError::AboveRoot));
    let rw = rewrite(vec![rule("^/f/(.*)$", "/$1", RewriteFlag::Last)]);
    // An encoded slash in the capture becomes a separator in both forms,
    // so routing and the upstream read the same path.
    let mut h = head("/f/admin%2Fx");
    rules(&rw, &mut h).expect("rewritten");
    assert_eq!(text(h.path()), "/admin/x");
    assert_eq!(text(h.uri()), "/admin/x");
}

#[test]
fn the_first_matching_rule_applies() {
    let rw = rewrite(vec![
        rule("^/a/", "/one", RewriteFlag::Break),
        rule("^/a/b", "/two", RewriteFlag::Break),
        rule(
            "^/r/(.*)",
            "https://example.com/{1}",
            RewriteFlag::Redirect(308),
        ),
    ]);
    let mut h = head("/a/b");
    rules(&rw, &mut h).expect("rewritten");
    assert_eq!(text(h.path()), "/one");
    let mut h = head("/zzz");
    assert_eq!(rules(&rw, &mut h), Ok(Step::Stay(false)));
    assert_eq!(h.normal, None);
    let mut h = head("/r/x%20y?q=1");
    assert_eq!(
        rules(&rw, &mut h),
        Ok(Step::Redirect {
            status: 308,
            location: b"https://example.com/x%20y?q=1".to_vec()
        })
    );
}

#[test]
fn a_redirect_to_a_path_never_names_another_host() {
    let rw = rewrite(vec![rule("^/r(.*)$", "/$1", RewriteFlag::Redirect(302))]);
    let mut h = head("/r/evil.example/x?q");
    assert_eq!(
        rules(&rw, &mut h),
        Ok(Step::Redirect {
            status: 302,
            location: b"/evil.example/x?q".to_vec()
        })
    );
}

#[test]
fn prefixes_are_stripped_at_a_segment_boundary_and_added() {
    let rw = RouteRewrite {
        strip_prefix: Some("/api/".into()),
        add_prefix: Some("/v2".into()),
        ..RouteRewrite::default()
    };
    for (from, to) in [
        ("/api/users?id=1", "/v2/users?id=1"),
        ("/api", "/v2/"),
        ("/%61pi/x%3Fy", "/v2/x%3Fy"),
        ("/apix/users", "/v2/apix/users"),
    ] {
        let mut h = head(from);
        assert_eq!(prefixes(&rw, &mut h), Ok(true), "{from}");
        assert_eq!(text(h.uri()), to, "{from}");
    }
    let strip = RouteRewrite {
        strip_prefix: Some("/api".into()),
        ..RouteRewrite::default()
    };
    let mut h = head("/other");
    assert_eq!(prefixes(&strip, &mut h), Ok(false));
    assert_eq!(h.normal, None);
}
