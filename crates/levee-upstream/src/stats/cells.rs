//! Counters with a cell per worker thread. A worker adds to its own cell
//! with a plain load and store: no locked read-modify-write, and no cache
//! line that another core writes too (each cell is aligned to its own).
//! Readers (`/metrics`, the dashboard, the control thread) sum the cells.
//! Threads that are not workers, and workers past the cells made (more
//! workers than cores), share one last cell with atomic adds.
//!
//! Why: with one atomic per counter, every proxied request made each
//! worker take the cache lines of its server's, route's and listener's
//! counters from the other core (bench/README.md, issue 21).

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Relaxed};

/// Cells owned by one worker each, at most (one bit each in [`TAKEN`]).
const MAX_OWNED: usize = 64;

/// Which owned cells a live thread holds.
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// This thread's cell, given back when the thread ends.
struct Claim(Cell<usize>);

/// No cell of its own: the shared one.
const SHARED: usize = usize::MAX;

impl Drop for Claim {
    fn drop(&mut self) {
        let slot = self.0.replace(SHARED);
        // The thread's last adds (other destructors) go to the shared cell.
        OWN.set(SHARED);
        if slot < MAX_OWNED {
            TAKEN.fetch_and(!(1u64 << slot), AcqRel);
        }
    }
}

thread_local! {
    /// The claim, given back by its destructor.
    static SLOT: Claim = const { Claim(Cell::new(SHARED)) };
    /// The same slot where every add reads it: no destructor, so reading
    /// it is one load, valid even while the thread's destructors run.
    static OWN: Cell<usize> = const { Cell::new(SHARED) };
}

/// How many workers get a cell of their own: one per core, fixed for the
/// process before any counter is made.
fn owned() -> usize {
    static OWNED: OnceLock<usize> = OnceLock::new();
    *OWNED.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_OWNED)
    })
}

/// Gives the calling thread a cell of its own if one is free: its adds go
/// there from now on, until it ends (levee-server's worker threads call it
/// first thing). A slot is never held by two live threads, so a plain
/// store cannot lose another thread's add.
pub fn enter_worker() {
    let _ = SLOT.try_with(|claim| {
        if claim.0.get() != SHARED {
            return;
        }
        let mut taken = TAKEN.load(Relaxed);
        loop {
            let free = (!taken).trailing_zeros() as usize;
            if free >= owned() {
                return;
            }
            match TAKEN.compare_exchange_weak(taken, taken | (1u64 << free), AcqRel, Relaxed) {
                Ok(_) => {
                    claim.0.set(free);
                    OWN.set(free);
                    return;
                }
                Err(now) => taken = now,
            }
        }
    });
}

/// One count in a cell.
#[derive(Debug, Default)]
pub struct Count(AtomicU64);

impl Count {
    /// The count as this cell has it.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Adds `n` (wrapping: a gauge adds its decrements as large numbers);
    /// `own` says the cell is the calling thread's alone.
    pub fn add(&self, n: u64, own: bool) {
        if own {
            // Only this thread writes the cell: no locked read-modify-write.
            self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            self.0.fetch_add(n, Relaxed);
        }
    }
}

/// A cell aligned to a cache line of its own (two, on machines that fetch
/// lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A cell of `T` per worker, and one shared.
#[derive(Debug)]
pub struct PerWorker<T> {
    /// `owned()` cells, then the shared one.
    cells: Box<[Padded<T>]>,
}

impl<T: Default> Default for PerWorker<T> {
    fn default() -> Self {
        PerWorker {
            cells: (0..=owned()).map(|_| Padded(T::default())).collect(),
        }
    }
}

/// The calling thread's cell of a [`PerWorker`], and whether it is its own.
#[derive(Debug, Clone, Copy)]
pub struct Local<'a, T> {
    pub cell: &'a T,
    pub own: bool,
}

impl<T> PerWorker<T> {
    /// The calling thread's cell.
    pub fn local(&self) -> Local<'_, T> {
        let slot = OWN.get();
        let shared = self.cells.len() - 1;
        let own = slot < shared;
        let Padded(cell) = &self.cells[if own { slot } else { shared }];
        Local { cell, own }
    }

    /// Adds `n` to the counter `count` picks from the calling thread's cell.
    pub fn add(&self, count: impl Fn(&T) -> &Count, n: u64) {
        let l = self.local();
        count(l.cell).add(n, l.own);
    }

    /// Every cell, the shared one last.
    pub fn cells(&self) -> impl Iterator<Item = &T> {
        self.cells.iter().map(|Padded(cell)| cell)
    }

    /// The sum over every cell of what `count` picks from it.
    pub fn sum(&self, count: impl Fn(&T) -> &Count) -> u64 {
        self.cells
            .iter()
            .fold(0u64, |total, c| total.wrapping_add(count(&c.0).get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Cell2 {
        hits: Count,
    }

    #[test]
    fn workers_add_to_their_own_cells_and_reads_sum_them() {
        let counts = std::sync::Arc::new(PerWorker::<Cell2>::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    enter_worker();
                    for _ in 0..10_000 {
                        let local = counts.local();
                        local.cell.hits.add(1, local.own);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a worker");
        }
        // Not a worker: the shared cell.
        let local = counts.local();
        assert!(!local.own);
        local.cell.hits.add(5, local.own);
        // Whatever the cores, no add is lost: owned cells have one writer.
        assert_eq!(counts.sum(|c| &c.hits), 40_005);
        // The workers ended and gave their cells back (no other test
        // claims any).
        assert_eq!(TAKEN.load(Relaxed), 0);
    }

    #[test]
    fn a_gauge_wraps_back() {
        let counts = PerWorker::<Cell2>::default();
        let local = counts.local();
        local.cell.hits.add(3, local.own);
        local.cell.hits.add(-2i64 as u64, local.own);
        assert_eq!(counts.sum(|c| &c.hits) as i64, 1);
    }
}
