use std::fs::OpenOptions;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::body::Body;
use crate::freshness::Stored;
use crate::policy::Head;
use journal::Segments;

/// A directory of its own under the system's temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("levee-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(dir: &Dir, max_size: u64) -> Settings {
    Settings {
        path: dir.0.clone(),
        max_size,
        max_object_size: max_size / 2,
        fsync: false,
    }
}

fn open(s: Settings) -> Disk {
    let disk = Disk::open(s);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !disk.is_ready() {
        assert!(Instant::now() < deadline, "the disk tier never got ready");
        assert!(
            !matches!(disk.health(), Health::Unusable(_)),
            "{:?}",
            disk.health()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    disk
}

fn object(body: &[u8], tags: &[&str]) -> Entry {
    let head = Head::plain([(&b"Content-Type"[..], &b"text/plain"[..])].into_iter());
    Entry::Object(Arc::new(Object {
        status: 200,
        visible: head.visible,
        head: head.lines,
        body: Body::from(Bytes::copy_from_slice(body)),
        meta: Stored {
            status: 200,
            response_time: 77,
            ..Stored::default()
        },
        tags: tags.iter().map(|t| Box::from(*t)).collect(),
    }))
}

fn body_of(disk: &Disk, key: &[u8]) -> Option<Vec<u8>> {
    match disk.get(key)? {
        Entry::Object(o) => {
            assert!(matches!(o.body, Body::File(_)), "served from its file");
            Some(o.body.to_vec().expect("reads"))
        }
        Entry::Vary(_) => None,
    }
}

fn files(dir: &Dir) -> usize {
    (0..=0xffu64)
        .map(|n| {
            std::fs::read_dir(dir.0.join("objects").join(format!("{n:02x}")))
                .map_or(0, |d| d.count())
        })
        .sum()
}

#[test]
fn objects_are_served_from_their_files_and_survive_a_restart() {
    let dir = Dir::new("restart");
    {
        let disk = open(settings(&dir, 64 << 20));
        assert!(disk.put_now(b"http://h/a", &object(b"alpha", &["red"])));
        assert!(disk.put_later(b"http://h/b", &object(&[7u8; 100_000], &[])));
        let names: Arc<[String]> = vec!["accept-encoding".to_owned()].into();
        assert!(disk.put_now(b"http://h/v", &Entry::Vary(names)));
        assert!(disk.flush(Duration::from_secs(10)));
        assert_eq!(
            body_of(&disk, b"http://h/a").as_deref(),
            Some(&b"alpha"[..])
        );
        match disk.get(b"http://h/a") {
            Some(Entry::Object(o)) => {
                assert_eq!(o.meta.response_time, 77);
                assert_eq!(o.field("content-type"), Some(&b"text/plain"[..]));
                assert_eq!(&*o.tags, &[Box::from("red")]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(disk.len(), 3);
    }
    // A new process: the journal is all it reads to know what is stored.
    let disk = open(settings(&dir, 64 << 20));
    assert_eq!(disk.stats().loaded.load(Ordering::Relaxed), 3);
    assert_eq!(
        body_of(&disk, b"http://h/a").as_deref(),
        Some(&b"alpha"[..])
    );
    assert_eq!(
        body_of(&disk, b"http://h/b").map(|b| b.len()),
        Some(100_000)
    );
    assert!(matches!(disk.get(b"http://h/v"), Some(Entry::Vary(n)) if n[0] == "accept-encoding"));
    assert!(disk.get(b"http://h/none").is_none());
}

#[test]
fn a_crash_mid_write_never_serves_a_torn_object() {
    let dir = Dir::new("torn");
    {
        let disk = open(settings(&dir, 64 << 20));
        assert!(disk.put_now(b"http://h/ok", &object(b"whole", &[])));
        assert!(disk.put_now(b"http://h/cut", &object(b"to be cut", &[])));
        assert!(disk.flush(Duration::from_secs(10)));
    }
    // What a crash leaves: a temporary file, an object the journal never
    // recorded, a record torn mid-append, and an object cut short.
    std::fs::write(dir.0.join("tmp").join("00000000000000ff"), b"half").expect("tmp");
    std::fs::write(dir.0.join("objects/fe/00000000000000fe"), b"LVC\x01junk").expect("orphan");
    let segments = Segments::new(&dir.0).numbers().expect("segments");
    let last = dir
        .0
        .join(format!("journal.{}", segments.last().expect("one")));
    let mut journal = OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("journal");
    std::io::Write::write_all(&mut journal, &[200, 0, 0, 0, 1, 2, 3]).expect("torn record");
    let cut = {
        let disk = open(settings(&dir, 64 << 20));
        let slot = disk
            .inner
            .index
            .peek(&b"http://h/cut"[..])
            .expect("recorded");
        disk.inner.file(slot.id)
    };
    let len = std::fs::metadata(&cut).expect("file").len();
    OpenOptions::new()
        .write(true)
        .open(&cut)
        .and_then(|f| f.set_len(len - 3))
        .expect("cut");
    let disk = open(settings(&dir, 64 << 20));
    // The start before this one swept the unrecorded file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.0.join("objects/fe/00000000000000fe").exists() {
        assert!(Instant::now() < deadline, "the orphan is swept");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        std::fs::read_dir(dir.0.join("tmp")).expect("tmp").count(),
        0
    );
    assert_eq!(
        body_of(&disk, b"http://h/ok").as_deref(),
        Some(&b"whole"[..])
    );
    assert!(disk.get(b"http://h/cut").is_none(), "a cut file is a miss");
    assert_eq!(disk.stats().corrupt.load(Ordering::Relaxed), 1);
    assert!(disk.get(b"http://h/cut").is_none(), "and is forgotten");
}

#[test]
fn eviction_keeps_the_files_within_max_size() {
    let dir = Dir::new("evict");
    let disk = open(settings(&dir, 1 << 20));
    for i in 0..100 {
        assert!(disk.put_now(
            format!("http://h/{i}").as_bytes(),
            &object(&[1u8; 30_000], &[])
        ));
    }
    assert!(disk.bytes() <= 1 << 20, "{} bytes", disk.bytes());
    assert!(disk.stats().evictions.load(Ordering::Relaxed) > 50);
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(&dir) != disk.len() {
        assert!(
            Instant::now() < deadline,
            "{} files for {} entries",
            files(&dir),
            disk.len()
        );
        disk.flush(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(disk.get(b"http://h/99").is_some(), "the newest stays");
}

#[test]
fn purges_remove_files_and_cancel_queued_writes() {
    let dir = Dir::new("purge");
    let disk = open(settings(&dir, 64 << 20));
    assert!(disk.put_now(b"http://h/a", &object(b"a", &["red"])));
    assert!(disk.put_now(b"http://h/b", &object(b"b", &["blue"])));
    assert_eq!(disk.purge(&|_, tags| tags.iter().any(|t| &**t == "red")), 1);
    assert!(disk.get(b"http://h/a").is_none());
    disk.remove(b"http://h/b");
    assert!(disk.get(b"http://h/b").is_none());
    // A write queued before a purge is not written after it.
    {
        let mut s = lock(&disk.inner.state);
        s.queue.push_back(Job::Write {
            key: b"http://h/q".to_vec(),
            entry: object(b"q", &[]),
        });
        s.stop = false;
        drop(s);
        disk.remove(b"http://h/q");
    }
    assert!(disk.flush(Duration::from_secs(10)));
    assert!(disk.get(b"http://h/q").is_none());
    assert!(disk.flush(Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(&dir) != 0 {
        assert!(Instant::now() < deadline, "{} files left", files(&dir));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn streamed_bodies_are_committed_whole_or_not_at_all() {
    let dir = Dir::new("copy");
    let disk = open(settings(&dir, 8 << 20));
    let Entry::Object(head) = object(b"", &[]) else {
        unreachable!()
    };
    let mut copy = disk.copy(b"http://h/big", &head, None).expect("writable");
    for _ in 0..100 {
        copy.push(&[5u8; 10_000]);
    }
    assert!(
        disk.get(b"http://h/big").is_none(),
        "not before it is complete"
    );
    assert!(copy.finish());
    assert_eq!(
        body_of(&disk, b"http://h/big").map(|b| b.len()),
        Some(1_000_000)
    );
    // Past max_object_size (4 MB here) the copy stops and leaves nothing.
    let mut copy = disk.copy(b"http://h/huge", &head, None).expect("writable");
    for _ in 0..500 {
        copy.push(&[5u8; 10_000]);
    }
    assert!(copy.overflowed());
    assert!(!copy.finish());
    assert!(disk.get(b"http://h/huge").is_none());
    // An unfinished copy (the upstream failed) leaves no file either.
    let copy = disk
        .copy(b"http://h/gone", &head, Some(10))
        .expect("writable");
    drop(copy);
    assert_eq!(
        std::fs::read_dir(dir.0.join("tmp")).expect("tmp").count(),
        0
    );
    assert!(
        disk.copy(b"http://h/x", &head, Some(5 << 20)).is_none(),
        "over the cap up front"
    );
}

#[test]
fn a_failing_disk_turns_writes_off_and_never_fails_a_read() {
    let dir = Dir::new("fail");
    let disk = open(settings(&dir, 8 << 20));
    assert!(disk.put_now(b"http://h/a", &object(b"a", &[])));
    // The file system stops taking files (as ENOSPC or EIO would).
    std::fs::remove_dir_all(dir.0.join("tmp")).expect("rm tmp");
    assert!(!disk.put_now(b"http://h/b", &object(b"b", &[])));
    assert!(
        matches!(disk.health(), Health::Degraded(_)),
        "{:?}",
        disk.health()
    );
    assert_eq!(disk.stats().errors.load(Ordering::Relaxed), 1);
    // Writes stay off for a while: no second error, no second log line.
    assert!(!disk.put_now(b"http://h/c", &object(b"c", &[])));
    assert_eq!(disk.stats().errors.load(Ordering::Relaxed), 1);
    assert!(disk.stats().skipped.load(Ordering::Relaxed) >= 1);
    assert_eq!(body_of(&disk, b"http://h/a").as_deref(), Some(&b"a"[..]));
}

#[test]
fn one_levee_per_directory() {
    let dir = Dir::new("lock");
    let first = open(settings(&dir, 8 << 20));
    let second = Disk::open(settings(&dir, 8 << 20));
    assert!(
        matches!(second.health(), Health::Unusable(ref why) if why.contains("another levee")),
        "{:?}",
        second.health()
    );
    assert!(!second.put_now(b"k", &object(b"x", &[])));
    assert!(first.put_now(b"k", &object(b"x", &[])));
}
