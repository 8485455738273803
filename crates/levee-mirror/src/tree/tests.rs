//! The walk and the symlink policy on a real directory.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use super::*;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("levee-tree-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// storage/tree holds the files; vhosts/dl.example.org is a symlink to it
/// and is the configured root: the virtual-host part of the path is a
/// symlinked directory, as where MirrorBrain broke.
fn layout(base: &Path) -> PathBuf {
    let tree = base.join("storage/tree");
    std::fs::create_dir_all(tree.join("releases/1.0")).expect("mkdir");
    std::fs::write(tree.join("releases/1.0/image.iso"), vec![1u8; 5000]).expect("write");
    std::fs::write(base.join("secret"), b"outside").expect("write");
    symlink("releases/1.0", tree.join("current")).expect("link");
    symlink("current/image.iso", tree.join("latest.iso")).expect("link");
    symlink("../../secret", tree.join("escape")).expect("link");
    symlink(base.join("secret"), tree.join("absolute-escape")).expect("link");
    symlink("loop-b", tree.join("loop-a")).expect("link");
    symlink("loop-a", tree.join("loop-b")).expect("link");
    std::fs::create_dir_all(base.join("vhosts")).expect("mkdir");
    symlink(&tree, base.join("vhosts/dl.example.org")).expect("link");
    symlink(
        base.join("vhosts/dl.example.org/releases/1.0/image.iso"),
        tree.join("via-vhost.iso"),
    )
    .expect("link");
    base.join("vhosts/dl.example.org")
}

#[test]
fn symlinks_inside_resolve_to_the_mirrored_path_and_outside_never() {
    let base = temp("links");
    let root = layout(&base);
    let tree = Tree::walk(&root, &Patterns::default()).expect("walk");
    assert_eq!(tree.len(), 1, "only regular files are indexed");
    // The root's own symlink never shows in a path.
    assert_eq!(tree.path(0), b"releases/1.0/image.iso");
    let file = |p: &[u8]| match tree.resolve(p) {
        Resolved::File { id, via_link } => Some((tree.path(id).to_vec(), via_link)),
        _ => None,
    };
    assert_eq!(
        file(b"releases/1.0/image.iso"),
        Some((b"releases/1.0/image.iso".to_vec(), false))
    );
    assert_eq!(
        file(b"current/image.iso"),
        Some((b"releases/1.0/image.iso".to_vec(), true))
    );
    assert_eq!(
        file(b"latest.iso"),
        Some((b"releases/1.0/image.iso".to_vec(), true))
    );
    assert_eq!(
        file(b"via-vhost.iso"),
        Some((b"releases/1.0/image.iso".to_vec(), true))
    );
    assert_eq!(tree.resolve(b"escape"), Resolved::Outside);
    assert_eq!(tree.resolve(b"absolute-escape"), Resolved::Outside);
    assert_eq!(tree.resolve(b"loop-a"), Resolved::Missing, "a loop ends");
    assert_eq!(tree.resolve(b"current/nothing"), Resolved::Missing);
    assert_eq!(tree.resolve(b"releases"), Resolved::Missing, "a directory");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn exclusions_top_files_and_inheritance() {
    let files: [(&[u8], FileMeta); 3] = [
        (b"a.iso", FileMeta { size: 10, mtime: 1 }),
        (b"a.iso.asc", FileMeta { size: 10, mtime: 1 }),
        (b"b.iso", FileMeta { size: 10, mtime: 1 }),
    ];
    let exclude = Patterns::new(&["*.asc".into()]);
    let old = Tree::from_list("/".into(), files, [], &exclude);
    assert!(old.excluded(1) && !old.excluded(0));
    old.set_digest(0, [7; 32]);
    old.set_digest(2, [8; 32]);
    for _ in 0..3 {
        old.count_download(2);
    }
    old.count_download(0);
    assert_eq!(old.top(1), [(2, 3)]);
    assert_eq!(old.top(5), [(2, 3), (0, 1)]);
    let changed: [(&[u8], FileMeta); 2] = [
        (b"b.iso", FileMeta { size: 11, mtime: 2 }),
        (b"a.iso", FileMeta { size: 10, mtime: 1 }),
    ];
    let new = Tree::from_list("/".into(), changed, [], &exclude);
    new.inherit(&old);
    assert_ne!(new.generation, old.generation);
    assert_eq!(new.digest(1), Some(&[7; 32]), "unchanged: digest kept");
    assert_eq!(new.digest(0), None, "new version: hashed again");
    assert_eq!(new.downloads(0), 3, "counts follow the path");
    assert_eq!(normalise(b"a/./b/../c"), Some(b"a/c".to_vec()));
    assert_eq!(normalise(b"a/../../c"), None);
}
