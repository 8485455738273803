//! Interned paths: every file of the tree once, in one byte arena, found
//! by an open-addressing table of 32-bit ids. A million paths of 60 bytes
//! cost about 70 MB here, where a `HashMap<String, _>` would take twice
//! that (docs/mirrors.md, "State size").

/// A file's number in one [`Paths`] (and in everything indexed by it).
pub type FileId = u32;

#[derive(Debug, Default)]
pub struct Paths {
    arena: Vec<u8>,
    /// `ends[i]` is where path `i` ends in `arena`; it starts at `ends[i-1]`.
    ends: Vec<u32>,
    /// `id + 1`, or 0 for an empty slot; the length is a power of two.
    slots: Vec<u32>,
}

/// A fixed hash: the table holds only the operator's paths, so a client
/// choosing what to look up can lengthen no probe chain beyond the longest
/// the tree already has.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 32)
}

impl Paths {
    pub fn with_capacity(files: usize, bytes: usize) -> Paths {
        Paths {
            arena: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(files),
            slots: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds `path` (not already present) and returns its id; `None` past
    /// 4 GiB of paths or 2^31 files.
    pub fn push(&mut self, path: &[u8]) -> Option<FileId> {
        let id = u32::try_from(self.ends.len())
            .ok()
            .filter(|n| *n < u32::MAX / 2)?;
        let end = u32::try_from(self.arena.len() + path.len()).ok()?;
        self.arena.extend_from_slice(path);
        self.ends.push(end);
        if self.slots.len() < self.ends.len() * 2 {
            self.rehash();
        } else {
            self.place(id);
        }
        Some(id)
    }

    pub fn get(&self, id: FileId) -> &[u8] {
        let i = id as usize;
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..end as usize]
    }

    pub fn find(&self, path: &[u8]) -> Option<FileId> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = hash(path) as usize & mask;
        loop {
            match self.slots[at] {
                0 => return None,
                n if self.get(n - 1) == path => return Some(n - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn place(&mut self, id: FileId) {
        let mask = self.slots.len() - 1;
        let mut at = hash(self.get(id)) as usize & mask;
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = id + 1;
    }

    fn rehash(&mut self) {
        let size = (self.ends.len() * 2).next_power_of_two().max(16);
        self.slots = vec![0; size];
        for id in 0..self.ends.len() as u32 {
            self.place(id);
        }
    }

    /// Heap bytes held (capacity, not length: what the allocator gave).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.slots.capacity() * 4
    }

    /// Gives back the spare capacity once the tree is complete.
    pub fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::Paths;

    #[test]
    fn push_find_get() {
        let mut p = Paths::default();
        let names: Vec<String> = (0..1000)
            .map(|i| format!("dir{}/file-{i}.iso", i % 7))
            .collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(p.push(n.as_bytes()), Some(i as u32));
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(p.find(n.as_bytes()), Some(i as u32));
            assert_eq!(p.get(i as u32), n.as_bytes());
        }
        assert_eq!(p.find(b"dir1/file-1.iso/"), None);
        assert_eq!(p.find(b""), None);
        assert_eq!(p.get(5000), b"");
    }
}
