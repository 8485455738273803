//! Is a mirror serving what it should? Three checks, all against files the
//! mirror's scan says it has:
//!
//! - the **probe** (every `probe_interval`, with jitter): fetches a real
//!   small file (`probe_path`, else the smallest file found there) and
//!   compares its size, and its SHA-256 when known, with the local copy;
//! - the **spot check** (every `spot_check_interval`): a ranged GET of one
//!   random piece of a random hashed file, compared with the local piece
//!   hash (a whole small file with the file hash);
//! - the **redirect check** (one redirect in `verify_sample`): a HEAD of the
//!   URL a client was sent to, which must exist with the local size.
//!
//! A failed connection or a 5xx only marks the mirror down; a wrong size, a
//! wrong hash or a 404 for a file it listed is a misbehaviour, counted
//! towards `max_strikes`, and the file is taken off that mirror at once.

use crate::fetch::{self, Reply, Request};
use crate::hash::sha256;
use crate::mirror::Mirror;
use crate::render::join;
use crate::set::{Check, MirrorSet};
use crate::tree::Tree;

/// Files up to this size are fetched whole by probes; larger ones get a HEAD.
const PROBE_WHOLE: u64 = 1 << 20;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Unreachable or failing: out of rotation until probes pass again.
    Down(String),
    /// Serving the wrong thing: a strike, and out of rotation.
    Misbehaved(String),
}

async fn get(
    set: &MirrorSet,
    url: &str,
    method: &str,
    range: Option<(u64, u64)>,
    max: usize,
) -> Result<Reply, String> {
    let req = Request {
        method,
        range,
        max_body: max,
        sink: None,
    };
    fetch::fetch(set.tls(), url, req)
        .await
        .map_err(|e| e.to_string())
}

/// Probes mirror `m` once (the caller bounds it in time).
pub async fn probe(set: &MirrorSet, m: &Mirror, tree: &Tree) -> Verdict {
    let Some(base) = m.profile.base(false) else {
        return Verdict::Down("no base URL".into());
    };
    let target = match &m.profile.config.probe_path {
        Some(p) => {
            let rel = p.trim_start_matches('/');
            Some((join(base, rel.as_bytes()), tree.find(rel.as_bytes())))
        }
        None => m
            .holdings
            .probe
            .filter(|_| m.holdings.generation == tree.generation)
            .map(|id| (join(base, tree.path(id)), Some(id))),
    };
    let Some((url, id)) = target else {
        // Not scanned yet: all that can be asked is whether it answers.
        return match get(set, &format!("{base}/"), "HEAD", None, 0).await {
            Ok(r) if r.status < 500 => Verdict::Pass,
            Ok(r) => Verdict::Down(format!("{base}/: status {}", r.status)),
            Err(e) => Verdict::Down(e),
        };
    };
    let meta = id.and_then(|id| tree.meta(id));
    let whole = meta.is_some_and(|m| m.size <= PROBE_WHOLE);
    let method = if whole { "GET" } else { "HEAD" };
    let reply = match get(set, &url, method, None, PROBE_WHOLE as usize).await {
        Ok(r) => r,
        Err(e) => return Verdict::Down(format!("{url}: {e}")),
    };
    match reply.status {
        200 => {}
        404 | 410 => {
            return Verdict::Misbehaved(format!("{url}: {} for a file it listed", reply.status));
        }
        s => return Verdict::Down(format!("{url}: status {s}")),
    }
    let Some(meta) = meta else {
        return Verdict::Pass;
    };
    let size = if whole {
        Some(reply.received)
    } else {
        reply.content_length
    };
    if size != Some(meta.size) {
        return Verdict::Misbehaved(format!(
            "{url}: {} bytes where the local copy has {}",
            size.map_or("unknown".into(), |s| s.to_string()),
            meta.size
        ));
    }
    if whole
        && let Some(d) = id.and_then(|id| tree.digest(id))
        && sha256(&reply.body) != *d
    {
        return Verdict::Misbehaved(format!("{url}: content differs from the local copy"));
    }
    Verdict::Pass
}

/// Compares one random slice of one random hashed file with the local
/// hash; `None` when the mirror has no hashed file yet. A bad copy is
/// taken off the mirror.
pub async fn spot_check(set: &MirrorSet, m: &Mirror, tree: &Tree, random: u64) -> Option<Verdict> {
    let base = m.profile.base(false)?;
    let len = tree.len() as u64;
    if len == 0 || m.holdings.generation != tree.generation {
        return None;
    }
    // A few random draws rather than a walk over every file.
    let id = (0..64u64)
        .map(|i| ((random.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))) % len) as u32)
        .find(|&id| m.has(tree.generation, id) && tree.digest(id).is_some())?;
    let meta = tree.meta(id)?;
    let digest = *tree.digest(id)?;
    let url = join(base, tree.path(id));
    let piece_size = set.settings().piece_size;
    let (range, expected) = if meta.size <= piece_size {
        (None, digest)
    } else {
        let (plen, pieces) = set.store.pieces(&digest)?;
        let i = random.rotate_left(17) % pieces.len() as u64;
        let start = i.checked_mul(plen).filter(|s| *s < meta.size)?;
        let end = start.saturating_add(plen).min(meta.size) - 1;
        (Some((start, end)), pieces[i as usize])
    };
    let want = range.map_or(meta.size, |(a, b)| b - a + 1);
    let verdict = match get(set, &url, "GET", range, want as usize).await {
        Err(e) => Verdict::Down(format!("{url}: {e}")),
        Ok(r) if r.status == 404 => Verdict::Misbehaved(format!("{url}: 404 for a file it listed")),
        Ok(r) if !(r.status == 200 && range.is_none() || r.status == 206 && range.is_some()) => {
            Verdict::Down(format!("{url}: status {}", r.status))
        }
        Ok(r) if sha256(&r.body) != expected => Verdict::Misbehaved(format!(
            "{url}: bytes {}-{} differ from the local copy",
            range.map_or(0, |r| r.0),
            range.map_or(meta.size.saturating_sub(1), |r| r.1)
        )),
        Ok(_) => Verdict::Pass,
    };
    if matches!(verdict, Verdict::Misbehaved(_)) {
        set.withdraw(m.profile.name(), tree.generation, id);
    }
    Some(verdict)
}

/// Checks a redirected URL with HEAD; a 404 or a wrong size takes the file
/// off the mirror. Anything else (unreachable, 5xx) is left to the probes.
pub async fn check(set: &MirrorSet, c: &Check) -> Verdict {
    let verdict = match get(set, &c.url, "HEAD", None, 0).await {
        Ok(r) if r.status == 404 || r.status == 410 => {
            Verdict::Misbehaved(format!("{}: {} through a redirect", c.url, r.status))
        }
        Ok(r) if r.status == 200 && r.content_length.is_some_and(|n| n != c.size) => {
            Verdict::Misbehaved(format!(
                "{}: {} bytes through a redirect, the local copy has {}",
                c.url,
                r.content_length.unwrap_or(0),
                c.size
            ))
        }
        _ => Verdict::Pass,
    };
    if matches!(verdict, Verdict::Misbehaved(_)) {
        set.withdraw(&c.mirror, c.generation, c.file);
    }
    verdict
}
