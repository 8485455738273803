use std::time::UNIX_EPOCH;

use levee_config::{Dotfiles, StaticOptions};

use super::*;
use crate::static_files::tests::{HELLO, Tree, get};

fn with(tree: &Tree, options: StaticOptions) -> StaticAction {
    StaticAction {
        options,
        ..tree.action()
    }
}

fn status(d: &Decided) -> u16 {
    match d {
        Decided::File(StaticOutcome::Send { status, .. }) => *status,
        Decided::File(StaticOutcome::NotModified { .. }) => 304,
        Decided::File(StaticOutcome::Redirect { .. }) => 301,
        Decided::File(StaticOutcome::Error { status, .. }) => *status,
        Decided::Page { .. } => 200,
    }
}

fn field<'a>(d: &'a Decided, name: &str) -> Option<&'a str> {
    match d {
        Decided::File(StaticOutcome::Send { fields, .. }) => fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

fn length(d: &Decided) -> u64 {
    field(d, "Content-Length").map_or(0, |v| v.parse().expect("a length"))
}

#[test]
fn dotfiles_are_hidden_by_default_in_every_spelling() {
    let tree = Tree::new();
    std::fs::create_dir_all(tree.root().join(".git")).expect("mkdir");
    std::fs::write(tree.root().join(".git/config"), "[core]").expect("write");
    std::fs::create_dir_all(tree.root().join(".well-known")).expect("mkdir");
    std::fs::write(tree.root().join(".well-known/security.txt"), "x").expect("write");
    let hide = tree.action();
    for path in [
        "/.hidden",
        "/%2Ehidden",
        "/.git/config",
        "/sub/../.hidden",
        "/.git/",
    ] {
        let d = resolve(&hide, &get(path), Asked::default());
        assert_eq!(status(&d), 404, "{path}");
    }
    assert_eq!(
        status(&resolve(
            &hide,
            &get("/.well-known/security.txt"),
            Asked::default()
        )),
        200
    );
    let deny = with(
        &tree,
        StaticOptions {
            dotfiles: Dotfiles::Deny,
            dotfiles_allow: Vec::new(),
            ..StaticOptions::default()
        },
    );
    assert_eq!(
        status(&resolve(&deny, &get("/.hidden"), Asked::default())),
        403
    );
    assert_eq!(
        status(&resolve(
            &deny,
            &get("/.well-known/security.txt"),
            Asked::default()
        )),
        403
    );
    let allow = with(
        &tree,
        StaticOptions {
            dotfiles: Dotfiles::Allow,
            ..StaticOptions::default()
        },
    );
    assert_eq!(
        status(&resolve(&allow, &get("/.hidden"), Asked::default())),
        200
    );
}

#[test]
fn expiry_by_extension_over_the_routes() {
    let tree = Tree::new();
    let action = with(
        &tree,
        StaticOptions {
            expires: Some(Duration::from_secs(60)),
            expires_by_extension: vec![("css".into(), Duration::from_secs(86_400))],
            ..StaticOptions::default()
        },
    );
    let css = resolve(&action, &get("/style.css"), Asked::default());
    assert_eq!(field(&css, "Cache-Control"), Some("max-age=86400"));
    let txt = resolve(&action, &get("/hello.txt"), Asked::default());
    assert_eq!(field(&txt, "Cache-Control"), Some("max-age=60"));
    assert!(field(&txt, "Expires").is_some());
    let mut fields = Vec::new();
    expiry_fields(&mut fields, Duration::from_secs(60), UNIX_EPOCH);
    assert_eq!(
        fields,
        [
            ("Cache-Control", "max-age=60".to_owned()),
            ("Expires", "Thu, 01 Jan 1970 00:01:00 GMT".to_owned())
        ]
    );
    let plain = resolve(&tree.action(), &get("/hello.txt"), Asked::default());
    assert_eq!(field(&plain, "Cache-Control"), None);
}

#[test]
fn try_files_falls_back_to_the_app_shell() {
    let tree = Tree::new();
    let spa = with(
        &tree,
        StaticOptions {
            try_files: vec!["$uri".into(), "$uri/".into(), "/index.html".into()],
            ..StaticOptions::default()
        },
    );
    let hello = resolve(&spa, &get("/hello.txt"), Asked::default());
    assert_eq!(length(&hello), HELLO.len() as u64);
    let shell = resolve(&spa, &get("/app/route/42"), Asked::default());
    assert_eq!((status(&shell), length(&shell)), (200, 13), "index.html");
    let sub = resolve(&spa, &get("/sub/"), Asked::default());
    assert_eq!((status(&sub), length(&sub)), (200, 8), "sub/index.html");
    let strict = with(
        &tree,
        StaticOptions {
            try_files: vec!["$uri".into(), "=410".into()],
            ..StaticOptions::default()
        },
    );
    assert_eq!(
        status(&resolve(&strict, &get("/nope"), Asked::default())),
        410
    );
    // Hidden paths are refused before any candidate.
    assert_eq!(
        status(&resolve(&spa, &get("/.hidden"), Asked::default())),
        404
    );
}

#[test]
fn listings_escape_names_and_hide_dotfiles() {
    let tree = Tree::new();
    let dir = tree.root().join("empty");
    for name in ["<script>", "a&b\"c", ".secret", "plain.txt"] {
        std::fs::write(dir.join(name), "x").expect("write");
    }
    std::fs::create_dir(dir.join("child")).expect("mkdir");
    let action = with(
        &tree,
        StaticOptions {
            listing: true,
            ..StaticOptions::default()
        },
    );
    let Decided::Page { content_type, body } = resolve(&action, &get("/empty/"), Asked::default())
    else {
        panic!("a listing");
    };
    assert_eq!(content_type, "text/html; charset=utf-8");
    let page = String::from_utf8(body).expect("UTF-8");
    assert!(
        page.contains("<a href=\"./%3Cscript%3E\">&lt;script&gt;</a>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"./a%26b%22c\">a&amp;b&quot;c</a>"),
        "{page}"
    );
    assert!(page.contains("<a href=\"./child/\">child/</a>"), "{page}");
    assert!(!page.contains("secret"), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    let json = Asked {
        query: b"format=json",
        accept: None,
    };
    let Decided::Page { content_type, body } = resolve(&action, &get("/empty/"), json) else {
        panic!("a listing");
    };
    assert_eq!(content_type, "application/json");
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(
        text.starts_with("[{\"name\":\"child\",\"type\":\"directory\""),
        "{text}"
    );
    assert!(
        text.contains("{\"name\":\"\\u003cscript>\",\"type\":\"file\",\"size\":1"),
        "{text}"
    );
    assert!(text.contains("\"a&b\\\"c\""), "{text}");
    let by_accept = Asked {
        query: b"",
        accept: Some(b"application/json"),
    };
    assert!(matches!(
        resolve(&action, &get("/empty/"), by_accept),
        Decided::Page {
            content_type: "application/json",
            ..
        }
    ));
    // Without `listing` the same directory is the 403 it always was.
    assert_eq!(
        status(&resolve(&tree.action(), &get("/empty/"), Asked::default())),
        403
    );
}
