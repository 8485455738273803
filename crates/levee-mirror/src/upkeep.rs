//! A set's background work, on the control thread: walking the tree and
//! scanning the mirrors (every `scan_interval`, or at once when asked),
//! probing each mirror, hashing new file versions, and checking sampled
//! redirects. [`run`] lives until it is dropped (levee-server restarts it
//! with each site); what it learnt stays in the set.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use levee_upstream::health::Counter;
use tokio::task::{AbortHandle, JoinSet};

use crate::choose::Rng;
use crate::health::{self, Verdict};
use crate::paths::FileId;
use crate::scan::{self, Job};
use crate::set::MirrorSet;
use crate::tree::Tree;

/// Scans running at once.
const PARALLEL_SCANS: usize = 4;
/// One listing request, at most.
const LISTING_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the set's background work until dropped.
pub async fn run(set: Arc<MirrorSet>) {
    let mut tasks = JoinSet::new();
    tasks.spawn(scans(set.clone()));
    tasks.spawn(hashing(set.clone()));
    tasks.spawn(checks(set.clone()));
    let mut probes: HashMap<String, AbortHandle> = HashMap::new();
    loop {
        let view = set.view();
        probes.retain(|name, task| {
            let keep = view.mirrors.iter().any(|m| m.profile.name() == name);
            if !keep {
                task.abort();
            }
            keep
        });
        for m in &view.mirrors {
            let name = m.profile.name();
            if !probes.contains_key(name) {
                let task = tasks.spawn(probe(set.clone(), name.to_owned()));
                probes.insert(name.to_owned(), task);
            }
        }
        drop(view);
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Walks the tree, then scans every mirror; again every `scan_interval`
/// or when `levee ctl mirrors scan` asks. Restarted by a reload, it first
/// waits out the interval of the last full scan, scanning meanwhile only
/// mirrors that were never scanned (new in the config).
async fn scans(set: Arc<MirrorSet>) {
    let mut asked = false;
    loop {
        let interval = set.settings().scan_interval;
        let last = set.last_scan.lock().ok().and_then(|l| *l);
        let due = asked || last.is_none_or(|t| t.elapsed() >= interval);
        if !due {
            let unscanned: Vec<String> = set
                .view()
                .mirrors
                .iter()
                .filter(|m| m.live.enabled() && m.holdings.scanned_at.is_none())
                .map(|m| m.profile.name().to_owned())
                .collect();
            for name in &unscanned {
                scan_one(&set, name).await;
            }
            let wait = last.map_or(Duration::ZERO, |t| interval.saturating_sub(t.elapsed()));
            asked = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                () = set.scan_now.notified() => true,
            };
            continue;
        }
        let started = Instant::now();
        if let Ok(mut l) = set.last_scan.lock() {
            *l = Some(started);
        }
        walk(&set).await;
        let view = set.view();
        let mut running = JoinSet::new();
        for m in view.mirrors.iter().filter(|m| m.live.enabled()) {
            while running.len() >= PARALLEL_SCANS {
                running.join_next().await;
            }
            let (set, name) = (set.clone(), m.profile.name().to_owned());
            running.spawn(async move { scan_one(&set, &name).await });
        }
        while running.join_next().await.is_some() {}
        tracing::info!(set = %set.name, mirrors = view.mirrors.len(), took = ?started.elapsed(), "mirrors scanned");
        drop(view);
        asked = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            () = set.scan_now.notified() => true,
        };
    }
}

async fn walk(set: &Arc<MirrorSet>) {
    let root = set.settings().root.clone();
    let exclude = set.exclude();
    let owner = set.clone();
    let walked = tokio::task::spawn_blocking(move || {
        let tree = Tree::walk(&root, &exclude)?;
        owner.store.load_into(&tree);
        Ok::<Tree, std::io::Error>(tree)
    })
    .await;
    match walked {
        Ok(Ok(tree)) => {
            tracing::debug!(set = %set.name, files = tree.len(), links = tree.links(), "tree walked");
            set.replace_tree(tree);
        }
        Ok(Err(e)) => tracing::error!(set = %set.name, error = %e, "cannot walk the tree"),
        Err(e) => tracing::error!(set = %set.name, error = %e, "tree walk failed"),
    }
}

async fn scan_one(set: &MirrorSet, name: &str) {
    let view = set.view();
    let Some(m) = view.mirrors.iter().find(|m| m.profile.name() == name) else {
        return;
    };
    let settings = set.settings();
    let job = Job {
        profile: &m.profile,
        tree: &view.tree,
        tolerance: settings.mtime_tolerance,
        timeout: LISTING_TIMEOUT.max(settings.probe_timeout),
        tls: set.tls(),
    };
    let outcome = tokio::time::timeout(settings.scan_interval, scan::scan(job)).await;
    let report = match outcome {
        Ok(Ok(holdings)) => {
            let report = format!(
                "{} of {} files, {} stale",
                holdings.has.count(),
                view.tree.len(),
                holdings.stale
            );
            tracing::info!(set = %set.name, mirror = %name, %report, "mirror scanned");
            set.replace_holdings(name, holdings);
            report
        }
        Ok(Err(e)) => {
            tracing::warn!(set = %set.name, mirror = %name, error = %e, "mirror scan failed");
            format!("failed: {e}")
        }
        Err(_) => {
            tracing::warn!(set = %set.name, mirror = %name, "mirror scan timed out");
            "timed out".to_owned()
        }
    };
    if let Ok(mut r) = m.live.last_scan.lock() {
        *r = Some(report);
    }
}

