//! The index of the local tree: every regular file under the root with its
//! size and modification time, the symlinks inside the tree, and what is
//! known of each file (its SHA-256, its downloads).
//!
//! Symlink policy (docs/mirrors.md): the walk never follows a link. A link
//! whose target lies inside the tree is recorded as an alias of the target's
//! path, so a request through it is redirected to the path the mirrors
//! carry. A link that leads out of the tree, by a relative `..` or an
//! absolute path, is recorded as outside and never followed. The root is
//! canonicalised once, so a symlinked directory above the tree (the
//! virtual-host part of the path, MirrorBrain's failure) never shows up in
//! a mirror's path.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::bits::Bits;
use crate::glob::Patterns;
use crate::paths::{FileId, Paths};

/// A file's version: a copy elsewhere is the same file only with the same
/// size (and, from a listing, a modification time not older).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
}

/// Where a symlink inside the tree leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A path relative to the root (it may itself pass through links).
    Inside(Box<[u8]>),
    /// Out of the tree: never followed.
    Outside,
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A file of the index, and whether a link was followed to reach it.
    File { id: FileId, via_link: bool },
    /// Through a link that leaves the tree.
    Outside,
    /// Not a file of the index (a directory, or new since the last walk).
    Missing,
}

/// Links followed while resolving one path, at most (a loop ends here).
const MAX_LINKS: usize = 16;

static GENERATION: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
pub struct Tree {
    /// Distinguishes trees, so a mirror's holdings are read only against
    /// the tree they were built for.
    pub generation: u64,
    /// The canonical root.
    pub root: PathBuf,
    paths: Paths,
    files: Vec<FileMeta>,
    links: HashMap<Box<[u8]>, Link>,
    /// Files an `exclude` pattern keeps local.
    excluded: Bits,
    digests: Vec<OnceLock<[u8; 32]>>,
    downloads: Vec<AtomicU32>,
    /// Directories that could not be read during the walk.
    pub unreadable: u64,
}

impl Tree {
    /// An empty tree: every request is served locally until the first walk.
    pub fn empty(root: PathBuf) -> Tree {
        Tree::assemble(
            root,
            Paths::default(),
            Vec::new(),
            HashMap::new(),
            &Patterns::default(),
            0,
        )
    }

    fn assemble(
        root: PathBuf,
        mut paths: Paths,
        files: Vec<FileMeta>,
        links: HashMap<Box<[u8]>, Link>,
        exclude: &Patterns,
        unreadable: u64,
    ) -> Tree {
        paths.shrink();
        let excluded = Bits::new(files.len());
        if !exclude.is_empty() {
            for id in 0..files.len() {
                if exclude.matches(paths.get(id as FileId)) {
                    excluded.set(id);
                }
            }
        }
        Tree {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            root,
            digests: (0..files.len()).map(|_| OnceLock::new()).collect(),
            downloads: (0..files.len()).map(|_| AtomicU32::new(0)).collect(),
            paths,
            files,
            links,
            excluded,
            unreadable,
        }
    }

    /// Walks `root` (blocking). `root` must exist; unreadable directories
    /// below it are counted and skipped.
    pub fn walk(root: &Path, exclude: &Patterns) -> std::io::Result<Tree> {
        let canonical = std::fs::canonicalize(root)?;
        let mut walk = Walk {
            written_root: root.to_path_buf(),
            root: canonical.clone(),
            paths: Paths::with_capacity(1024, 64 * 1024),
            files: Vec::new(),
            links: HashMap::new(),
            unreadable: 0,
        };
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(dir) = stack.pop() {
            walk.directory(&dir, &mut stack);
        }
        Ok(Tree::assemble(
            canonical,
            walk.paths,
            walk.files,
            walk.links,
            exclude,
            walk.unreadable,
        ))
    }

