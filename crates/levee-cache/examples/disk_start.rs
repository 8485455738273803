//! How long the disk tier takes to be ready again after a restart, with
//! many objects on disk: fills a tier with `N` small objects (real files
//! and journal, as levee writes them), drops it, opens the directory again
//! and times the journal's replay until lookups are served, then checks a
//! sample of objects. bench/cache_tiers.py runs it; the directory is under
//! /tmp and removed at the end.
//!
//! Usage: cargo run --release -p levee-cache --example disk_start -- [N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use levee_cache::body::Body;
use levee_cache::disk::{Disk, Settings};
use levee_cache::freshness::Stored;
use levee_cache::policy::Head;
use levee_cache::store::{Entry, Object};

fn object(i: u64) -> Entry {
    let head = Head::plain(
        [
            (&b"Content-Type"[..], &b"text/plain"[..]),
            (b"Cache-Control", b"max-age=3600"),
        ]
        .into_iter(),
    );
    Entry::Object(Arc::new(Object {
        status: 200,
        visible: head.visible,
        head: head.lines,
        body: Body::from(Bytes::from(format!("object {i}\n").into_bytes())),
        meta: Stored {
            status: 200,
            ..Stored::default()
        },
        tags: Box::default(),
    }))
}

fn ready(disk: &Disk) -> Duration {
    let started = Instant::now();
    while !disk.is_ready() {
        std::thread::sleep(Duration::from_millis(1));
    }
    started.elapsed()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("levee-disk-start-{}", std::process::id()));
    let settings = Settings {
        path: dir.clone(),
        max_size: 64 << 30,
        max_object_size: 1 << 20,
        fsync: false,
    };
    {
        let disk = Disk::open(settings.clone());
        ready(&disk);
        let started = Instant::now();
        for i in 0..n {
            let key = format!("http://bench.example/objects/{i}");
            assert!(disk.put_now(key.as_bytes(), &object(i)), "write {i}");
        }
        println!(
            "filled {n} objects in {:.1} s ({} bytes on disk)",
            started.elapsed().as_secs_f64(),
            disk.bytes()
        );
    }
    // Let the old tier's thread let go of the directory's lock.
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let disk = Disk::open(settings);
    let took = ready(&disk);
    let opened = started.elapsed();
    let stats = disk.stats();
    println!(
        "restart: ready after {:.3} s (journal replay {} ms, {} entries)",
        opened.as_secs_f64(),
        stats.load_ms.load(std::sync::atomic::Ordering::Relaxed),
        stats.loaded.load(std::sync::atomic::Ordering::Relaxed),
    );
    let _ = took;
    let mut found = 0;
    for i in (0..n).step_by((n / 1000).max(1) as usize) {
        let key = format!("http://bench.example/objects/{i}");
        if let Some(Entry::Object(o)) = disk.get(key.as_bytes())
            && o.body
                .to_vec()
                .is_ok_and(|b| b == format!("object {i}\n").as_bytes())
        {
            found += 1;
        }
    }
    println!(
        "sample: {found} of {} objects served after the restart",
        n.div_ceil((n / 1000).max(1))
    );
    drop(disk);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_dir_all(&dir).expect("remove the bench directory");
}
