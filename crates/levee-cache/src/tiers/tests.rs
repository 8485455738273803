use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::disk::Settings;
use crate::freshness::Stored;
use crate::policy::Head;
use crate::store::Object;

fn object(len: usize, tags: &[&str]) -> Entry {
    let head = Head::plain([(&b"Content-Type"[..], &b"text/plain"[..])].into_iter());
    Entry::Object(Arc::new(Object {
        status: 200,
        visible: head.visible,
        head: head.lines,
        body: Body::from(Bytes::from(vec![b'x'; len])),
        meta: Stored::default(),
        tags: tags.iter().map(|t| Box::from(*t)).collect(),
    }))
}

fn tiers(name: &str) -> (Tiers, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("levee-tiers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let disk = Disk::open(Settings {
        path: path.clone(),
        max_size: 64 << 20,
        max_object_size: 8 << 20,
        fsync: false,
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !disk.is_ready() {
        assert!(Instant::now() < deadline, "ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    (
        Tiers::new(
            Arc::new(Memory::new(1 << 20, 64 << 10)),
            Some(Arc::new(disk)),
            None,
        ),
        path,
    )
}

#[test]
fn memory_first_then_disk_and_large_objects_go_straight_to_disk() {
    let (t, path) = tiers("order");
    assert!(t.put(b"http://h/small".to_vec(), object(100, &[])));
    assert!(matches!(
        t.get_from(b"http://h/small"),
        Some((_, Source::Memory))
    ));
    // Too large for memory: written to disk before put returns.
    assert!(t.put(b"http://h/large".to_vec(), object(200_000, &[])));
    assert!(matches!(
        t.get_from(b"http://h/large"),
        Some((_, Source::Disk))
    ));
    // Written through: gone from memory, still on disk.
    let disk = t.disk.as_ref().expect("disk");
    assert!(disk.flush(Duration::from_secs(10)));
    t.memory.remove(b"http://h/small");
    assert!(matches!(
        t.get_from(b"http://h/small"),
        Some((_, Source::Disk))
    ));
    // A file-backed object (a disk hit, refreshed by a 304) stays out of memory.
    let (from_disk, _) = t.get_from(b"http://h/large").expect("stored");
    assert!(t.put(b"http://h/refreshed".to_vec(), from_disk));
    assert!(t.memory.get(b"http://h/refreshed").is_none());
    assert!(matches!(
        t.get_from(b"http://h/refreshed"),
        Some((_, Source::Disk))
    ));
    let _ = std::fs::remove_dir_all(path);
}

#[test]
fn purges_count_each_key_once_across_tiers() {
    let (t, path) = tiers("purge");
    assert!(t.put(b"http://h/a".to_vec(), object(10, &["red"])));
    assert!(t.put(
        b"https://h/a\x01accept-encoding=gzip".to_vec(),
        object(10, &[])
    ));
    assert!(t.put(b"http://h/b".to_vec(), object(10, &["red"])));
    assert!(
        t.disk
            .as_ref()
            .expect("disk")
            .flush(Duration::from_secs(10))
    );
    assert_eq!(t.purge_local(Purge::Url(b"http://h/a")), Ok(2));
    assert!(t.get(b"http://h/a").is_none());
    assert_eq!(t.purge_local(Purge::Tag("red")), Ok(1));
    assert!(t.get(b"http://h/b").is_none());
    assert!(t.purge_local(Purge::Prefix(b"nope")).is_err());
    let _ = std::fs::remove_dir_all(path);
}

/// A store on its way to the shared tier learns whether a purge that
/// names it began since it was stored locally (then it is not sent, or
/// removed again), and only such a purge: another key's leaves it alone.
#[test]
fn purged_since_names_only_what_a_later_purge_matched() {
    let t = Tiers::new(Arc::new(Memory::new(1 << 20, 64 << 10)), None, None);
    let red: &[Box<str>] = &[Box::from("red")];
    let before = t.purges();
    assert!(!t.purged_since(before, b"http://h/a", red), "no purge yet");
    assert_eq!(t.purge_local(Purge::Url(b"http://h/b")), Ok(0));
    assert!(!t.purged_since(before, b"http://h/a", red), "another URL");
    assert_eq!(t.purge_local(Purge::Tag("red")), Ok(0));
    assert!(t.purged_since(before, b"http://h/a", red), "its tag");
    assert!(
        !t.purged_since(t.purges(), b"http://h/a", red),
        "stored after"
    );
    // One of its own test (Storage::purge) names everything.
    let since = t.purges();
    t.purge(&|_, _| false);
    assert!(t.purged_since(since, b"http://h/z", &[]));
    // Past what is remembered, every store is taken to be named.
    let since = t.purges();
    for _ in 0..=RECENT_PURGES {
        assert_eq!(t.purge_local(Purge::Url(b"http://h/b")), Ok(0));
    }
    assert!(t.purged_since(since, b"http://h/a", red));
}

/// An invalidation (`Storage::remove`) counts as a purge of the key and
/// its variants, so a put of an older response that was on its way to the
/// shared tier is removed again once it lands.
#[test]
fn a_removed_key_counts_as_purged_for_puts_on_their_way() {
    let t = Tiers::new(Arc::new(Memory::new(1 << 20, 64 << 10)), None, None);
    let since = t.purges();
    t.remove(b"http://h/a");
    assert!(t.purged_since(since, b"http://h/a", &[]));
    assert!(t.purged_since(since, b"http://h/a\x01accept-encoding=gzip", &[]));
    assert!(!t.purged_since(since, b"http://h/ab", &[]), "another URL");
}

/// A purge counts what was only staged for the shared tier apart, since
/// the shared tier's own count does not have it yet: 1 sent and 1 staged
/// is 2 removed, not the most of 1 and 1.
#[test]
fn staged_objects_count_with_the_shared_tiers() {
    let t = Tiers::new(Arc::new(Memory::new(1 << 20, 64 << 10)), None, None);
    t.stage(b"http://h/b", Some(object(10, &["red"])));
    assert!(t.put(b"http://h/c".to_vec(), object(10, &["red"])));
    let purged = t.purge_selected(&Selector::Tag("red".to_owned()));
    assert_eq!(purged, Purged { keys: 2, staged: 1 });
    assert!(!t.is_staged(b"http://h/b", &Some(object(10, &[]))));
    assert_eq!(
        purged.with_shared(1),
        2,
        "c from memory and Redis, b staged"
    );
    assert_eq!(purged.with_shared(0), 2);
    assert_eq!(purged.with_shared(3), 4, "two more only Redis had");
}
