//! Finding out what a mirror has: its listing (`rsync --list-only` through
//! the rsync binary when it has an `rsync` URL, else its HTTP directory
//! listings, walked through the directories the local tree has) is matched
//! against the local tree. A copy counts only with the local size and a
//! modification time not older than the local one's (less
//! `mtime_tolerance`); a rounded size from an HTTP listing is confirmed
//! with a HEAD request.

use std::collections::{HashSet, VecDeque};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::bits::Bits;
use crate::fetch::{self, FetchError, Request};
use crate::listing::{self, Entry, Kind, Size};
use crate::mirror::{Holdings, Profile};
use crate::paths::FileId;
use crate::render::{join, url_path};
use crate::tree::Tree;

/// Rounded sizes confirmed by HEAD per scan, at most.
const MAX_CONFIRM: usize = 10_000;
/// Largest directory listing read.
const MAX_LISTING: usize = 256 << 20;
/// Stale paths kept for the report.
const EXAMPLES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("rsync: {0}")]
    Rsync(String),
    #[error("listing {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("listing {url}: status {status}")]
    Status { url: String, status: u16 },
    #[error("timed out")]
    Timeout,
    #[error("the mirror has no base URL to scan")]
    NoUrl,
}

/// Matches listing entries against the tree (no I/O).
pub struct Matcher<'t> {
    tree: &'t Tree,
    tolerance: i64,
    pub has: Bits,
    pub stale: u32,
    pub examples: Vec<String>,
    /// Files listed with a rounded size that could be right.
    pub confirm: Vec<FileId>,
    pub listed: u64,
}

impl<'t> Matcher<'t> {
    pub fn new(tree: &'t Tree, tolerance: Duration) -> Matcher<'t> {
        Matcher {
            tree,
            tolerance: i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX),
            has: Bits::new(tree.len()),
            stale: 0,
            examples: Vec::new(),
            confirm: Vec::new(),
            listed: 0,
        }
    }

    /// One entry of the listing of directory `dir` (relative, no slashes
    /// at either end; empty for the root).
    pub fn entry(&mut self, dir: &[u8], e: &Entry) {
        if e.kind != Kind::File {
            return;
        }
        self.listed += 1;
        let mut path = dir.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&e.path);
        let Some(id) = self.tree.find(&path) else {
            return;
        };
        let Some(local) = self.tree.meta(id) else {
            return;
        };
        let fresh = e
            .mtime
            .is_none_or(|m| m.saturating_add(self.tolerance) >= local.mtime);
        match e.size {
            Size::Exact(n) if n == local.size && fresh => self.has.set(id as usize),
            Size::About { .. } if e.size.admits(local.size) && fresh => self.confirm.push(id),
            _ => {
                self.stale += 1;
                if self.examples.len() < EXAMPLES {
                    self.examples
                        .push(String::from_utf8_lossy(&path).into_owned());
                }
            }
        }
    }

    /// The holdings, with the smallest non-empty file as the probe.
    pub fn finish(self) -> Holdings {
        let probe = self
            .has
            .ones()
            .filter_map(|i| {
                let id = i as FileId;
                self.tree
                    .meta(id)
                    .filter(|m| m.size > 0)
                    .map(|m| (m.size, id))
            })
            .min()
            .map(|(_, id)| id);
        Holdings {
            generation: self.tree.generation,
            has: self.has,
            stale: self.stale,
            stale_examples: self.examples,
            scanned_at: Some(SystemTime::now()),
            probe,
        }
    }
}

/// What the scan of one mirror needs from the set.
pub struct Job<'a> {
    pub profile: &'a Profile,
    pub tree: &'a Arc<Tree>,
    pub tolerance: Duration,
    /// Per request (HTTP) or for the whole listing (rsync).
    pub timeout: Duration,
    pub tls: Option<&'a levee_tls::Connector>,
}

pub async fn scan(job: Job<'_>) -> Result<Holdings, ScanError> {
    let mut m = Matcher::new(job.tree, job.tolerance);
    if let Some(url) = &job.profile.config.rsync {
        rsync(url, job.timeout, &mut m).await?;
    } else {
        let base = job.profile.base(false).ok_or(ScanError::NoUrl)?;
        http(base, &job, &mut m).await?;
    }
    confirm(&job, &mut m).await;
    Ok(m.finish())
}

async fn rsync(url: &str, timeout: Duration, m: &mut Matcher<'_>) -> Result<(), ScanError> {
    let secs = timeout.as_secs().max(1);
    let mut child = Command::new("rsync")
        .args(["-r", "--list-only", "--no-motd"])
        .arg(format!("--timeout={secs}"))
        .arg(format!("--contimeout={secs}"))
        .arg(format!("{url}/"))
        // Times in the listing are in the listing process's zone.
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ScanError::Rsync(format!("cannot run rsync: {e}")))?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| ScanError::Rsync("no stdout".into()))?;
    let mut parser = listing::rsync::Parser::default();
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = out
            .read(&mut buf)
            .await
            .map_err(|e| ScanError::Rsync(e.to_string()))?;
        if n == 0 {
            break;
        }
        parser.push(&buf[..n], &mut entries);
        for e in entries.drain(..) {
            m.entry(b"", &e);
        }
    }
    parser.finish(&mut entries);
    for e in entries.drain(..) {
        m.entry(b"", &e);
    }
    let mut err = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut err).await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ScanError::Rsync(e.to_string()))?;
    // 23 and 24: some files could not be listed or vanished; the rest is good.
    match status.code() {
        Some(0 | 23 | 24) => Ok(()),
        _ => Err(ScanError::Rsync(format!(
            "{status}: {}",
            String::from_utf8_lossy(&err).trim()
        ))),
    }
}

