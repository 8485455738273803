//! Server selection.
//!
//! Smooth weighted round robin (as nginx does it): every pick adds each
//! server's weight to its running score, takes the highest score, and
//! subtracts the total weight from the winner. Over one cycle of
//! `sum(weights)` picks each server is chosen exactly `weight` times, and
//! heavy servers are interleaved rather than picked in a burst.

use std::sync::Mutex;

#[derive(Debug)]
pub struct SmoothWeighted {
    weights: Vec<i64>,
    total: i64,
    current: Mutex<Vec<i64>>,
}

impl SmoothWeighted {
    pub fn new(weights: &[u32]) -> SmoothWeighted {
        let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w.max(1))).collect();
        SmoothWeighted {
            total: weights.iter().sum(),
            current: Mutex::new(vec![0; weights.len()]),
            weights,
        }
    }

    /// The index of the next server. The lock is held for a few additions.
    pub fn next(&self) -> usize {
        let mut current = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut best = 0;
        for (c, w) in current.iter_mut().zip(&self.weights) {
            *c += w;
        }
        for i in 1..current.len() {
            if current[i] > current[best] {
                best = i;
            }
        }
        if let Some(c) = current.get_mut(best) {
            *c -= self.total;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn interleaves_heavy_servers() {
        let b = SmoothWeighted::new(&[5, 1, 1]);
        let picks: Vec<usize> = (0..7).map(|_| b.next()).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    proptest! {
        #[test]
        fn honours_weights_exactly_over_a_cycle(weights in proptest::collection::vec(1u32..20, 1..8)) {
            let b = SmoothWeighted::new(&weights);
            let total: u32 = weights.iter().sum();
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..total {
                counts[b.next()] += 1;
            }
            prop_assert_eq!(counts, weights);
        }
    }
}
