//! Measures the redirector's state for a generated tree: N files (default
//! 1,000,000) with paths shaped like a distribution's, and M mirrors
//! (default 100) each holding a random 50-100 % of them. Prints the heap
//! bytes the structures account for and the process's resident memory
//! before and after (bench/mirrors.py runs it; docs/mirrors.md quotes it).
//!
//! `cargo run --release -p levee-mirror --example state_size -- [FILES] [MIRRORS]`

use std::sync::Arc;

use levee_mirror::bits::Bits;
use levee_mirror::choose::Rng;
use levee_mirror::glob::Patterns;
use levee_mirror::mirror::Holdings;
use levee_mirror::tree::{FileMeta, Tree};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mirrors: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let before = rss_kib();
    let path = |i: usize| {
        format!(
            "pub/dists/release-{}/main/binary-{}/pool/p{:03}/package-{i:07}_1.{}-{}_amd64.deb",
            i % 17,
            ["amd64", "arm64", "i386", "riscv64"][i % 4],
            i % 997,
            i % 13,
            i % 7
        )
    };
    let average =
        (0..1000.min(files)).map(|i| path(i).len()).sum::<usize>() / 1000.min(files).max(1);
    let tree = Tree::from_list(
        "/srv".into(),
        (0..files).map(|i| {
            (
                path(i),
                FileMeta {
                    size: 4096 + i as u64,
                    mtime: 1_700_000_000,
                },
            )
        }),
        [],
        &Patterns::default(),
    );
    let mut rng = Rng::new(7);
    let holdings: Vec<Arc<Holdings>> = (0..mirrors)
        .map(|_| {
            let has = Bits::new(tree.len());
            let share = 50 + rng.below(51);
            for i in 0..tree.len() {
                if rng.below(100) < share {
                    has.set(i);
                }
            }
            Arc::new(Holdings {
                generation: tree.generation,
                has,
                stale: 0,
                stale_examples: Vec::new(),
                scanned_at: None,
                probe: None,
            })
        })
        .collect();
    // Every file hashed: the digests are part of the state.
    for id in 0..tree.len() as u32 {
        tree.set_digest(id, [id as u8; 32]);
    }
    let tree_bytes = tree.heap_bytes();
    let holding_bytes: usize = holdings.iter().map(|h| h.has.heap_bytes()).sum();
    let after = rss_kib();
    println!("files {files} mirrors {mirrors} average_path_bytes {average}");
    println!("tree_heap_bytes {tree_bytes}");
    println!("holdings_heap_bytes {holding_bytes}");
    println!(
        "total_heap_mib {:.1}",
        (tree_bytes + holding_bytes) as f64 / (1 << 20) as f64
    );
    println!(
        "rss_growth_mib {:.1}",
        after.saturating_sub(before) as f64 / 1024.0
    );
    // Keep everything alive until measured.
    assert!(holdings.len() == mirrors && !tree.is_empty() || files == 0);
}
