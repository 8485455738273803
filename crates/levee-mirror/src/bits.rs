//! A fixed-size set of file ids, one bit each, whose bits can be cleared
//! while requests read it: a verification that finds a bad copy takes that
//! file off the mirror at once, without copying the set.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Bits {
    words: Box<[AtomicU64]>,
}

impl Bits {
    /// `len` bits, all clear.
    pub fn new(len: usize) -> Bits {
        Bits {
            words: (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
    }

    pub fn set(&self, i: usize) {
        if let Some(w) = self.words.get(i / 64) {
            w.fetch_or(1 << (i % 64), Ordering::Relaxed);
        }
    }

    pub fn clear(&self, i: usize) {
        if let Some(w) = self.words.get(i / 64) {
            w.fetch_and(!(1 << (i % 64)), Ordering::Relaxed);
        }
    }

    /// How many bits are set.
    pub fn count(&self) -> usize {
        self.words
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }

    /// The set bits, in order.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(n, w)| {
            let mut word = w.load(Ordering::Relaxed);
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(n * 64 + bit)
            })
        })
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn set_get_clear_count() {
        let b = Bits::new(130);
        for i in [0, 63, 64, 129] {
            b.set(i);
        }
        b.set(500); // out of range: ignored
        assert!(b.get(63) && b.get(64) && !b.get(65) && !b.get(500));
        assert_eq!(b.count(), 4);
        b.clear(63);
        assert_eq!(b.ones().collect::<Vec<_>>(), [0, 64, 129]);
    }
}
