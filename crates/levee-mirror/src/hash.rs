//! Hashes of the local files: SHA-256 of each file version (size and
//! modification time), and SHA-256 of each piece of files larger than
//! `piece_size`, computed once in the background and kept in the state
//! directory so a restart does not compute them again.
//!
//! On disk: `hashes`, one line per hashed version (`SHA256HEX SIZE MTIME
//! PATH`, the path percent-encoded), appended as files are hashed and
//! rewritten when most lines are out of date; `pieces/SHA256HEX`, the
//! piece length (8 bytes, big-endian) followed by each piece's digest.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};

use crate::render::hex;
use crate::tree::{FileMeta, Tree};

/// Read size while hashing; the rate limit is applied between reads.
const CHUNK: usize = 1 << 20;

#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    append: Mutex<Option<File>>,
}

/// A file's hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sums {
    pub sha256: [u8; 32],
    /// Piece length and digests, for files larger than one piece.
    pub pieces: Option<(u64, Vec<[u8; 32]>)>,
}

impl Store {
    /// Opens (creating) the state directory.
    pub fn open(dir: &Path) -> io::Result<Store> {
        std::fs::create_dir_all(dir.join("pieces"))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            append: Mutex::new(None),
        })
    }

    fn list(&self) -> PathBuf {
        self.dir.join("hashes")
    }

    /// Gives `tree` every digest on disk whose version matches; returns
    /// how many. Rewrites the file when most of it is out of date.
    pub fn load_into(&self, tree: &Tree) -> usize {
        let Ok(file) = File::open(self.list()) else {
            return 0;
        };
        let mut lines = 0usize;
        let mut current: Vec<String> = Vec::new();
        for line in BufReader::new(file).split(b'\n').map_while(Result::ok) {
            lines += 1;
            let Some((sha, meta, path)) = parse_line(&line) else {
                continue;
            };
            if let Some(id) = tree.find(&path)
                && tree.meta(id) == Some(meta)
            {
                tree.set_digest(id, sha);
                current.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
        if lines > 2 * current.len() + 1024 {
            let _ = self.rewrite(&current);
        }
        tree.hashed()
    }

    fn rewrite(&self, lines: &[String]) -> io::Result<()> {
        let tmp = self.dir.join("hashes.tmp");
        let mut f = File::create(&tmp)?;
        for l in lines {
            writeln!(f, "{l}")?;
        }
        f.sync_all()?;
        let mut append = self
            .append
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        std::fs::rename(&tmp, self.list())?;
        *append = None;
        Ok(())
    }

    /// Appends a hashed version (and its pieces).
    pub fn record(&self, path: &[u8], meta: FileMeta, sums: &Sums) -> io::Result<()> {
        if let Some((len, pieces)) = &sums.pieces {
            let mut bytes = Vec::with_capacity(8 + pieces.len() * 32);
            bytes.extend_from_slice(&len.to_be_bytes());
            for p in pieces {
                bytes.extend_from_slice(p);
            }
            let name = self.dir.join("pieces").join(hex(&sums.sha256));
            std::fs::write(name, bytes)?;
        }
        let line = format!(
            "{} {} {} {}\n",
            hex(&sums.sha256),
            meta.size,
            meta.mtime,
            encode(path)
        );
        let mut append = self
            .append
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        if append.is_none() {
            *append = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.list())?,
            );
        }
        match append.as_mut() {
            Some(f) => f.write_all(line.as_bytes()),
            None => Ok(()),
        }
    }

    /// The piece hashes of the file whose SHA-256 is `sha`, if it has them.
    pub fn pieces(&self, sha: &[u8; 32]) -> Option<(u64, Vec<[u8; 32]>)> {
        let bytes = std::fs::read(self.dir.join("pieces").join(hex(sha))).ok()?;
        let (len, rest) = bytes.split_first_chunk::<8>()?;
        let len = u64::from_be_bytes(*len);
        if len == 0 || rest.len() % 32 != 0 {
            return None;
        }
        let pieces = rest
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect();
        Some((len, pieces))
    }
}