    /// A tree from a list, for tests and the state-size benchmark.
    pub fn from_list<'a, P: AsRef<[u8]>>(
        root: PathBuf,
        files: impl IntoIterator<Item = (P, FileMeta)>,
        links: impl IntoIterator<Item = (&'a [u8], Link)>,
        exclude: &Patterns,
    ) -> Tree {
        let mut paths = Paths::default();
        let mut metas = Vec::new();
        for (p, m) in files {
            let p = p.as_ref();
            if paths.find(p).is_none() && paths.push(p).is_some() {
                metas.push(m);
            }
        }
        let links = links.into_iter().map(|(p, l)| (p.into(), l)).collect();
        Tree::assemble(root, paths, metas, links, exclude, 0)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn path(&self, id: FileId) -> &[u8] {
        self.paths.get(id)
    }

    pub fn find(&self, path: &[u8]) -> Option<FileId> {
        self.paths.find(path)
    }

    pub fn meta(&self, id: FileId) -> Option<FileMeta> {
        self.files.get(id as usize).copied()
    }

    pub fn excluded(&self, id: FileId) -> bool {
        self.excluded.get(id as usize)
    }

    pub fn links(&self) -> usize {
        self.links.len()
    }

    pub fn digest(&self, id: FileId) -> Option<&[u8; 32]> {
        self.digests.get(id as usize)?.get()
    }

    /// Records a file's SHA-256 (once: a file's version does not change
    /// within one tree).
    pub fn set_digest(&self, id: FileId, digest: [u8; 32]) {
        if let Some(slot) = self.digests.get(id as usize) {
            let _ = slot.set(digest);
        }
    }

    pub fn hashed(&self) -> usize {
        self.digests.iter().filter(|d| d.get().is_some()).count()
    }

    pub fn count_download(&self, id: FileId) {
        if let Some(c) = self.downloads.get(id as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn downloads(&self, id: FileId) -> u32 {
        self.downloads
            .get(id as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The `n` most downloaded files, most first.
    pub fn top(&self, n: usize) -> Vec<(FileId, u32)> {
        let mut top: Vec<(FileId, u32)> = Vec::with_capacity(n + 1);
        for (id, c) in self.downloads.iter().enumerate() {
            let c = c.load(Ordering::Relaxed);
            if c == 0 || (top.len() == n && top.last().is_some_and(|l| l.1 >= c)) {
                continue;
            }
            let at = top.partition_point(|t| t.1 >= c);
            top.insert(at, (id as FileId, c));
            top.truncate(n);
        }
        top
    }

    /// Carries what is known of unchanged files (digests) and of every
    /// file still there (downloads) over from the tree this one replaces.
    pub fn inherit(&self, old: &Tree) {
        for id in 0..self.len() as FileId {
            let Some(old_id) = old.find(self.path(id)) else {
                continue;
            };
            let n = old.downloads(old_id);
            if n > 0 {
                self.downloads[id as usize].store(n, Ordering::Relaxed);
            }
            if old.meta(old_id) == self.meta(id)
                && let Some(d) = old.digest(old_id)
            {
                self.set_digest(id, *d);
            }
        }
    }

    /// What `path` (relative to the root, no leading `/`) names, following
    /// links inside the tree. No file system access.
    pub fn resolve(&self, path: &[u8]) -> Resolved {
        if let Some(id) = self.paths.find(path) {
            return Resolved::File {
                id,
                via_link: false,
            };
        }
        if self.links.is_empty() {
            return Resolved::Missing;
        }
        let mut current = path.to_vec();
        for _ in 0..MAX_LINKS {
            let mut replaced = false;
            let ends = current
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(i, _)| i)
                .chain(std::iter::once(current.len()));
            for end in ends {
                match self.links.get(&current[..end]) {
                    Some(Link::Outside) => return Resolved::Outside,
                    Some(Link::Inside(target)) => {
                        let mut next = target.to_vec();
                        next.extend_from_slice(&current[end..]);
                        current = next;
                        replaced = true;
                        break;
                    }
                    None => {}
                }
            }
            if !replaced {
                return Resolved::Missing;
            }
            if let Some(id) = self.paths.find(&current) {
                return Resolved::File { id, via_link: true };
            }
        }
        Resolved::Missing
    }

    /// Heap bytes held by the index (paths, metadata, digests, counters).
    pub fn heap_bytes(&self) -> usize {
        let links: usize = self
            .links
            .iter()
            .map(|(k, v)| {
                k.len()
                    + 48
                    + match v {
                        Link::Inside(t) => t.len(),
                        Link::Outside => 0,
                    }
            })
            .sum();
        self.paths.heap_bytes()
            + self.files.capacity() * std::mem::size_of::<FileMeta>()
            + self.digests.capacity() * std::mem::size_of::<OnceLock<[u8; 32]>>()
            + self.downloads.capacity() * 4
            + self.excluded.heap_bytes()
            + links
    }
}

struct Walk {
    /// The root as configured (absolute links may name it).
    written_root: PathBuf,
    root: PathBuf,
    paths: Paths,
    files: Vec<FileMeta>,
    links: HashMap<Box<[u8]>, Link>,
    unreadable: u64,
}

impl Walk {
    fn directory(&mut self, dir: &[u8], stack: &mut Vec<Vec<u8>>) {
        let full = self.root.join(OsStr::from_bytes(dir));
        let Ok(entries) = std::fs::read_dir(&full) else {
            self.unreadable += 1;
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let mut rel = dir.to_vec();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let Ok(meta) = entry.metadata() else { continue };
            let kind = meta.file_type();
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_file() {
                if self.paths.push(&rel).is_some() {
                    self.files.push(FileMeta {
                        size: meta.len(),
                        mtime: meta.mtime(),
                    });
                }
            } else if kind.is_symlink()
                && let Ok(target) = std::fs::read_link(entry.path())
            {
                let link = self.link(dir, &target);
                self.links.insert(rel.into(), link);
            }
        }
    }

    /// Where a link in `dir` pointing at `target` leads, lexically.
    fn link(&self, dir: &[u8], target: &Path) -> Link {
        let rel: Vec<u8> = if target.is_absolute() {
            let inside = target
                .strip_prefix(&self.root)
                .or_else(|_| target.strip_prefix(&self.written_root));
            match inside {
                Ok(rest) => rest.as_os_str().as_bytes().to_vec(),
                Err(_) => return Link::Outside,
            }
        } else {
            let mut joined = dir.to_vec();
            if !joined.is_empty() {
                joined.push(b'/');
            }
            joined.extend_from_slice(target.as_os_str().as_bytes());
            joined
        };
        match normalise(&rel) {
            Some(path) if !path.is_empty() => Link::Inside(path.into()),
            _ => Link::Outside,
        }
    }
}

/// `a/./b/../c` → `a/c`; `None` when `..` climbs above the start.
pub fn normalise(path: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join(&b'/'))
}

#[cfg(test)]
mod tests;
