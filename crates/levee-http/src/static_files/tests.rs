//! `resolve` against a real directory tree: path safety, symlinks,
//! directories and errors. HTTP semantics (conditionals, ranges, HEAD, MIME)
//! are in `tests/http.rs`.

mod http;

use std::os::unix::fs::{FileExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::*;

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("levee-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 2015-10-21T07:28:00Z: every fixture file gets this mtime.
pub(super) const MTIME: u64 = 1_445_412_480;
pub(crate) const HELLO: &[u8] = b"hello, world\n";

/// ```text
/// <tmp>/root/                 the static root
///   index.html  hello.txt  data.bin (bytes 0..=255)  .hidden
///   style.css  app.js  README
///   sub/index.html  sub/page.txt
///   empty/                    no index
///   link_in  -> hello.txt     stays inside
///   link_out -> ../outside/secret.txt
///   dir_out  -> ../outside
/// <tmp>/outside/secret.txt
/// ```
pub(crate) struct Tree {
    tmp: TempDir,
}

impl Tree {
    pub(crate) fn new() -> Self {
        let tmp = TempDir::new("static");
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        for dir in [&root, &root.join("sub"), &root.join("empty"), &outside] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        let data: Vec<u8> = (0..=255).collect();
        let files: [(&str, &[u8]); 10] = [
            ("index.html", b"<h1>home</h1>"),
            ("hello.txt", HELLO),
            ("data.bin", &data),
            (".hidden", b"dotfile"),
            ("style.css", b"p{}"),
            ("app.js", b"1"),
            ("README", b"readme"),
            ("sub/index.html", b"sub home"),
            ("sub/page.txt", b"page"),
            ("../outside/secret.txt", b"SECRET"),
        ];
        for (name, body) in files {
            let file = std::fs::File::create(root.join(name)).expect("create file");
            file.write_all_at(body, 0).expect("write file");
            file.set_modified(UNIX_EPOCH + Duration::from_secs(MTIME))
                .expect("set mtime");
        }
        symlink("hello.txt", root.join("link_in")).expect("symlink in");
        symlink("../outside/secret.txt", root.join("link_out")).expect("symlink out");
        symlink("../outside", root.join("dir_out")).expect("dir symlink out");
        Self { tmp }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    pub(crate) fn action(&self) -> StaticAction {
        StaticAction {
            root: self.root(),
            index: vec!["index.html".to_owned()],
            follow_symlinks: false,
            options: Default::default(),
        }
    }
}

/// A GET of `raw` as a parsed head carries it: the path normalised by
/// `normal.rs` (leaked: tests only). Panics on a path normal.rs refuses.
pub(crate) fn get(raw: &str) -> StaticRequest<'static> {
    let path = matched(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
    StaticRequest {
        method: b"GET",
        path,
        ..StaticRequest::default()
    }
}

fn matched(raw: &str) -> Result<&'static [u8], crate::normal::PathError> {
    Ok(match crate::normal::normalise(raw.as_bytes(), b"")? {
        Some(n) => Box::leak(n.matched),
        None => Box::leak(raw.as_bytes().to_vec().into_boxed_slice()),
    })
}

pub(super) fn status(outcome: &StaticOutcome) -> u16 {
    match outcome {
        StaticOutcome::Send { status, .. } | StaticOutcome::Error { status, .. } => *status,
        StaticOutcome::NotModified { .. } => 304,
        StaticOutcome::Redirect { .. } => 301,
    }
}

pub(super) fn field<'a>(outcome: &'a StaticOutcome, name: &str) -> Option<&'a str> {
    let fields = match outcome {
        StaticOutcome::Send { fields, .. }
        | StaticOutcome::NotModified { fields }
        | StaticOutcome::Error { fields, .. } => fields,
        StaticOutcome::Redirect { .. } => return None,
    };
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The body bytes a connection would send for `outcome`.
pub(super) fn body(outcome: &StaticOutcome) -> Vec<u8> {
    let StaticOutcome::Send { file, body, .. } = outcome else {
        panic!("expected Send, got {outcome:?}");
    };
    let read = |start: u64, len: u64| {
        let mut buf = vec![0; usize::try_from(len).expect("small test file")];
        file.read_exact_at(&mut buf, start).expect("read range");
        buf
    };
    match body {
        BodyPlan::None => Vec::new(),
        BodyPlan::Range { start, len } => read(*start, *len),
        BodyPlan::Multipart { parts, closing } => {
            let mut out = Vec::new();
            for part in parts {
                out.extend_from_slice(&part.preamble);
                out.extend(read(part.start, part.len));
            }
            out.extend_from_slice(closing);
            out
        }
    }
}

/// Asserts a 200 whose body is `expected`.
#[track_caller]
pub(super) fn assert_serves(outcome: &StaticOutcome, expected: &[u8]) {
    assert_eq!(status(outcome), 200, "{outcome:?}");
    assert_eq!(body(outcome), expected);
}

#[test]
fn every_escape_attempt_is_refused() {
    let tree = Tree::new();
    let action = tree.action();
    for path in [
        "/../etc/passwd",
        "/../outside/secret.txt",
        "/%2e%2e/",
        "/%2e%2e/outside/secret.txt",
        "/%2E./outside/secret.txt",
        "/a/../../x",
        "/sub/../../outside/secret.txt",
        "/%2e%2e%2fetc",
        "/%2e%2e%2Foutside%2Fsecret.txt",
        "/..%2f",
        "/..%2foutside/secret.txt",
        "/%00",
        "/hello.txt%00.html",
        "/..\\outside\\secret.txt",
        "/%5c..%5coutside%5csecret.txt",
        "/%zz",
        "relative/hello.txt",
    ] {
        // Most never get here: the head's parse refuses them (400).
        let Ok(decoded) = matched(path) else { continue };
        let req = StaticRequest {
            method: b"GET",
            path: decoded,
            ..StaticRequest::default()
        };
        let outcome = resolve(&action, &req);
        assert_eq!(status(&outcome), 400, "{path}: {outcome:?}");
        assert!(matches!(
            outcome,
            StaticOutcome::Error {
                cause: StaticError::BadPath(_),
                ..
            }
        ));
    }
}

#[test]
fn harmless_spellings_reach_the_file() {
    let tree = Tree::new();
    let action = tree.action();
    for path in [
        "/hello.txt",
        "//hello.txt",
        "/./hello.txt",
        "/sub/../hello.txt",
        "/%68ello.txt",
    ] {
        assert_serves(&resolve(&action, &get(path)), HELLO);
    }
    // An encoded slash is a separator (decoded before splitting).
    assert_serves(&resolve(&action, &get("/sub%2fpage.txt")), b"page");
}

#[test]
fn symlinks_out_of_the_root_need_follow_symlinks() {
    let tree = Tree::new();
    let strict = tree.action();
    for path in ["/link_out", "/dir_out/secret.txt", "/dir_out/", "/dir_out"] {
        let outcome = resolve(&strict, &get(path));
        assert_eq!(status(&outcome), 403, "{path}: {outcome:?}");
        assert!(matches!(
            outcome,
            StaticOutcome::Error {
                cause: StaticError::OutsideRoot(_),
                ..
            }
        ));
    }
    let lenient = StaticAction {
        follow_symlinks: true,
        ..tree.action()
    };
    assert_serves(&resolve(&lenient, &get("/link_out")), b"SECRET");
    assert_serves(&resolve(&lenient, &get("/dir_out/secret.txt")), b"SECRET");
}

#[test]
fn symlinks_inside_the_root_are_served() {
    let tree = Tree::new();
    for follow_symlinks in [false, true] {
        let action = StaticAction {
            follow_symlinks,
            ..tree.action()
        };
        assert_serves(&resolve(&action, &get("/link_in")), HELLO);
    }
}

#[test]
fn a_symlinked_root_still_jails() {
    let tree = Tree::new();
    let alias = tree.tmp.path().join("alias");
    symlink(tree.root(), &alias).expect("symlink root");
    let action = StaticAction {
        root: alias,
        ..tree.action()
    };
    assert_serves(&resolve(&action, &get("/link_in")), HELLO);
    assert_eq!(status(&resolve(&action, &get("/link_out"))), 403);
}

#[test]
fn directories_use_index_files() {
    let tree = Tree::new();
    let action = tree.action();
    let home = resolve(&action, &get("/"));
    assert_serves(&home, b"<h1>home</h1>");
    assert_eq!(
        field(&home, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_serves(&resolve(&action, &get("/sub/")), b"sub home");

    let listed = StaticAction {
        index: vec![
            "missing.html".into(),
            "page.txt".into(),
            "index.html".into(),
        ],
        ..tree.action()
    };
    let page = resolve(&listed, &get("/sub/"));
    assert_serves(&page, b"page");
    assert_eq!(
        field(&page, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn directory_without_index_is_forbidden() {
    let tree = Tree::new();
    let outcome = resolve(&tree.action(), &get("/empty/"));
    assert_eq!(status(&outcome), 403);
    assert!(matches!(
        outcome,
        StaticOutcome::Error {
            cause: StaticError::NoIndex,
            ..
        }
    ));
    // Index names that are not plain file names are never tried.
    let sneaky = StaticAction {
        index: vec![
            "../hello.txt".into(),
            "..".into(),
            "".into(),
            "sub/page.txt".into(),
        ],
        ..tree.action()
    };
    assert_eq!(status(&resolve(&sneaky, &get("/"))), 403);
    assert_eq!(status(&resolve(&sneaky, &get("/sub/"))), 403);
}

#[test]
fn directory_without_trailing_slash_redirects() {
    let tree = Tree::new();
    let action = tree.action();
    for (path, location) in [
        ("/sub", "/sub/"),
        ("/empty", "/empty/"),
        ("//sub", "/sub/"),
        ("/hello.txt/../sub", "/sub/"),
        ("/%73ub", "/sub/"),
    ] {
        match resolve(&action, &get(path)) {
            StaticOutcome::Redirect { location: got } => assert_eq!(got, location, "{path}"),
            other => panic!("{path}: expected 301, got {other:?}"),
        }
    }
}

#[test]
fn missing_things_are_404() {
    let tree = Tree::new();
    let action = tree.action();
    for path in [
        "/nope",
        "/sub/nope.html",
        "/hello.txt/",
        "/hello.txt/x",
        "/nope/",
    ] {
        let outcome = resolve(&action, &get(path));
        assert_eq!(status(&outcome), 404, "{path}: {outcome:?}");
    }
    let long = format!("/{}", "a".repeat(300));
    assert_eq!(status(&resolve(&action, &get(&long))), 404);
    let gone = StaticAction {
        root: tree.root().join("no-such-root"),
        ..tree.action()
    };
    assert_eq!(status(&resolve(&gone, &get("/hello.txt"))), 404);
}

#[test]
fn hidden_files_are_served() {
    let tree = Tree::new();
    assert_serves(&resolve(&tree.action(), &get("/.hidden")), b"dotfile");
}

#[test]
fn special_files_are_refused_without_blocking() {
    let tree = Tree::new();
    let fifo = tree.root().join("pipe");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .expect("mkfifo");
    // Without O_NONBLOCK this open would wait forever for a writer.
    let outcome = resolve(&tree.action(), &get("/pipe"));
    assert_eq!(status(&outcome), 403, "{outcome:?}");
    assert!(matches!(
        outcome,
        StaticOutcome::Error {
            cause: StaticError::NotRegular,
            ..
        }
    ));
}

#[test]
fn methods_other_than_get_and_head_are_405() {
    let tree = Tree::new();
    for method in [&b"POST"[..], b"PUT", b"DELETE", b"OPTIONS", b"get", b""] {
        let req = StaticRequest {
            method,
            ..get("/hello.txt")
        };
        let outcome = resolve(&tree.action(), &req);
        assert_eq!(status(&outcome), 405);
        assert_eq!(field(&outcome, "Allow"), Some("GET, HEAD"));
    }
}
