//! A `[mirrors.NAME]` set at run time: its settings, its current view
//! (the tree and the mirrors, swapped whole), GeoIP, hashes and counters.
//! Sets live in a process-wide registry by name, so a reload keeps what
//! was learnt (scans, health, hashes, counts) and only applies new settings.
//!
//! [`MirrorSet::decide`] is the request path: one view load, a GeoIP
//! lookup, a pass over the mirrors, no I/O and no lock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};
use levee_config::StaticAction;

use crate::MirrorError;
use crate::edits::{self, Source};
use crate::geo::{Geo, Whereabouts};
use crate::glob::Patterns;
use crate::hash::Store;
use crate::mirror::{Holdings, Live, Mirror, Profile};
use crate::paths::FileId;
use crate::stats::Stats;
use crate::tree::Tree;

mod decide;

/// Alternatives named in `Link: rel=duplicate` after the chosen mirror.
const ALTERNATIVES: usize = 4;
/// Redirected files waiting for their check, at most.
const MAX_PENDING_CHECKS: usize = 256;

/// The tree and the mirrors as one request sees them.
#[derive(Debug)]
pub struct View {
    pub tree: Arc<Tree>,
    pub mirrors: Vec<Mirror>,
}

/// A redirected file to check with a HEAD request (`verify_sample`).
#[derive(Debug, Clone)]
pub struct Check {
    pub mirror: String,
    pub url: String,
    pub generation: u64,
    pub file: FileId,
    pub size: u64,
}

#[derive(Debug)]
pub struct MirrorSet {
    pub name: String,
    settings: ArcSwap<levee_config::MirrorSet>,
    view: ArcSwap<View>,
    geo: ArcSwap<Geo>,
    /// How files are served locally (the static-file code's settings).
    local: ArcSwap<StaticAction>,
    exclude: ArcSwap<Patterns>,
    pub store: Store,
    pub stats: Stats,
    /// Mirrors added or changed through the control API; also serialises
    /// every change of the view.
    pub(crate) edits: Mutex<edits::Edits>,
    /// `levee ctl mirrors scan NAME`: wakes the scan loop.
    pub scan_now: tokio::sync::Notify,
    /// A runtime edit to write to the fleet's table: wakes the sharing
    /// task (levee-server), when there is one.
    pub share_now: tokio::sync::Notify,
    /// Whether edits are shared through a fleet (edits/shared.rs).
    pub(crate) shared: AtomicBool,
    pub(crate) checks: Mutex<VecDeque<Check>>,
    pub(crate) checks_ready: tokio::sync::Notify,
    /// When the last full walk and scan began: a reload restarts the
    /// background loops, which then wait out the rest of `scan_interval`.
    pub(crate) last_scan: Mutex<Option<Instant>>,
    /// The clock of mirror caps (seconds since this set was made).
    born: Instant,
    tls: OnceLock<Option<levee_tls::Connector>>,
}

/// What a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The file: a redirect, or the file itself.
    File,
    Metalink,
    MirrorList,
    Json,
}

/// A request as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Decoded and normalised, relative to the tree's root, no leading `/`.
    pub path: &'a [u8],
    /// The request named a directory (trailing `/`) or the root.
    pub directory: bool,
    /// The raw query, without `?`.
    pub query: &'a [u8],
    pub accept: Option<&'a [u8]>,
    pub client: IpAddr,
    pub https: bool,
    /// The `Host` the client used, for the documents' own URLs.
    pub host: &'a [u8],
    /// GET or HEAD (anything else is left to the static code to refuse).
    pub fetch: bool,
    pub now: Instant,
}

