//! The runtime lists as the fleet shares them: this process's lists are
//! levee-fleet's [`Sink`] (docs/fleet.md, "Runtime bans"), so what Redis
//! holds replaces them, and what this member knows is written back when
//! Redis lost it.

use std::sync::Arc;

use levee_fleet::bans::{Entry, List, Sink};

use super::{Ban, BanStore, local, unix_now};

/// A ban as Redis holds it.
pub(super) fn entry(b: &Ban) -> Entry {
    Entry {
        net: b.net.to_string(),
        since: b.since,
        until: b.until,
        by: b.by.clone(),
    }
}

struct Lists;

impl Sink for Lists {
    fn replace(&self, list: List, entries: Vec<Entry>) {
        let bans = entries
            .into_iter()
            .filter_map(|e| {
                // A network levee cannot read (another client's write) is
                // skipped, never the whole list.
                let net = super::parse_net(&e.net).ok()?;
                Some(Ban {
                    net,
                    since: e.since,
                    until: e.until,
                    by: e.by,
                })
            })
            .collect();
        local(list).replace(bans);
    }

    fn entries(&self, list: List) -> Vec<Entry> {
        local(list).list(unix_now()).iter().map(entry).collect()
    }
}

/// Makes this process's lists the ones a fleet keeps in step (called before
/// joining a fleet).
pub fn share() {
    levee_fleet::bans::set_sink(Arc::new(Lists));
}
