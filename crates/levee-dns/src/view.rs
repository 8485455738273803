//! What queries are answered from: each zone's static part, its serial and
//! SOA, the live set of each fleet record and the journal of recent
//! changes (for IXFR). A new `View` is built and swapped in whole whenever
//! anything changes; a query reads one `View` from start to end.

use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record};

use crate::live::LiveSet;
use crate::zone::Zone;

#[derive(Debug, Default)]
pub struct View {
    /// Longest apex first, so the first zone that contains a name is the
    /// one it belongs to.
    pub zones: Vec<ZoneView>,
}

#[derive(Debug, Clone)]
pub struct ZoneView {
    pub zone: Arc<Zone>,
    pub serial: u32,
    pub soa: Record,
    /// One per fleet record, in the zone's order.
    pub live: Vec<Arc<LiveSet>>,
    pub journal: Arc<Journal>,
}

impl View {
    /// The zone `name` (lower case) belongs to.
    pub fn zone_of(&self, name: &Name) -> Option<&ZoneView> {
        self.zones.iter().find(|z| z.zone.apex.zone_of_case(name))
    }

    pub fn sort(&mut self) {
        self.zones
            .sort_by_key(|z| std::cmp::Reverse(z.zone.apex.num_labels()));
    }
}

impl ZoneView {
    /// Every record of the zone but the SOA, as a transfer sends it: the
    /// static records, then each fleet record's full set (all its members,
    /// in order; a secondary answers them as plain round-robin DNS).
    pub fn records(&self) -> Vec<Record> {
        let mut out = self.zone.records.clone();
        for (f, live) in self.zone.fleet.iter().zip(&self.live) {
            let ttl = f.config.ttl.as_secs() as u32;
            for e in live.v4.iter().chain(&live.v6) {
                let data = match e.ip {
                    std::net::IpAddr::V4(a) => RData::A(a.into()),
                    std::net::IpAddr::V6(a) => RData::AAAA(a.into()),
                };
                out.push(Record::from_rdata(f.owner.clone(), ttl, data));
            }
        }
        out
    }
}

/// One change of a zone: the records it removed and added.
#[derive(Debug, Clone)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// The last changes of a zone, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub changes: Vec<Change>,
}

/// Changes kept for IXFR; a secondary further behind gets the whole zone.
const KEPT: usize = 64;

impl Journal {
    /// This journal with one more change (the oldest dropped past `KEPT`).
    pub fn with(&self, change: Change) -> Journal {
        let mut changes = self.changes.clone();
        changes.push(change);
        if changes.len() > KEPT {
            changes.remove(0);
        }
        Journal { changes }
    }

    /// The changes from `serial` to the newest, if they are all kept.
    pub fn since(&self, serial: u32) -> Option<&[Change]> {
        let start = self.changes.iter().position(|c| c.from == serial)?;
        Some(&self.changes[start..])
    }
}

/// The records of `new` not in `old`, and of `old` not in `new`.
pub fn diff(old: &[Record], new: &[Record]) -> (Vec<Record>, Vec<Record>) {
    let removed = old.iter().filter(|r| !new.contains(r)).cloned().collect();
    let added = new.iter().filter(|r| !old.contains(r)).cloned().collect();
    (removed, added)
}

/// The next serial: one more, or the Unix time if that is later, so a
/// restarted levee (and another levee seeing the same change) does not go
/// back. RFC 1982 arithmetic wraps; the Unix time fits until 2106.
pub fn next_serial(old: u32, now: u32) -> u32 {
    let bumped = old.wrapping_add(1);
    // `now` is later than `bumped` in serial arithmetic.
    if now != bumped && now.wrapping_sub(bumped) < (1 << 31) {
        now
    } else {
        bumped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_follow_the_clock_and_never_go_back() {
        assert_eq!(next_serial(0, 1_700_000_000), 1_700_000_000);
        assert_eq!(next_serial(1_700_000_000, 1_700_000_000), 1_700_000_001);
        // Many changes in one second run ahead of the clock, then it catches up.
        assert_eq!(next_serial(1_700_000_005, 1_700_000_001), 1_700_000_006);
        assert_eq!(next_serial(1_700_000_006, 1_700_000_100), 1_700_000_100);
        assert_eq!(next_serial(u32::MAX, 5), 5);
    }

    #[test]
    fn the_journal_keeps_the_last_changes() {
        let mut j = Journal::default();
        for s in 1..=70u32 {
            j = j.with(Change {
                from: s,
                to: s + 1,
                removed: vec![],
                added: vec![],
            });
        }
        assert_eq!(j.changes.len(), KEPT);
        assert!(j.since(3).is_none());
        assert_eq!(j.since(60).map(<[Change]>::len), Some(11));
    }
}
