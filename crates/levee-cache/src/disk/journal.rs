//! The disk tier's journal: what is stored where, so the index is rebuilt
//! at start from one sequential read, without opening a single object.
//!
//! A record says "key K is in file I (S bytes on disk, these tags)" or
//! "key K is no longer in file I". Records go to numbered segments
//! (`journal.N`); replay reads them in order. Each record carries its
//! length and a checksum, so a record torn by a crash mid-append ends the
//! replay of its segment (everything before it stands; the objects it
//! would have named are swept as orphans). A compaction writes the live
//! entries as a new segment and removes the older ones.
//!
//! [`Record::encode`] and [`parse`] do no I/O; [`Segments`] reads and
//! writes the files.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Put {
        key: Vec<u8>,
        id: u64,
        /// Bytes of the file (0 for a Vary marker, which has none).
        size: u64,
        tags: Vec<String>,
        /// `Some`: a Vary marker naming these fields.
        vary: Option<Vec<String>>,
    },
    /// `key` no longer lives in file `id` (a later Put may have moved it).
    Remove { key: Vec<u8>, id: u64 },
}

const PUT: u8 = 1;
const REMOVE: u8 = 2;
/// A record longer than this is corrupt (keys and tags are far shorter).
const MAX_RECORD: usize = 1 << 20;

fn checksum(payload: &[u8]) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6a6f_7572_6e61_6c21, 0x6c65_7665_6521);
    h.write(payload);
    h.finish()
}

impl Record {
    /// The record as bytes: length, checksum, payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut p = Vec::with_capacity(64);
        match self {
            Record::Put {
                key,
                id,
                size,
                tags,
                vary,
            } => {
                p.push(PUT);
                p.extend_from_slice(&id.to_le_bytes());
                p.extend_from_slice(&size.to_le_bytes());
                bytes(&mut p, key);
                strings(&mut p, tags);
                match vary {
                    None => p.push(0),
                    Some(names) => {
                        p.push(1);
                        strings(&mut p, names);
                    }
                }
            }
            Record::Remove { key, id } => {
                p.push(REMOVE);
                p.extend_from_slice(&id.to_le_bytes());
                bytes(&mut p, key);
            }
        }
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&checksum(&p).to_le_bytes());
        out.extend_from_slice(&p);
    }
}

fn bytes(p: &mut Vec<u8>, b: &[u8]) {
    p.extend_from_slice(&(b.len() as u32).to_le_bytes());
    p.extend_from_slice(b);
}

fn strings(p: &mut Vec<u8>, list: &[String]) {
    p.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for s in list {
        bytes(p, s.as_bytes());
    }
}

/// What [`parse`] found at the start of some bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Record(Record, usize),
    /// More bytes are needed.
    Incomplete,
    /// Not a record: a torn or damaged tail.
    Bad,
}

/// Parses the record at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let Some(head) = buf.get(..12) else {
        return Parsed::Incomplete;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > MAX_RECORD {
        return Parsed::Bad;
    }
    let sum = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
    let Some(payload) = buf.get(12..12 + len) else {
        return Parsed::Incomplete;
    };
    if checksum(payload) != sum {
        return Parsed::Bad;
    }
    match decode(payload) {
        Some(r) => Parsed::Record(r, 12 + len),
        None => Parsed::Bad,
    }
}

fn decode(p: &[u8]) -> Option<Record> {
    let mut r = Cursor(p);
    let op = r.take(1)?[0];
    let id = r.u64()?;
    let record = match op {
        PUT => {
            let size = r.u64()?;
            let key = r.bytes()?.to_vec();
            let tags = r.strings()?;
            let vary = match r.take(1)?[0] {
                0 => None,
                1 => Some(r.strings()?),
                _ => return None,
            };
            Record::Put {
                key,
                id,
                size,
                tags,
                vary,
            }
        }
        REMOVE => Record::Remove {
            key: r.bytes()?.to_vec(),
            id,
        },
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        (0..n)
            .map(|_| std::str::from_utf8(self.bytes()?).ok().map(str::to_owned))
            .collect()
    }
}

/// One live entry as replay leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub id: u64,
    pub size: u64,
    pub tags: Vec<String>,
    pub vary: Option<Arc<[String]>>,
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub live: HashMap<Vec<u8>, Live>,
    /// The highest file id any record named (new files get higher ones).
    pub max_id: u64,
    /// Records read, for the compaction trigger.
    pub records: u64,
    /// Segments whose tail was torn or damaged.
    pub torn: u64,
}

impl Replayed {
    /// Applies one record in journal order.
    pub fn apply(&mut self, record: Record) {
        self.records += 1;
        match record {
            Record::Put {
                key,
                id,
                size,
                tags,
                vary,
            } => {
                self.max_id = self.max_id.max(id);
                let vary = vary.map(Arc::from);
                self.live.insert(
                    key,
                    Live {
                        id,
                        size,
                        tags,
                        vary,
                    },
                );
            }
            Record::Remove { key, id } => {
                self.max_id = self.max_id.max(id);
                if self.live.get(&key).is_some_and(|l| l.id == id) {
                    self.live.remove(&key);
                }
            }
        }
    }
}

/// The journal's files in a directory.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
}

/// An open segment that records are appended to.
#[derive(Debug)]
pub struct Appender {
    pub file: File,
    pub number: u64,
    /// Records appended since the last sync (to the device).
    pub dirty: bool,
}

