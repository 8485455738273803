//! Stored bodies: a [`Body`] is a few pieces whose sizes suit the allocator,
//! and a [`BodyCopy`] builds one from a body while it is relayed, within the
//! [`InFlight`] budget.
//!
//! Why pieces: allocators keep blocks in size classes on pages of a fixed
//! size, so a block of an arbitrary size pays for the rest of its class and
//! for the page's tail. Measured with mimalloc (levee's allocator), one
//! 10 KiB block takes 11,011 bytes and a 12 KiB one 12,585; 8 KiB and 2 KiB
//! blocks take 8,285 and 2,097. A body is therefore stored as full
//! [`SEGMENT`]s, then the remainder as descending powers of two down to
//! [`MIN_PIECE`], then an exact tail: 10 KiB costs about 140 bytes of
//! slack instead of about 770. With a known length the pieces are sized up
//! front and filled in place, so nothing is copied twice.
//!
//! A body the disk tier serves is a [`FileRegion`] instead: an open file,
//! sent with `sendfile` by the HTTP side, never read into memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Largest piece: bodies past it are a list of these.
pub const SEGMENT: usize = 32 * 1024;
/// Remainders below this are one exact-size piece.
pub const MIN_PIECE: usize = 1024;
/// What the allocator spends on a piece beyond its bytes: measured 93
/// bytes for 8 KiB, 49 for 2 KiB, 57 for 32 KiB.
const PIECE_SLACK: usize = 64;

/// A stored body: pieces in memory, or a region of a file the disk tier
/// opened (sent with `sendfile`, never read into memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Pieces(Box<[Bytes]>),
    File(Arc<FileRegion>),
}

impl Default for Body {
    fn default() -> Body {
        Body::Pieces(Box::default())
    }
}

/// Bytes of an open file: a disk tier object's body. The file stays open
/// (and its bytes readable, even once the disk tier unlinks it) as long
/// as the region lives.
#[derive(Debug)]
pub struct FileRegion {
    pub file: File,
    pub offset: u64,
    pub len: u64,
}

