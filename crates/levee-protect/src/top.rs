//! The most-refused keys of a rate-limit rule, by name (a promotion code, a
//! client network), for the dashboard and `/metrics`.
//!
//! The rule's table holds only keys' hashes, so the readable form of a key
//! is recorded when a request is refused, never when one is admitted: a
//! refused request already took the rule's shard lock, and this adds a
//! `try_lock` (skipped when another worker holds it, so the figures are a
//! sample under contention) and, for a key not yet listed, one string.
//! At most [`SLOTS`] keys are kept; a new key takes the place of the least
//! refused one (the space-saving scheme), so a flood of distinct keys
//! cannot grow it, and heavy hitters stay.

use std::sync::Mutex;

/// Keys kept per rule.
pub const SLOTS: usize = 32;
/// Longest key text kept, in bytes (attacker-chosen; cut beyond).
const MAX_TEXT: usize = 120;

#[derive(Debug, Default)]
pub struct TopKeys {
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug, Clone)]
struct Slot {
    hash: u64,
    text: String,
    refused: u64,
}

impl TopKeys {
    /// Counts a refusal of the key `hash`; `text` names it when it is new.
    pub fn refused(&self, hash: u64, text: impl FnOnce() -> String) {
        let Ok(mut slots) = self.slots.try_lock() else {
            return;
        };
        if let Some(s) = slots.iter_mut().find(|s| s.hash == hash) {
            s.refused += 1;
            return;
        }
        let mut text = text();
        if text.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        if slots.len() < SLOTS {
            slots.push(Slot {
                hash,
                text,
                refused: 1,
            });
            return;
        }
        // The newcomer inherits the evicted count, as space-saving does,
        // so it is never under-counted against the keys that stayed.
        if let Some(min) = slots.iter_mut().min_by_key(|s| s.refused) {
            *min = Slot {
                hash,
                text,
                refused: min.refused + 1,
            };
        }
    }

    /// The keys with their refusals so far, most refused first.
    pub fn read(&self) -> Vec<(String, u64)> {
        let slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out: Vec<_> = slots.iter().map(|s| (s.text.clone(), s.refused)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_stay_and_the_list_is_bounded() {
        let top = TopKeys::default();
        for _ in 0..100 {
            top.refused(1, || "code=PROMO".into());
        }
        for k in 2..1000u64 {
            top.refused(k, || format!("code={k}"));
        }
        let read = top.read();
        assert_eq!(read.len(), SLOTS);
        assert_eq!(read[0], ("code=PROMO".to_owned(), 100));
    }

    #[test]
    fn long_keys_are_cut() {
        let top = TopKeys::default();
        top.refused(1, || "é".repeat(200));
        assert!(top.read()[0].0.len() <= MAX_TEXT);
    }
}
