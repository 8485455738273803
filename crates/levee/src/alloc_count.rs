//! Allocations per request, for benchmarks only (`--features alloc-count`,
//! never in the default build; bench/allocs.py reads it): the global
//! allocator is mimalloc behind counters, and a thread prints the running
//! totals to stderr whenever the listeners' request count has moved:
//!
//! ```text
//! alloc-count: requests 22000 allocs 176123 reallocs 2001 frees 176090
//! ```
//!
//! A benchmark takes two such lines around its measured requests and
//! divides the differences. The counters are process-wide relaxed atomics:
//! every allocation of every thread pays a shared add, so this build is
//! for counting, not for timing.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// mimalloc, counting what passes through it.
pub(crate) struct Counting(pub(crate) mimalloc::MiMalloc);

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);

/// (allocations, reallocations, frees) so far, all threads.
pub(crate) fn counts() -> (u64, u64, u64) {
    (
        ALLOCS.load(Relaxed),
        REALLOCS.load(Relaxed),
        FREES.load(Relaxed),
    )
}

// SAFETY: every method hands its arguments unchanged to mimalloc's own
// `GlobalAlloc`, whose contract is the same; the counters are atomics that
// neither allocate nor touch the memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's layout, passed on (see the impl).
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's layout, passed on (see the impl).
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Relaxed);
        // SAFETY: the caller's block and layout, passed on (see the impl).
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's block, layout and size, passed on (see the impl).
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

/// Starts the thread that prints the totals whenever requests were served.
pub(crate) fn report() {
    let spawned = std::thread::Builder::new()
        .name("alloc-count".into())
        .spawn(|| {
            let mut last = u64::MAX;
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let requests: u64 = levee_http::listener::stats::all_listeners()
                    .iter()
                    .map(|(_, s)| s.requests())
                    .sum();
                if requests == last {
                    continue;
                }
                last = requests;
                let (allocs, reallocs, frees) = counts();
                eprintln!(
                    "alloc-count: requests {requests} allocs {allocs} reallocs {reallocs} frees {frees}"
                );
            }
        });
    if let Err(e) = spawned {
        eprintln!("alloc-count: no reporting thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_box_is_counted_both_ways() {
        let (a0, _, f0) = super::counts();
        let b = std::hint::black_box(Box::new([7u8; 64]));
        let (a1, _, _) = super::counts();
        drop(b);
        let (_, _, f1) = super::counts();
        // Other test threads may allocate too: at least ours is counted.
        assert!(a1 > a0, "allocation not counted");
        assert!(f1 > f0, "free not counted");
    }
}