impl PartialEq for FileRegion {
    fn eq(&self, other: &FileRegion) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for FileRegion {}

/// Part of a body as it is sent: bytes in memory, or `len` bytes of a file
/// from `start` (an offset in the file).
#[derive(Debug, Clone)]
pub enum Slice {
    Bytes(Bytes),
    File {
        region: Arc<FileRegion>,
        start: u64,
        len: u64,
    },
}

impl Slice {
    pub fn len(&self) -> u64 {
        match self {
            Slice::Bytes(b) => b.len() as u64,
            Slice::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Bytes> for Slice {
    fn from(b: Bytes) -> Slice {
        Slice::Bytes(b)
    }
}

impl Body {
    /// The pieces in memory (none for a file body).
    pub fn pieces(&self) -> &[Bytes] {
        match self {
            Body::Pieces(p) => p,
            Body::File(_) => &[],
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Body::Pieces(p) => p.iter().map(|p| p.len() as u64).sum(),
            Body::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes it holds in memory: the pieces (each allocated exactly its
    /// length, plus the allocator's share of its page) and their handles;
    /// for a file, the open file's bookkeeping.
    pub fn weight(&self) -> u64 {
        match self {
            Body::Pieces(p) => {
                let per_piece = std::mem::size_of::<Bytes>() + PIECE_SLACK;
                self.len() + (p.len() * per_piece) as u64
            }
            Body::File(_) => (std::mem::size_of::<FileRegion>() + PIECE_SLACK) as u64,
        }
    }

    /// `len` bytes from `start` (both clamped to the body), as slices that
    /// share the stored memory or name the stored file.
    pub fn slices(&self, start: u64, len: u64) -> Vec<Slice> {
        let end = start.saturating_add(len).min(self.len());
        match self {
            Body::File(region) => {
                if start >= end {
                    return Vec::new();
                }
                vec![Slice::File {
                    region: region.clone(),
                    start: region.offset + start,
                    len: end - start,
                }]
            }
            Body::Pieces(pieces) => {
                let mut out = Vec::new();
                let mut at = 0u64;
                for piece in pieces.iter() {
                    let next = at + piece.len() as u64;
                    if next > start && at < end {
                        let from = usize::try_from(start.saturating_sub(at)).unwrap_or(usize::MAX);
                        let to = usize::try_from(end.min(next) - at).unwrap_or(usize::MAX);
                        out.push(Slice::Bytes(piece.slice(from..to)));
                    }
                    at = next;
                }
                out
            }
        }
    }

    /// The whole body, as slices.
    pub fn all(&self) -> Vec<Slice> {
        self.slices(0, self.len())
    }

    /// The whole body in one buffer (tests, and the shared tier's copy of
    /// a small object). A file body is read; a short read is an error.
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Body::Pieces(p) => Ok(p.concat()),
            Body::File(f) => {
                let len = usize::try_from(f.len).map_err(|_| std::io::ErrorKind::OutOfMemory)?;
                let mut out = vec![0u8; len];
                f.file.read_exact_at(&mut out, f.offset)?;
                Ok(out)
            }
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        if bytes.is_empty() {
            Body::default()
        } else {
            Body::Pieces(Box::from([bytes]))
        }
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(bytes))
    }
}

/// The size of the next piece when `remaining` bytes are still to come
/// (`None`: unknown).
fn piece_size(remaining: Option<u64>) -> usize {
    match remaining.and_then(|r| usize::try_from(r).ok()) {
        Some(0) | None => SEGMENT,
        Some(r) if r >= SEGMENT => SEGMENT,
        Some(r) if r >= MIN_PIECE => 1 << r.ilog2(),
        Some(r) => r,
    }
}

/// Bytes that misses in flight are copying, bounded: the part of
/// `[cache] max_size` that is not the store's.
#[derive(Debug)]
pub struct InFlight {
    used: AtomicU64,
    limit: u64,
}

impl InFlight {
    pub fn new(limit: u64) -> InFlight {
        InFlight {
            used: AtomicU64::new(0),
            limit,
        }
    }

    /// Takes `n` bytes of the budget; false (and nothing taken) if they do not fit.
    pub fn try_reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    pub fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// A copy of a body taken while it is relayed, up to a cap and within the
/// in-flight budget: past either the copy is dropped (the relay goes on).
/// Each piece's bytes are reserved when it is allocated and released when
/// the copy ends, stored or not.
#[derive(Debug)]
pub struct BodyCopy<'a> {
    pieces: Vec<Bytes>,
    current: Vec<u8>,
    len: u64,
    cap: u64,
    expected: Option<u64>,
    budget: &'a InFlight,
    reserved: u64,
    overflow: bool,
    /// The copy stopped for want of budget, not for the body's size: a
    /// passing condition, not a property of the response.
    starved: bool,
}

impl<'a> BodyCopy<'a> {
    /// A copy of at most `cap` bytes of a body of `expected` bytes, if known.
    pub fn new(cap: u64, expected: Option<u64>, budget: &'a InFlight) -> BodyCopy<'a> {
        BodyCopy {
            pieces: Vec::new(),
            current: Vec::new(),
            len: 0,
            cap,
            expected: expected.filter(|&n| n <= cap),
            budget,
            reserved: 0,
            overflow: false,
            starved: false,
        }
    }

    /// Copies `data`, or drops the copy once past the cap or the budget.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.overflow {
            return;
        }
        if self.len + data.len() as u64 > self.cap {
            return self.give_up();
        }
        while !data.is_empty() {
            if self.current.len() == self.current.capacity() && !self.next_piece() {
                self.starved = true;
                return self.give_up();
            }
            let n = data.len().min(self.current.capacity() - self.current.len());
            self.current.extend_from_slice(&data[..n]);
            self.len += n as u64;
            data = &data[n..];
        }
    }

    /// Starts a new piece sized for what is still expected.
    fn next_piece(&mut self) -> bool {
        let remaining = self.expected.and_then(|e| e.checked_sub(self.len));
        // Never more than the cap leaves room for, so the reservation is honest.
        let room = usize::try_from(self.cap - self.len).unwrap_or(usize::MAX);
        let size = piece_size(remaining).min(room);
        if !self.budget.try_reserve(size as u64) {
            return false;
        }
        self.reserved += size as u64;
        let full = std::mem::replace(&mut self.current, Vec::with_capacity(size));
        if !full.is_empty() {
            self.pieces.push(Bytes::from(full));
        }
        true
    }

    fn give_up(&mut self) {
        self.overflow = true;
        self.pieces = Vec::new();
        self.current = Vec::new();
        self.budget.release(std::mem::take(&mut self.reserved));
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Whether `n` more bytes would take the copy past its cap.
    pub fn would_overflow(&self, n: usize) -> bool {
        self.len + n as u64 > self.cap
    }

    /// What was copied so far, in order, ending the copy (its budget is
    /// released): for a body that turned out too large for memory and
    /// goes on to a disk tier file.
    pub fn into_pieces(mut self) -> Vec<Bytes> {
        let mut pieces = std::mem::take(&mut self.pieces);
        let last = std::mem::take(&mut self.current);
        if !last.is_empty() {
            pieces.push(Bytes::from(last));
        }
        if self.overflow {
            pieces.clear();
        }
        pieces
    }

    /// Whether the copy was dropped because the in-flight budget was spent.
    pub fn starved(&self) -> bool {
        self.starved
    }

    /// The whole body, unless the copy was dropped.
    pub fn finish(mut self) -> Option<Body> {
        if self.overflow {
            return None;
        }
        let mut pieces = std::mem::take(&mut self.pieces);
        let last = std::mem::take(&mut self.current);
        if last.len() == last.capacity() {
            if !last.is_empty() {
                pieces.push(Bytes::from(last));
            }
        } else {
            // The length was unknown or wrong: cut the partly filled piece
            // into exact ones (a copy of less than a segment).
            let mut rest = &last[..];
            while !rest.is_empty() {
                let n = piece_size(Some(rest.len() as u64)).min(rest.len());
                pieces.push(Bytes::copy_from_slice(&rest[..n]));
                rest = &rest[n..];
            }
        }
        // A fresh exact allocation: shrinking the grown Vec in place would
        // keep its larger block.
        Some(Body::Pieces(pieces.drain(..).collect()))
    }
}

impl Drop for BodyCopy<'_> {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

#[cfg(test)]
mod tests;