/// The decision.
#[derive(Debug)]
pub enum Answer {
    /// Serve from the local tree with the static-file code.
    Local,
    /// A symlink leads out of the tree: 403.
    Forbidden,
    /// 302 with these fields, `Location` first.
    Redirect { fields: Vec<(&'static str, String)> },
    /// 200 with a document made here.
    Document {
        content_type: &'static str,
        body: Vec<u8>,
    },
}

static SETS: Mutex<Option<HashMap<String, Arc<MirrorSet>>>> = Mutex::new(None);

impl MirrorSet {
    /// The set named in `config`, made on first use and given the new
    /// settings on later ones (reloads). Opens the GeoIP databases and the
    /// state directory; what fails refuses the start or the reload.
    pub fn obtain(config: &levee_config::MirrorSet) -> Result<Arc<MirrorSet>, MirrorError> {
        let geo = Geo::open(config.geoip.as_deref(), config.geoip_asn.as_deref())?;
        if !config.root.is_dir() {
            return Err(MirrorError::Root(config.root.clone()));
        }
        let mut sets = SETS.lock().map_err(|_| MirrorError::Poisoned)?;
        let sets = sets.get_or_insert_with(HashMap::new);
        if let Some(set) = sets.get(&config.name) {
            set.configure(config, geo)?;
            return Ok(set.clone());
        }
        let store = Store::open(&config.state_dir).map_err(|source| MirrorError::State {
            path: config.state_dir.clone(),
            source,
        })?;
        let saved = edits::Edits::load(&config.state_dir);
        let set = Arc::new(MirrorSet {
            name: config.name.clone(),
            settings: ArcSwap::from_pointee(config.clone()),
            view: ArcSwap::from_pointee(View {
                tree: Arc::new(Tree::empty(config.root.clone())),
                mirrors: Vec::new(),
            }),
            geo: ArcSwap::from_pointee(Geo::default()),
            local: ArcSwap::from_pointee(local_action(config)),
            exclude: ArcSwap::from_pointee(Patterns::new(&config.exclude)),
            store,
            stats: Stats::default(),
            edits: Mutex::new(saved),
            scan_now: tokio::sync::Notify::new(),
            share_now: tokio::sync::Notify::new(),
            shared: AtomicBool::new(false),
            checks: Mutex::new(VecDeque::new()),
            checks_ready: tokio::sync::Notify::new(),
            last_scan: Mutex::new(None),
            born: Instant::now(),
            tls: OnceLock::new(),
        });
        set.configure(config, geo)?;
        sets.insert(config.name.clone(), set.clone());
        Ok(set)
    }

    /// Applies `config`: settings, GeoIP, and the mirror list (the
    /// config's mirrors with the API's changes over them).
    fn configure(&self, config: &levee_config::MirrorSet, geo: Geo) -> Result<(), MirrorError> {
        let edits = self.edits.lock().map_err(|_| MirrorError::Poisoned)?;
        let old = self.settings.load_full();
        let same_tree = old.root == config.root && *old.exclude == *config.exclude;
        self.settings.store(Arc::new(config.clone()));
        self.geo.store(Arc::new(geo));
        self.local.store(Arc::new(local_action(config)));
        self.exclude.store(Arc::new(Patterns::new(&config.exclude)));
        let view = self.view.load_full();
        let tree = if same_tree {
            view.tree.clone()
        } else {
            // Another tree: walk and scan it at once.
            if let Ok(mut last) = self.last_scan.lock() {
                *last = None;
            }
            Arc::new(Tree::empty(config.root.clone()))
        };
        let list = edits.list(&config.mirrors);
        let mirrors = list
            .into_iter()
            .map(|(m, source)| {
                let before = view.mirrors.iter().find(|o| o.profile.name() == m.name);
                keep(before, m, source, tree.generation)
            })
            .collect();
        self.view.store(Arc::new(View { tree, mirrors }));
        Ok(())
    }

    pub fn settings(&self) -> Guard<Arc<levee_config::MirrorSet>> {
        self.settings.load()
    }

    pub fn settings_owned(&self) -> Arc<levee_config::MirrorSet> {
        self.settings.load_full()
    }

    pub fn view(&self) -> Arc<View> {
        self.view.load_full()
    }

    /// How the static-file code serves this tree locally.
    pub fn local(&self) -> Guard<Arc<StaticAction>> {
        self.local.load()
    }

    pub fn exclude(&self) -> Arc<Patterns> {
        self.exclude.load_full()
    }

    pub fn geo(&self) -> Guard<Arc<Geo>> {
        self.geo.load()
    }

    /// The TLS client for `https` mirrors (system roots); `None` when the
    /// system has none.
    pub fn tls(&self) -> Option<&levee_tls::Connector> {
        self.tls
            .get_or_init(|| {
                let settings = levee_tls::ClientSettings {
                    alpn: vec!["http/1.1".into()],
                    ..Default::default()
                };
                levee_tls::Connector::new(&settings)
                    .map_err(|e| tracing::warn!(set = %self.name, error = %e, "no TLS client for https mirrors"))
                    .ok()
            })
            .as_ref()
    }

    /// Swaps in a new tree, carrying over what is known of unchanged files
    /// and each mirror's holdings of them.
    pub fn replace_tree(&self, tree: Tree) {
        let Ok(_edits) = self.edits.lock() else {
            return;
        };
        let view = self.view.load_full();
        tree.inherit(&view.tree);
        let mirrors = view
            .mirrors
            .iter()
            .map(|m| Mirror {
                holdings: Arc::new(carry(&m.holdings, &view.tree, &tree)),
                ..m.clone()
            })
            .collect();
        self.view.store(Arc::new(View {
            tree: Arc::new(tree),
            mirrors,
        }));
    }

    /// Gives mirror `name` the holdings of a finished scan, if the tree
    /// it was matched against is still the current one.
    pub fn replace_holdings(&self, name: &str, holdings: Holdings) -> bool {
        let Ok(_edits) = self.edits.lock() else {
            return false;
        };
        let view = self.view.load_full();
        if holdings.generation != view.tree.generation {
            return false;
        }
        let mut mirrors = view.mirrors.clone();
        let Some(m) = mirrors.iter_mut().find(|m| m.profile.name() == name) else {
            return false;
        };
        m.holdings = Arc::new(holdings);
        self.view.store(Arc::new(View {
            tree: view.tree.clone(),
            mirrors,
        }));
        true
    }

    /// Replaces the view's mirror list after an API change (edits locked
    /// by the caller).
    pub(crate) fn store_mirrors(&self, mirrors: Vec<Mirror>) {
        let view = self.view.load_full();
        self.view.store(Arc::new(View {
            tree: view.tree.clone(),
            mirrors,
        }));
    }

    fn seconds(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.born).as_secs()
    }

    /// Where `client` is.
    pub fn locate(&self, ip: IpAddr) -> Whereabouts {
        self.geo.load().lookup(ip)
    }

    /// Takes file `id` off mirror `name` (a check found its copy bad).
    pub fn withdraw(&self, name: &str, generation: u64, id: FileId) {
        let view = self.view.load();
        if let Some(m) = view.mirrors.iter().find(|m| m.profile.name() == name)
            && m.holdings.generation == generation
        {
            m.holdings.has.clear(id as usize);
        }
    }

    /// Counts a misbehaviour of mirror `name`; disables it at `max_strikes`.
    pub fn strike(&self, name: &str, why: String) {
        let view = self.view.load();
        let Some(m) = view.mirrors.iter().find(|m| m.profile.name() == name) else {
            return;
        };
        tracing::warn!(set = %self.name, mirror = %name, problem = %why, "mirror misbehaved");
        if m.live.strike(self.settings.load().max_strikes, why) {
            tracing::error!(
                set = %self.name,
                mirror = %name,
                strikes = m.live.strikes(),
                "mirror disabled after repeated misbehaviour; enable it again with `levee ctl mirrors enable`"
            );
        }
    }

    /// Every set made so far (for tests and tools; requests go through the site).
    pub fn all() -> Vec<Arc<MirrorSet>> {
        SETS.lock()
            .ok()
            .and_then(|s| s.as_ref().map(|m| m.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// The state directory.
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.settings.load().state_dir.clone()
    }

    pub(crate) fn state_path(&self, file: &str) -> std::path::PathBuf {
        Path::new(&self.settings.load().state_dir).join(file)
    }
}

/// The static-file settings of a set's local copy. Symlinks out of the
/// tree are never followed (the static code checks the real path).
fn local_action(config: &levee_config::MirrorSet) -> StaticAction {
    StaticAction {
        root: config.root.clone(),
        index: levee_config::DEFAULT_INDEX
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        follow_symlinks: false,
        options: Default::default(),
    }
}

/// The mirror `m` in the new list: it keeps its live state (and, if its
/// URLs did not change, its holdings) from `before`.
pub(crate) fn keep(
    before: Option<&Mirror>,
    m: levee_config::Mirror,
    source: Source,
    generation: u64,
) -> Mirror {
    let Some(b) = before else {
        return Mirror {
            live: Arc::new(Live::new(m.enabled)),
            profile: Arc::new(Profile::new(m)),
            holdings: Arc::new(Holdings::none(generation)),
            source,
        };
    };
    let was = &b.profile.config;
    // `enabled` here is the one in force (the file's, or a runtime
    // switch over it): a change of it applies; otherwise the live switch
    // stays, with an automatic disabling, across reloads and edits.
    if was.enabled != m.enabled {
        b.live.set_enabled(m.enabled);
    }
    let same_source = was.http == m.http && was.https == m.https && was.rsync == m.rsync;
    let holdings = if same_source && b.holdings.generation == generation {
        b.holdings.clone()
    } else {
        Arc::new(Holdings::none(generation))
    };
    Mirror {
        live: b.live.clone(),
        profile: Arc::new(Profile::new(m)),
        holdings,
        source,
    }
}

/// Holdings of `old` (for tree `from`) re-indexed for tree `to`: a file
/// keeps its bit only if its version did not change.
fn carry(old: &Holdings, from: &Tree, to: &Tree) -> Holdings {
    let h = Holdings {
        generation: to.generation,
        has: crate::bits::Bits::new(to.len()),
        stale: old.stale,
        stale_examples: old.stale_examples.clone(),
        scanned_at: old.scanned_at,
        probe: None,
    };
    if old.generation != from.generation {
        return Holdings {
            scanned_at: None,
            ..h
        };
    }
    let mut probe = None;
    for i in old.has.ones() {
        let id = i as FileId;
        if let Some(new) = to.find(from.path(id))
            && from.meta(id) == to.meta(new)
        {
            h.has.set(new as usize);
            if old.probe == Some(id) {
                probe = Some(new);
            }
        }
    }
    Holdings { probe, ..h }
}

#[cfg(test)]
mod tests;
