use super::*;

fn sizes(body: &Body) -> Vec<usize> {
    body.pieces().iter().map(Bytes::len).collect()
}

fn copy_all(len: usize, expected: Option<u64>, chunk: usize) -> Body {
    let budget = InFlight::new(1 << 30);
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut copy = BodyCopy::new(1 << 20, expected, &budget);
    for part in data.chunks(chunk) {
        copy.push(part);
    }
    let body = copy.finish().expect("within the cap");
    assert_eq!(body.to_vec().expect("in memory"), data);
    assert_eq!(budget.used(), 0, "the reservation is released");
    body
}

#[test]
fn known_length_pieces_are_filled_in_place() {
    assert_eq!(sizes(&copy_all(10240, Some(10240), 4000)), [8192, 2048]);
    assert_eq!(
        sizes(&copy_all(70_000, Some(70_000), 16384)),
        [SEGMENT, SEGMENT, 4096, 368]
    );
    assert_eq!(sizes(&copy_all(100, Some(100), 7)), [100]);
    assert!(copy_all(0, Some(0), 1).is_empty());
}

#[test]
fn unknown_or_wrong_length_is_cut_exact_at_the_end() {
    assert_eq!(sizes(&copy_all(10240, None, 1000)), [8192, 2048]);
    assert_eq!(
        sizes(&copy_all(40_000, None, 999)),
        [SEGMENT, 4096, 2048, 1024, 64]
    );
    // More than announced: the copy still holds exactly what passed.
    assert_eq!(sizes(&copy_all(3000, Some(1000), 500)), [1000, 1024, 976]);
}

#[test]
fn every_piece_is_exactly_its_allocation() {
    let budget = InFlight::new(1 << 30);
    let mut copy = BodyCopy::new(1 << 20, Some(5000), &budget);
    copy.push(&[7; 5000]);
    let body = copy.finish().expect("within the cap");
    let held: u64 = body.pieces().iter().map(|p| p.len() as u64).sum();
    assert_eq!(held, 5000);
    assert_eq!(sizes(&body), [4096, 904]);
    let handles = 2 * std::mem::size_of::<Bytes>() as u64;
    assert!(body.weight() > 5000 + handles);
    assert!(body.weight() < 5000 + handles + 256);
}

#[test]
fn past_the_cap_the_copy_is_dropped() {
    let budget = InFlight::new(1 << 30);
    let mut copy = BodyCopy::new(100, None, &budget);
    copy.push(&[1; 60]);
    copy.push(&[1; 60]);
    assert!(copy.overflowed());
    assert!(!copy.starved(), "too large, not short of budget");
    assert_eq!(budget.used(), 0);
    assert!(copy.finish().is_none());
}

#[test]
fn copies_in_flight_stay_within_the_budget() {
    let budget = InFlight::new(3 * SEGMENT as u64);
    let mut a = BodyCopy::new(1 << 20, None, &budget);
    let mut b = BodyCopy::new(1 << 20, None, &budget);
    a.push(&vec![0; 2 * SEGMENT]);
    assert_eq!(budget.used(), 2 * SEGMENT as u64);
    b.push(&vec![0; 2 * SEGMENT]);
    assert!(b.overflowed(), "the second copy does not fit");
    assert!(b.starved());
    assert!(!a.overflowed());
    assert_eq!(budget.used(), 2 * SEGMENT as u64, "b gave its part back");
    drop(a);
    assert_eq!(budget.used(), 0);
    let mut c = BodyCopy::new(1 << 20, None, &budget);
    c.push(&vec![0; 3 * SEGMENT]);
    assert!(c.finish().is_some(), "room again once the others ended");
    assert_eq!(budget.used(), 0);
}

#[test]
fn ranges_cross_pieces() {
    let body = copy_all(10240, Some(10240), 10240);
    let all = body.to_vec().expect("in memory");
    let bytes = |slices: Vec<Slice>| -> Vec<u8> {
        slices
            .into_iter()
            .flat_map(|s| match s {
                Slice::Bytes(b) => b.to_vec(),
                Slice::File { .. } => panic!("a memory body"),
            })
            .collect()
    };
    for (start, len) in [(0, 10), (8190, 4), (8192, 2048), (10000, 1000), (20000, 5)] {
        let got = bytes(body.slices(start, len));
        let s = (start as usize).min(all.len());
        let e = (start + len).min(all.len() as u64) as usize;
        assert_eq!(got, all[s..e], "{start}+{len}");
    }
    assert_eq!(body.slices(8190, 4).len(), 2);
}

#[test]
fn a_file_body_is_one_slice_of_its_region() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("levee-body-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("f");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(b"headBODYBYTES"))
        .expect("write");
    let file = std::fs::File::open(&path).expect("open");
    let region = Arc::new(FileRegion {
        file,
        offset: 4,
        len: 9,
    });
    let body = Body::File(region);
    assert_eq!(body.len(), 9);
    assert!(body.pieces().is_empty());
    assert_eq!(body.to_vec().expect("reads"), b"BODYBYTES");
    match body.slices(2, 100).as_slice() {
        [Slice::File { start, len, .. }] => assert_eq!((*start, *len), (6, 7)),
        other => panic!("{other:?}"),
    }
    assert!(body.slices(9, 1).is_empty());
    assert!(body.weight() < 200, "an open file, not its bytes");
    std::fs::remove_dir_all(&dir).expect("clean");
}