/// The directories of the tree (relative, no trailing slash; "" the root).
fn directories(tree: &Tree) -> HashSet<Vec<u8>> {
    let mut dirs = HashSet::new();
    dirs.insert(Vec::new());
    for id in 0..tree.len() as FileId {
        let p = tree.path(id);
        for (i, b) in p.iter().enumerate() {
            if *b == b'/' {
                dirs.insert(p[..i].to_vec());
            }
        }
    }
    dirs
}

async fn http(base: &str, job: &Job<'_>, m: &mut Matcher<'_>) -> Result<(), ScanError> {
    let dirs = directories(job.tree);
    let mut queue: VecDeque<Vec<u8>> = VecDeque::from([Vec::new()]);
    let mut seen = HashSet::new();
    while let Some(dir) = queue.pop_front() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let url = if dir.is_empty() {
            format!("{base}/")
        } else {
            format!("{base}/{}/", url_path(&dir))
        };
        let mut parser = listing::http::Parser::default();
        let mut entries = Vec::new();
        let reply = {
            let mut sink = |chunk: &[u8]| parser.push(chunk, &mut entries);
            let req = Request {
                method: "GET",
                range: None,
                max_body: MAX_LISTING,
                sink: Some(&mut sink),
            };
            tokio::time::timeout(job.timeout, fetch::fetch(job.tls, &url, req))
                .await
                .map_err(|_| ScanError::Timeout)?
        };
        let reply = reply.map_err(|source| ScanError::Http {
            url: url.clone(),
            source,
        })?;
        match reply.status {
            200 => {}
            // A partial mirror lacks whole directories.
            404 | 403 if !dir.is_empty() => continue,
            status => return Err(ScanError::Status { url, status }),
        }
        parser.finish(&mut entries);
        for e in &entries {
            if e.kind == Kind::Dir {
                let mut sub = dir.clone();
                if !sub.is_empty() {
                    sub.push(b'/');
                }
                sub.extend_from_slice(&e.path);
                if dirs.contains(&sub) {
                    queue.push_back(sub);
                }
            } else {
                m.entry(&dir, e);
            }
        }
    }
    Ok(())
}

/// Confirms rounded sizes with HEAD requests.
async fn confirm(job: &Job<'_>, m: &mut Matcher<'_>) {
    let Some(base) = job.profile.base(false) else {
        return;
    };
    let ids: Vec<FileId> = m.confirm.drain(..).take(MAX_CONFIRM).collect();
    for id in ids {
        let Some(local) = job.tree.meta(id) else {
            continue;
        };
        let url = join(base, job.tree.path(id));
        let req = Request {
            method: "HEAD",
            range: None,
            max_body: 0,
            sink: None,
        };
        let ok = matches!(
            tokio::time::timeout(job.timeout, fetch::fetch(job.tls, &url, req)).await,
            Ok(Ok(r)) if r.status == 200 && r.content_length == Some(local.size)
        );
        if ok {
            m.has.set(id as usize);
        } else {
            m.stale += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::FileMeta;

    #[test]
    fn only_same_size_and_fresh_copies_count() {
        let files: [(&[u8], FileMeta); 4] = [
            (
                b"a/new.iso",
                FileMeta {
                    size: 100,
                    mtime: 1_000_000,
                },
            ),
            (
                b"a/old.iso",
                FileMeta {
                    size: 100,
                    mtime: 1_000_000,
                },
            ),
            (
                b"a/resized.iso",
                FileMeta {
                    size: 100,
                    mtime: 1_000_000,
                },
            ),
            (
                b"b.iso",
                FileMeta {
                    size: 5,
                    mtime: 1_000_000,
                },
            ),
        ];
        let tree = Tree::from_list("/".into(), files, [], &Default::default());
        let mut m = Matcher::new(&tree, Duration::from_secs(60));
        let e = |p: &[u8], size, mtime| Entry {
            path: p.to_vec(),
            kind: Kind::File,
            size,
            mtime,
        };
        m.entry(b"a", &e(b"new.iso", Size::Exact(100), Some(999_990)));
        m.entry(b"a", &e(b"old.iso", Size::Exact(100), Some(900_000)));
        m.entry(b"a", &e(b"resized.iso", Size::Exact(99), None));
        m.entry(
            b"",
            &e(
                b"b.iso",
                Size::About {
                    value: 0,
                    slack: 1024,
                },
                None,
            ),
        );
        m.entry(b"", &e(b"unknown.iso", Size::Exact(1), None));
        assert_eq!(m.confirm, [3]);
        assert_eq!(m.listed, 5);
        let h = m.finish();
        assert_eq!(h.has.ones().collect::<Vec<_>>(), [0]);
        assert_eq!(h.stale, 2);
        assert_eq!(h.stale_examples, ["a/old.iso", "a/resized.iso"]);
        assert_eq!(h.probe, Some(0));
        assert_eq!(h.generation, tree.generation);
    }
}
