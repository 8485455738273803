//! Small pieces the sharded tables share: a hasher for keys that are
//! already hashes, and locking that survives a poisoned mutex.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

/// Passes a `u64` key through: keys are SipHash outputs with a per-process
/// random key, so hashing them again buys nothing.
#[derive(Debug, Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type U64Map<V> = std::collections::HashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// A table's state is plain counters, valid whatever a panicking holder did.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
