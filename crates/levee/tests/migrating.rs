//! docs/migrating-from-nginx.md stays true: every TOML block in it passes
//! `levee check` (as a file: its paths and addresses are an imagined
//! machine's), and its table maps at least the 40 directives issue 18 asks
//! for.

mod support;

use std::fs;
use std::path::PathBuf;

use support::{TempDir, levee_cmd};

fn page() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/migrating-from-nginx.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bodies of the page's ```` ```toml ```` blocks.
fn toml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "a ```toml block is not closed");
    blocks
}

#[test]
fn every_toml_block_passes_check() {
    let blocks = toml_blocks(&page());
    assert!(!blocks.is_empty(), "the page has no ```toml block");
    let tmp = TempDir::new("migrating");
    for (i, block) in blocks.iter().enumerate() {
        let file = tmp.join(&format!("block{i}.toml"));
        fs::write(&file, block).expect("write the block");
        let shown = file.display().to_string();
        let out = levee_cmd(&["check", "--file-only", "-c", &shown]);
        assert!(
            out.status.success(),
            "block {i} of docs/migrating-from-nginx.md fails the check:\n{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_table_maps_at_least_forty_directives() {
    let text = page();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.strip_prefix("| ")
                .and_then(|rest| rest.split(' ').next())
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect();
    assert!(rows.len() >= 40, "only {} directives mapped", rows.len());
    // A row either names levee's equivalent or says plainly there is none.
    for row in rows {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(cells.len() >= 4, "a row without its columns: {row}");
        assert!(
            !cells[2].trim().is_empty(),
            "a row without levee's side: {row}"
        );
    }
}