fn parse_line(line: &[u8]) -> Option<([u8; 32], FileMeta, Vec<u8>)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.splitn(4, ' ');
    let sha = unhex(parts.next()?)?;
    let size = parts.next()?.parse().ok()?;
    let mtime = parts.next()?.parse().ok()?;
    let path = decode(parts.next()?.trim_end())?;
    Some((sha, FileMeta { size, mtime }, path))
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn encode(path: &[u8]) -> String {
    let mut s = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_graphic() && b != b'%' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Hashes `path`, expected at version `meta`, reading at most `rate`
/// bytes a second (blocking; run it off the event loop). `None` when the
/// file changed meanwhile or `cancel` was set.
pub fn hash_file(
    path: &Path,
    meta: FileMeta,
    piece_size: u64,
    rate: u64,
    cancel: &AtomicBool,
) -> io::Result<Option<Sums>> {
    use std::os::unix::fs::MetadataExt;
    let mut file = File::open(path)?;
    let version = |m: &std::fs::Metadata| FileMeta {
        size: m.len(),
        mtime: m.mtime(),
    };
    if version(&file.metadata()?) != meta {
        return Ok(None);
    }
    let with_pieces = meta.size > piece_size;
    let mut whole = Context::new(&SHA256);
    let mut piece = Context::new(&SHA256);
    let mut in_piece = 0u64;
    let mut pieces = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let started = Instant::now();
    let mut read_total = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        whole.update(data);
        while with_pieces && !data.is_empty() {
            let take = (piece_size - in_piece).min(data.len() as u64) as usize;
            piece.update(&data[..take]);
            in_piece += take as u64;
            data = &data[take..];
            if in_piece == piece_size {
                pieces.push(finish(std::mem::replace(&mut piece, Context::new(&SHA256))));
                in_piece = 0;
            }
        }
        read_total += n as u64;
        // Stay at `rate`: sleep off any lead over it.
        let due = Duration::from_secs_f64(read_total as f64 / rate.max(1) as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    if with_pieces && in_piece > 0 {
        pieces.push(finish(piece));
    }
    if read_total != meta.size || version(&std::fs::metadata(path)?) != meta {
        return Ok(None);
    }
    Ok(Some(Sums {
        sha256: finish(whole),
        pieces: with_pieces.then_some((piece_size, pieces)),
    }))
}

fn finish(c: Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    c.update(bytes);
    finish(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("levee-mirror-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn hashes_pieces_and_keeps_them() {
        let dir = temp("hash");
        let root = dir.join("tree");
        std::fs::create_dir_all(root.join("d")).expect("mkdir");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("d/f x"), &data).expect("write");
        let m = std::fs::metadata(root.join("d/f x")).expect("stat");
        let meta = FileMeta {
            size: m.len(),
            mtime: m.mtime(),
        };
        let cancel = AtomicBool::new(false);
        let sums = hash_file(&root.join("d/f x"), meta, 4096, 1 << 30, &cancel)
            .expect("read")
            .expect("unchanged");
        assert_eq!(sums.sha256, sha256(&data));
        let (len, pieces) = sums.pieces.clone().expect("pieces");
        assert_eq!(len, 4096);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[2], sha256(&data[8192..]));
        // A changed version is not hashed.
        let other = FileMeta { size: 1, ..meta };
        assert!(
            hash_file(&root.join("d/f x"), other, 4096, 1 << 30, &cancel)
                .expect("read")
                .is_none()
        );

        let store = Store::open(&dir.join("state")).expect("open");
        store.record(b"d/f x", meta, &sums).expect("record");
        let tree = Tree::walk(&root, &Default::default()).expect("walk");
        assert_eq!(
            Store::open(&dir.join("state"))
                .expect("open")
                .load_into(&tree),
            1
        );
        let id = tree.find(b"d/f x").expect("indexed");
        assert_eq!(tree.digest(id), Some(&sums.sha256));
        assert_eq!(store.pieces(&sums.sha256), sums.pieces);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