impl Segments {
    pub fn new(dir: &Path) -> Segments {
        Segments {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("journal.{n}"))
    }

    /// The segment numbers present, in order.
    pub fn numbers(&self) -> io::Result<Vec<u64>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix("journal."))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            out.push(n);
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Reads every segment in order.
    pub fn replay(&self) -> io::Result<(Replayed, u64)> {
        let mut state = Replayed::default();
        let numbers = self.numbers()?;
        let mut buf = Vec::new();
        for &n in &numbers {
            buf.clear();
            File::open(self.path(n))?.read_to_end(&mut buf)?;
            let mut at = 0;
            loop {
                match parse(&buf[at..]) {
                    Parsed::Record(r, used) => {
                        state.apply(r);
                        at += used;
                    }
                    Parsed::Incomplete if at == buf.len() => break,
                    Parsed::Incomplete | Parsed::Bad => {
                        state.torn += 1;
                        break;
                    }
                }
            }
        }
        Ok((state, numbers.last().copied().unwrap_or(0)))
    }

    /// Opens segment `n` for appending (created if absent).
    pub fn append(&self, n: u64) -> io::Result<Appender> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(n))?;
        Ok(Appender {
            file,
            number: n,
            dirty: false,
        })
    }

    /// Writes `records` as segment `n` (through a temporary file, synced,
    /// then renamed), then removes every segment numbered below `n`.
    pub fn write_snapshot(&self, n: u64, records: impl Iterator<Item = Record>) -> io::Result<()> {
        let tmp = self.dir.join(format!("journal.{n}.tmp"));
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        let mut buf = Vec::with_capacity(256);
        for r in records {
            buf.clear();
            r.encode(&mut buf);
            out.write_all(&buf)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.path(n))?;
        for old in self.numbers()? {
            if old < n {
                std::fs::remove_file(self.path(old))?;
            }
        }
        Ok(())
    }
}

impl Appender {
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut buf = Vec::with_capacity(128);
        record.encode(&mut buf);
        // One write(2) per record: O_APPEND keeps it whole against other
        // writers of the file, and a crash tears at most this record.
        self.file.write_all(&buf)?;
        self.dirty = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, id: u64) -> Record {
        Record::Put {
            key: key.as_bytes().to_vec(),
            id,
            size: id * 10,
            tags: vec!["t".into()],
            vary: None,
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_refused() {
        let records = [
            put("a", 1),
            Record::Put {
                key: b"v".to_vec(),
                id: 2,
                size: 0,
                tags: vec![],
                vary: Some(vec!["accept-encoding".into()]),
            },
            Record::Remove {
                key: b"a".to_vec(),
                id: 1,
            },
        ];
        let mut bytes = Vec::new();
        for r in &records {
            r.encode(&mut bytes);
        }
        let mut at = 0;
        for r in &records {
            match parse(&bytes[at..]) {
                Parsed::Record(got, used) => {
                    assert_eq!(&got, r);
                    at += used;
                }
                other => panic!("{other:?}"),
            }
        }
        // Every cut of the last record is incomplete, never a record.
        let last = bytes.len() - at;
        let mut one = Vec::new();
        records[2].encode(&mut one);
        for cut in 0..one.len() {
            assert_eq!(parse(&one[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        assert_eq!(last, 0);
        // A damaged byte is refused.
        let mut bad = one.clone();
        let end = bad.len() - 1;
        bad[end] ^= 0x40;
        assert_eq!(parse(&bad), Parsed::Bad);
    }

    #[test]
    fn replay_keeps_the_latest_put_and_removes_only_what_it_names() {
        let mut s = Replayed::default();
        for r in [
            put("a", 1),
            put("a", 3),
            // A removal of the old file does not remove the new one.
            Record::Remove {
                key: b"a".to_vec(),
                id: 1,
            },
            put("b", 2),
            Record::Remove {
                key: b"b".to_vec(),
                id: 2,
            },
        ] {
            s.apply(r);
        }
        assert_eq!(s.live.len(), 1);
        assert_eq!(s.live[&b"a".to_vec()].id, 3);
        assert_eq!((s.max_id, s.records), (3, 5));
    }

    #[test]
    fn segments_replay_in_order_and_a_snapshot_replaces_them() {
        let dir = std::env::temp_dir().join(format!("levee-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let segs = Segments::new(&dir);
        let mut a = segs.append(1).expect("open");
        a.write(&put("x", 1)).expect("write");
        let mut b = segs.append(2).expect("open");
        b.write(&Record::Remove {
            key: b"x".to_vec(),
            id: 1,
        })
        .expect("write");
        b.write(&put("y", 2)).expect("write");
        // A torn append at the end of the last segment.
        b.file.write_all(&[9, 0, 0, 0, 1, 2]).expect("write");
        let (state, last) = segs.replay().expect("replay");
        assert_eq!(last, 2);
        assert_eq!(state.torn, 1);
        assert_eq!(state.live.keys().collect::<Vec<_>>(), [&b"y".to_vec()]);
        segs.write_snapshot(3, [put("y", 2)].into_iter())
            .expect("snapshot");
        assert_eq!(segs.numbers().expect("list"), [3]);
        let (state, _) = segs.replay().expect("replay");
        assert_eq!((state.live.len(), state.torn), (1, 0));
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
