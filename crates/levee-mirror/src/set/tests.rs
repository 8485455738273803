//! The request path of a set with a hand-made tree and mirrors.

use std::path::PathBuf;
use std::time::SystemTime;

use super::*;
use crate::bits::Bits;
use crate::tree::FileMeta;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("levee-set-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn mirror(name: &str, country: &str, https: bool) -> levee_config::Mirror {
    let mut m = levee_config::Mirror::new(name);
    m.http = Some(format!("http://{name}.example/pub"));
    if https {
        m.https = Some(format!("https://{name}.example/pub"));
    }
    m.country = Some(country.into());
    m
}

/// A set whose every mirror is up and has every file but `small`.
fn set(name: &str, mirrors: Vec<levee_config::Mirror>) -> Arc<MirrorSet> {
    let dir = temp(name);
    let mut config = levee_config::MirrorSet::new(name, dir.clone(), dir.join("state"));
    config.exclude = vec!["*.asc".into()];
    config.verify_sample = 0;
    config.mirrors = mirrors;
    let set = MirrorSet::obtain(&config).expect("obtain");
    let files: [(&[u8], FileMeta); 4] = [
        (
            b"big file.iso",
            FileMeta {
                size: 1 << 20,
                mtime: 1,
            },
        ),
        (
            b"small.txt",
            FileMeta {
                size: 100,
                mtime: 1,
            },
        ),
        (
            b"big file.iso.asc",
            FileMeta {
                size: 1 << 20,
                mtime: 1,
            },
        ),
        (
            b"dir/x.iso",
            FileMeta {
                size: 1 << 20,
                mtime: 1,
            },
        ),
    ];
    let links: [(&[u8], crate::tree::Link); 2] = [
        (
            b"latest.iso",
            crate::tree::Link::Inside(b"dir/x.iso".to_vec().into()),
        ),
        (b"out", crate::tree::Link::Outside),
    ];
    set.replace_tree(Tree::from_list(dir, files, links, &set.exclude()));
    let view = set.view();
    view.tree.set_digest(0, [9; 32]);
    for m in &view.mirrors {
        let has = Bits::new(4);
        for i in 0..4 {
            has.set(i);
        }
        let holdings = Holdings {
            generation: view.tree.generation,
            has,
            stale: 0,
            stale_examples: Vec::new(),
            scanned_at: Some(SystemTime::now()),
            probe: None,
        };
        assert!(set.replace_holdings(m.profile.name(), holdings));
        m.live.set_up(true);
    }
    set
}

fn ask<'a>(path: &'a [u8], query: &'a [u8]) -> Ask<'a> {
    Ask {
        path,
        directory: false,
        query,
        accept: None,
        client: "192.0.2.1".parse().expect("literal"),
        https: false,
        host: b"dl.example",
        fetch: true,
        now: Instant::now(),
    }
}

