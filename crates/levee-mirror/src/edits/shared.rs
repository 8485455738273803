//! The runtime edits as a fleet's shared table (docs/mirrors.md, "Fleet"):
//! what this member has not written to Redis yet, and applying what
//! Redis or the bus says. This crate does no Redis I/O: levee-server's
//! fleet glue reads and writes the table and calls these.
//!
//! Rules, so that every member converges on Redis' table:
//! - a row or a bus message older than the version this member holds for
//!   that mirror is ignored (writes heard out of order);
//! - a local edit not yet written (Redis away) is kept over what Redis
//!   says until it is written: it is the later edit, and overwrites;
//! - a table Redis does not have (never written, or restarted empty) is
//!   seeded with this member's edits rather than emptying its list.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::{Edit, Edits};
use crate::MirrorError;
use crate::set::MirrorSet;

/// A row of the shared table: its version and edit (`None`: a reset).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub version: u64,
    pub edit: Option<Edit>,
}

impl MirrorSet {
    /// The name of this set's table in the fleet's key space.
    pub fn table(&self) -> String {
        format!("mirrors:{}", self.name)
    }

    /// Whether edits are shared (a fleet member's sharing task runs).
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    /// Set by levee-server when the set's sharing task starts (true) or
    /// the member leaves its fleet (false).
    pub fn set_shared(&self, on: bool) {
        self.shared.store(on, Ordering::Relaxed);
    }

    /// Takes the edits Redis has not got yet, in their shared form
    /// (`None`: a reset, to delete). Give back what could not be written
    /// with [`MirrorSet::unsent_again`].
    pub fn take_unsent(&self) -> Result<Vec<(String, Option<Value>)>, MirrorError> {
        let mut edits = self.edits.lock().map_err(|_| MirrorError::Poisoned)?;
        let names = std::mem::take(&mut edits.unsent);
        Ok(names
            .into_iter()
            .map(|n| {
                let v = edits.get(&n).map(Edit::to_json);
                (n, v)
            })
            .collect())
    }

    /// Names whose write failed: unsent again (and saved so, so a restart
    /// before Redis is back still writes them).
    pub fn unsent_again(&self, names: impl IntoIterator<Item = String>) {
        let Ok(mut edits) = self.edits.lock() else {
            return;
        };
        edits.unsent.extend(names);
        if let Err(e) = edits.save() {
            tracing::warn!(set = %self.name, error = %e, "cannot save mirror edits");
        }
    }

    /// Records that `name`'s edit is in Redis as `version`; saves once the
    /// unsent list is empty.
    pub fn sent(&self, name: &str, version: u64) {
        let Ok(mut edits) = self.edits.lock() else {
            return;
        };
        let held = edits.versions.entry(name.to_owned()).or_default();
        *held = (*held).max(version);
        if edits.unsent.is_empty()
            && let Err(e) = edits.save()
        {
            tracing::warn!(set = %self.name, error = %e, "cannot save mirror edits");
        }
    }

    /// Applies an edit another member made (from the bus); whether it
    /// changed anything here. A switch on lifts this member's automatic
    /// disabling, as it does on the member that took it.
    pub fn apply_shared(&self, name: &str, row: Row) -> Result<bool, MirrorError> {
        let mut edits = self.edits.lock().map_err(|_| MirrorError::Poisoned)?;
        if !take_row(&mut edits, name, row.version) {
            return Ok(false);
        }
        let on = row.edit.as_ref().and_then(|e| e.enabled);
        let changed = edits.set(name, row.edit);
        if changed {
            save(self, &edits);
            self.rebuild(&edits);
        }
        drop(edits);
        if let Some(on) = on {
            self.forgive(name, on);
        }
        Ok(changed)
    }

    /// Makes the edits Redis' table (`None`: Redis has no table: every
    /// local edit is marked unsent, to seed it). Edits not yet written
    /// are kept. How many mirrors' edits changed.
    pub fn load_shared(
        &self,
        table: Option<(u64, BTreeMap<String, Row>)>,
    ) -> Result<usize, MirrorError> {
        let mut edits = self.edits.lock().map_err(|_| MirrorError::Poisoned)?;
        let Some((_, rows)) = table else {
            let names: Vec<String> = edits.all().map(|(n, _)| n.to_owned()).collect();
            edits.unsent.extend(names);
            edits.versions.clear();
            save(self, &edits);
            return Ok(0);
        };
        let mut changed = 0;
        let gone: Vec<String> = edits
            .all()
            .map(|(n, _)| n.to_owned())
            .filter(|n| !rows.contains_key(n) && !edits.unsent.contains(n))
            .collect();
        for name in gone {
            edits.versions.remove(&name);
            changed += usize::from(edits.set(&name, None));
        }
        for (name, row) in rows {
            if edits.unsent.contains(&name) {
                continue;
            }
            // Loaded whole, so a lower version than held (Redis restarted
            // and was seeded again) is still the truth now.
            edits.versions.insert(name.clone(), row.version);
            changed += usize::from(edits.set(&name, row.edit));
        }
        if changed > 0 {
            save(self, &edits);
            self.rebuild(&edits);
        }
        Ok(changed)
    }
}

/// Whether a row of `version` for `name` is newer than what this member
/// holds, and is not overtaken by a local edit waiting to be written;
/// records it if so.
fn take_row(edits: &mut Edits, name: &str, version: u64) -> bool {
    if edits.unsent.contains(name) {
        return false;
    }
    let held = edits.versions.entry(name.to_owned()).or_default();
    if version <= *held {
        return false;
    }
    *held = version;
    true
}

fn save(set: &MirrorSet, edits: &Edits) {
    if let Err(e) = edits.save() {
        tracing::warn!(set = %set.name, error = %e, "cannot save mirror edits");
    }
}
