//! The mirror listing parsers (rsync `--list-only`, HTTP directory
//! listings) never panic, never return a path that climbs out (`..`) or is
//! empty, and give the same entries whatever the split of the input.
#![no_main]

use levee_mirror::listing::{Entry, http, rsync};
use libfuzzer_sys::fuzz_target;

fn run<P: Default>(
    data: &[u8],
    cut: usize,
    push: fn(&mut P, &[u8], &mut Vec<Entry>),
    finish: fn(&mut P, &mut Vec<Entry>),
) -> (Vec<Entry>, Vec<Entry>) {
    let mut whole = Vec::new();
    let mut p = P::default();
    push(&mut p, data, &mut whole);
    finish(&mut p, &mut whole);
    let mut split = Vec::new();
    let mut p = P::default();
    push(&mut p, &data[..cut], &mut split);
    push(&mut p, &data[cut..], &mut split);
    finish(&mut p, &mut split);
    (whole, split)
}

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    for (whole, split) in [
        run(data, cut, rsync::Parser::push, rsync::Parser::finish),
        run(data, cut, http::Parser::push, http::Parser::finish),
    ] {
        assert_eq!(whole, split);
        for e in &whole {
            assert!(!e.path.is_empty());
            assert!(!e.path.split(|&b| b == b'/').any(|p| p == b".." || p.is_empty()));
        }
    }
});