fn fields(a: Answer) -> Vec<(&'static str, String)> {
    match a {
        Answer::Redirect { fields } => fields,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

#[test]
fn redirects_with_links_and_digests() {
    let s = set(
        "redirects",
        vec![mirror("a", "DE", false), mirror("b", "FR", false)],
    );
    let f = fields(s.decide(&ask(b"big file.iso", b"")));
    assert_eq!(f[0].0, "Location");
    assert!(f[0].1.ends_with("/pub/big%20file.iso"), "{f:?}");
    let links: Vec<&String> = f
        .iter()
        .filter(|(n, _)| *n == "Link")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        links.len(),
        2,
        "one alternative and the Metalink: {links:?}"
    );
    assert!(links[1].starts_with("</big%20file.iso.meta4>; rel=describedby"));
    assert!(
        f.iter()
            .any(|(n, v)| *n == "Repr-Digest" && v.starts_with("sha-256=:CQkJ"))
    );
    // Through a link inside the tree: the path the mirrors carry.
    let f = fields(s.decide(&ask(b"latest.iso", b"")));
    assert!(f[0].1.ends_with("/pub/dir/x.iso"), "{f:?}");
    let view = s.view();
    assert_eq!(view.tree.downloads(0), 1);
}

#[test]
fn local_when_small_excluded_missing_directory_or_unoffered() {
    let s = set("local", vec![mirror("a", "DE", false)]);
    assert!(matches!(s.decide(&ask(b"small.txt", b"")), Answer::Local));
    assert!(matches!(
        s.decide(&ask(b"big file.iso.asc", b"")),
        Answer::Local
    ));
    assert!(matches!(s.decide(&ask(b"nothing.iso", b"")), Answer::Local));
    assert!(matches!(
        s.decide(&Ask {
            directory: true,
            ..ask(b"dir", b"")
        }),
        Answer::Local
    ));
    assert!(matches!(s.decide(&ask(b"out", b"")), Answer::Forbidden));
    // An HTTPS client is never sent to a plain-HTTP mirror.
    assert!(matches!(
        s.decide(&Ask {
            https: true,
            ..ask(b"big file.iso", b"")
        }),
        Answer::Local
    ));
    // A mirror that is down is not offered.
    s.view().mirrors[0].live.set_up(false);
    assert!(matches!(
        s.decide(&ask(b"big file.iso", b"")),
        Answer::Local
    ));
    assert_eq!(s.stats.local.load(std::sync::atomic::Ordering::Relaxed), 4);
}

#[test]
fn allowed_countries_and_disabled_mirrors() {
    let mut only_de = mirror("only-de", "DE", false);
    only_de.allowed_countries = vec!["DE".into()];
    let s = set("allowed", vec![only_de]);
    // The client's country is unknown (no GeoIP database): not allowed.
    assert!(matches!(
        s.decide(&ask(b"big file.iso", b"")),
        Answer::Local
    ));
    let s = set("disabled", vec![mirror("a", "DE", false)]);
    assert_eq!(s.switch("a", false).expect("saved"), edits::Outcome::Done);
    assert!(matches!(
        s.decide(&ask(b"big file.iso", b"")),
        Answer::Local
    ));
    assert_eq!(s.switch("a", true).expect("saved"), edits::Outcome::Done);
    assert!(matches!(
        s.decide(&ask(b"big file.iso", b"")),
        Answer::Redirect { .. }
    ));
}

#[test]
fn documents() {
    let s = set("documents", vec![mirror("a", "DE", true)]);
    let doc = |a: Answer| match a {
        Answer::Document { content_type, body } => {
            (content_type, String::from_utf8(body).expect("utf-8"))
        }
        other => panic!("expected a document, got {other:?}"),
    };
    let (ct, body) = doc(s.decide(&ask(b"big file.iso", b"metalink")));
    assert_eq!(ct, "application/metalink4+xml");
    assert!(
        body.contains(
            "<url location=\"de\" priority=\"1\">http://a.example/pub/big%20file.iso</url>"
        )
    );
    assert!(body.contains("<url priority=\"2\">http://dl.example/big%20file.iso</url>"));
    let (_, suffixed) = doc(s.decide(&ask(b"big file.iso.meta4", b"")));
    assert!(suffixed.contains("<size>1048576</size>"));
    let accept = Ask {
        accept: Some(b"application/metalink4+xml"),
        ..ask(b"small.txt", b"")
    };
    assert_eq!(doc(s.decide(&accept)).0, "application/metalink4+xml");
    let (ct, json) = doc(s.decide(&Ask {
        https: true,
        ..ask(b"dir/x.iso", b"json")
    }));
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["mirrors"][0]["url"], "https://a.example/pub/dir/x.iso");
    assert_eq!(v["origin"], "https://dl.example/dir/x.iso");
    let (ct, html) = doc(s.decide(&ask(b"dir/x.iso", b"mirrorlist")));
    assert!(ct.starts_with("text/html") && html.contains("Mirrors of /dir/x.iso"));
}

#[test]
fn api_edits_keep_state_and_survive() {
    let s = set("edits", vec![mirror("a", "DE", false)]);
    let mut b = mirror("b", "FR", false);
    b.weight = 5;
    s.put(b.clone()).expect("put");
    let names: Vec<String> = s
        .view()
        .mirrors
        .iter()
        .map(|m| m.profile.name().to_owned())
        .collect();
    assert_eq!(names, ["a", "b"]);
    // Saved in the state directory, read back by a new list.
    let saved = crate::edits::Edits::load(&s.state_dir());
    let list = saved.list(&[mirror("a", "DE", false)]);
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].0, b);
    // An edit of a config mirror keeps its live state.
    let live = s.view().mirrors[0].live.clone();
    let mut a = mirror("a", "AT", false);
    a.weight = 3;
    s.put(a).expect("put");
    assert!(Arc::ptr_eq(&live, &s.view().mirrors[0].live));
    assert_eq!(s.view().mirrors[0].profile.config.weight, 3);
}