/// Probes mirror `name` until it leaves the list.
async fn probe(set: Arc<MirrorSet>, name: String) {
    let mut rng = Rng::from_entropy();
    let mut last_spot = Instant::now();
    let mut counter: Option<Counter> = None;
    loop {
        let settings = set.settings_owned();
        let view = set.view();
        let Some(m) = view
            .mirrors
            .iter()
            .find(|m| m.profile.name() == name)
            .cloned()
        else {
            return;
        };
        let counter = counter.get_or_insert_with(|| {
            Counter::new(settings.probe_rise, settings.probe_fall, m.live.up())
        });
        let verdict =
            tokio::time::timeout(settings.probe_timeout, health::probe(&set, &m, &view.tree))
                .await
                .unwrap_or_else(|_| Verdict::Down("probe timed out".into()));
        let passed = verdict == Verdict::Pass;
        match verdict {
            Verdict::Pass => {}
            Verdict::Down(why) => m.live.note(Some(why)),
            Verdict::Misbehaved(why) => set.strike(&name, why),
        }
        if let Some(up) = counter.record(passed) {
            m.live.set_up(up);
            if up {
                tracing::info!(set = %set.name, mirror = %name, "mirror probes pass: offered again");
            } else {
                tracing::warn!(set = %set.name, mirror = %name, problem = ?m.live.problem(), "mirror probe failed: not offered");
            }
        }
        if m.usable() && last_spot.elapsed() >= settings.spot_check_interval {
            last_spot = Instant::now();
            let spot = health::spot_check(&set, &m, &view.tree, rng.next_u64());
            if let Ok(Some(Verdict::Misbehaved(why))) =
                tokio::time::timeout(settings.probe_timeout.saturating_mul(4), spot).await
            {
                set.strike(&name, why);
            }
        }
        drop(view);
        let extra = u64::try_from(settings.probe_interval.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(settings.probe_jitter))
            / 100;
        let wait = settings
            .probe_interval
            .saturating_add(Duration::from_millis(rng.below(extra.saturating_add(1))));
        tokio::time::sleep(wait).await;
    }
}

/// Sets its flag when dropped, so a hash in progress on the blocking pool
/// stops when the upkeep does.
struct Cancel(Arc<AtomicBool>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Hashes every file version that may be redirected and has no hash yet,
/// one at a time at `hash_rate`.
async fn hashing(set: Arc<MirrorSet>) {
    let cancel = Cancel(Arc::new(AtomicBool::new(false)));
    loop {
        let tree = set.view().tree.clone();
        let settings = set.settings_owned();
        let todo: Vec<FileId> = (0..tree.len() as FileId)
            .filter(|&id| {
                tree.digest(id).is_none()
                    && !tree.excluded(id)
                    && tree.meta(id).is_some_and(|m| m.size >= settings.min_size)
            })
            .collect();
        for id in todo {
            if set.view().tree.generation != tree.generation {
                break;
            }
            let (Some(meta), path) = (
                tree.meta(id),
                tree.root.join(std::ffi::OsStr::from_bytes(tree.path(id))),
            ) else {
                continue;
            };
            let flag = cancel.0.clone();
            let (piece, rate) = (settings.piece_size, settings.hash_rate);
            let hashed = tokio::task::spawn_blocking(move || {
                crate::hash::hash_file(&path, meta, piece, rate, &flag)
            })
            .await;
            match hashed {
                Ok(Ok(Some(sums))) => {
                    if let Err(e) = set.store.record(tree.path(id), meta, &sums) {
                        tracing::warn!(set = %set.name, error = %e, "cannot save a hash");
                    }
                    tree.set_digest(id, sums.sha256);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(set = %set.name, error = %e, "cannot hash a file"),
                Err(_) => return,
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

use std::os::unix::ffi::OsStrExt as _;

/// Checks sampled redirects as they come.
async fn checks(set: Arc<MirrorSet>) {
    loop {
        let next = set.checks.lock().ok().and_then(|mut q| q.pop_front());
        let Some(c) = next else {
            set.checks_ready.notified().await;
            continue;
        };
        let timeout = set.settings().probe_timeout;
        if let Ok(Verdict::Misbehaved(why)) =
            tokio::time::timeout(timeout, health::check(&set, &c)).await
        {
            set.strike(&c.mirror, why);
        }
    }
}
