use super::*;

fn partial(field: &str, size: u64) -> Vec<(u64, u64)> {
    match decide(field.as_bytes(), size) {
        RangeDecision::Partial(ranges) => ranges.iter().map(|r| (r.start, r.len)).collect(),
        other => panic!("{field:?} on {size} bytes: expected 206, got {other:?}"),
    }
}

#[test]
fn single_ranges() {
    assert_eq!(partial("bytes=0-0", 10), [(0, 1)]);
    assert_eq!(partial("bytes=2-5", 10), [(2, 4)]);
    assert_eq!(partial("bytes=2-", 10), [(2, 8)]);
    assert_eq!(partial("bytes=0-", 10), [(0, 10)]);
    // A last-pos past the end is clamped.
    assert_eq!(partial("bytes=8-100", 10), [(8, 2)]);
    assert_eq!(partial("bytes=8-99999999999999999999999999", 10), [(8, 2)]);
    assert_eq!(partial("BYTES=1-1", 10), [(1, 1)]);
    assert_eq!(partial(" bytes=1-2 ", 10), [(1, 2)]);
}

#[test]
fn suffix_ranges() {
    assert_eq!(partial("bytes=-3", 10), [(7, 3)]);
    assert_eq!(partial("bytes=-10", 10), [(0, 10)]);
    assert_eq!(partial("bytes=-500", 10), [(0, 10)]);
}

#[test]
fn multiple_ranges_keep_request_order() {
    assert_eq!(partial("bytes=0-1, 5-6", 10), [(0, 2), (5, 2)]);
    assert_eq!(partial("bytes=5-6,0-1", 10), [(5, 2), (0, 2)]);
    assert_eq!(partial("bytes=0-1,,-2", 10), [(0, 2), (8, 2)]);
    // Adjacent is not overlapping.
    assert_eq!(partial("bytes=0-1,2-3", 10), [(0, 2), (2, 2)]);
    // Unsatisfiable members are dropped when another one is satisfiable.
    assert_eq!(partial("bytes=0-1,50-60", 10), [(0, 2)]);
}

#[test]
fn unsatisfiable() {
    for (field, size) in [
        ("bytes=10-", 10),
        ("bytes=10-20", 10),
        ("bytes=99999999999999999999999-", 10),
        ("bytes=-0", 10),
        ("bytes=0-", 0),
        ("bytes=-5", 0),
        ("bytes=20-30,40-", 10),
    ] {
        assert_eq!(
            decide(field.as_bytes(), size),
            RangeDecision::Unsatisfiable,
            "{field}"
        );
    }
}

#[test]
fn invalid_syntax_serves_the_whole_file() {
    for field in [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=5-2",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes = 1-2",
        "bytes=1 -2",
        "items=0-1",
        "bytes=0x1-2",
        "bytes=--1",
    ] {
        assert_eq!(
            decide(field.as_bytes(), 10),
            RangeDecision::Full,
            "{field:?}"
        );
    }
}

#[test]
fn overlap_or_too_many_serves_the_whole_file() {
    assert_eq!(decide(b"bytes=0-5,3-8", 10), RangeDecision::Full);
    assert_eq!(decide(b"bytes=0-,0-", 10), RangeDecision::Full);
    assert_eq!(decide(b"bytes=-5,5-5", 10), RangeDecision::Full);
    assert_eq!(partial("bytes=-5,4-4", 10), [(5, 5), (4, 1)]);
    let sixteen: Vec<String> = (0..16).map(|i| format!("{i}-{i}")).collect();
    assert_eq!(
        partial(&format!("bytes={}", sixteen.join(",")), 100).len(),
        16
    );
    let seventeen: Vec<String> = (0..17).map(|i| format!("{i}-{i}")).collect();
    let field = format!("bytes={}", seventeen.join(","));
    assert_eq!(decide(field.as_bytes(), 100), RangeDecision::Full);
}

#[test]
fn content_range_formatting() {
    let r = ByteRange { start: 7, len: 3 };
    assert_eq!(r.last(), 9);
    assert_eq!(r.content_range(10), "bytes 7-9/10");
}
