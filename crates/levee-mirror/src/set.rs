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
use std::time::{Instant, SystemTime};

use arc_swap::{ArcSwap, Guard};
use levee_config::StaticAction;

use crate::MirrorError;
use crate::choose::{self, Client, Ranked};
use crate::edits::{self, Source};
use crate::geo::{Geo, Whereabouts};
use crate::glob::Patterns;
use crate::hash::Store;
use crate::mirror::{Holdings, Live, Mirror, Profile};
use crate::paths::FileId;
use crate::render::{self, Offer, join};
use crate::stats::Stats;
use crate::tree::{Resolved, Tree};

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

    /// The mirrors that may serve file `id` to `client`, ranked.
    fn offers<'v>(
        &self,
        view: &'v View,
        id: FileId,
        client: &Client,
        https: bool,
        now: u64,
        limit: usize,
    ) -> Vec<(&'v Mirror, Ranked)> {
        let generation = view.tree.generation;
        let eligible: Vec<&Mirror> = view
            .mirrors
            .iter()
            .filter(|m| {
                m.usable()
                    && m.has(generation, id)
                    && m.profile.base(https).is_some()
                    && m.profile.admits(client.geo.country)
                    && m.live.has_room(&m.profile.config, now)
            })
            .collect();
        if eligible.is_empty() {
            return Vec::new();
        }
        let profiles: Vec<&Profile> = eligible.iter().map(|m| &*m.profile).collect();
        let ranked = choose::with_rng(|rng| choose::rank(&profiles, client, limit, rng));
        ranked.into_iter().map(|r| (eligible[r.index], r)).collect()
    }

    /// Decides what answers `ask` (docs/mirrors.md, "What a request gets").
    pub fn decide(&self, ask: &Ask<'_>) -> Answer {
        // A guard, not a clone: no reference count shared between workers
        // is touched on the request path.
        let view = self.view.load();
        let (path, want) = wanted(&view.tree, ask);
        if ask.directory || !ask.fetch {
            return Answer::Local;
        }
        let id = match view.tree.resolve(path) {
            Resolved::File { id, .. } => id,
            Resolved::Outside => return Answer::Forbidden,
            Resolved::Missing => return Answer::Local,
        };
        let Some(meta) = view.tree.meta(id) else {
            return Answer::Local;
        };
        let settings = self.settings.load();
        let geo = self.locate(ask.client);
        let client = Client {
            ip: ask.client,
            geo,
        };
        let now = self.seconds(ask.now);
        if want == Want::File {
            let small = meta.size < settings.min_size;
            let chosen = if small || view.tree.excluded(id) {
                Vec::new()
            } else {
                self.offers(&view, id, &client, ask.https, now, 1 + ALTERNATIVES)
            };
            view.tree.count_download(id);
            self.stats.count(geo.country, SystemTime::now());
            let Some((first, _)) = chosen.first() else {
                self.stats
                    .local
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Answer::Local;
            };
            first.live.count(meta.size, now);
            let file_path = view.tree.path(id);
            let offers = to_offers(&chosen, file_path, ask.https);
            let location = offers[0].url.clone();
            self.sample_check(
                &settings,
                first,
                &location,
                view.tree.generation,
                id,
                meta.size,
            );
            let mut fields = vec![("Location", location)];
            let meta4 = format!("/{}.meta4", render::url_path(file_path));
            fields.extend(render::link_fields(&offers[1..], &meta4));
            if let Some(sha) = view.tree.digest(id) {
                fields.extend(render::digest_fields(sha));
            }
            return Answer::Redirect { fields };
        }
        let chosen = self.offers(&view, id, &client, ask.https, now, usize::MAX);
        let file_path = view.tree.path(id);
        let offers = to_offers(&chosen, file_path, ask.https);
        let scheme = if ask.https { "https" } else { "http" };
        let host = String::from_utf8_lossy(ask.host);
        let origin = join(&format!("{scheme}://{host}"), file_path);
        let sha = view.tree.digest(id);
        let text = String::from_utf8_lossy(file_path);
        match want {
            Want::Metalink => {
                let pieces = sha.and_then(|s| self.store.pieces(s));
                let mut all = offers;
                all.push(Offer {
                    mirror: "origin".into(),
                    url: origin.clone(),
                    country: None,
                    priority: all.len() as u32 + 1,
                    tier: "origin",
                    distance_km: None,
                });
                let name = text.rsplit('/').next().unwrap_or(&text);
                let doc = render::metalink::render(
                    &render::metalink::Described {
                        name,
                        size: meta.size,
                        sha256: sha,
                        pieces: pieces.as_ref().map(|(l, p)| (*l, p.as_slice())),
                        origin: &format!("{origin}.meta4"),
                        published: SystemTime::now(),
                    },
                    &all,
                );
                Answer::Document {
                    content_type: render::metalink::CONTENT_TYPE,
                    body: doc.into_bytes(),
                }
            }
            Want::MirrorList | Want::Json => {
                let country = geo
                    .country
                    .map(|c| String::from_utf8_lossy(&c).into_owned());
                let listed = render::list::Listed {
                    path: &text,
                    size: meta.size,
                    sha256: sha,
                    origin: &origin,
                    client_country: country.as_deref(),
                };
                if want == Want::Json {
                    Answer::Document {
                        content_type: "application/json",
                        body: render::list::json(&listed, &offers).into_bytes(),
                    }
                } else {
                    Answer::Document {
                        content_type: "text/html; charset=utf-8",
                        body: render::list::html(&listed, &offers).into_bytes(),
                    }
                }
            }
            Want::File => Answer::Local,
        }
    }

    /// Queues one redirect in `verify_sample` for a HEAD check.
    fn sample_check(
        &self,
        settings: &levee_config::MirrorSet,
        mirror: &Mirror,
        url: &str,
        generation: u64,
        file: FileId,
        size: u64,
    ) {
        let n = u64::from(settings.verify_sample);
        if n == 0 || choose::with_rng(|r| r.below(n)) != 0 {
            return;
        }
        // Never wait on the request path: a busy queue skips this sample.
        let Ok(mut q) = self.checks.try_lock() else {
            return;
        };
        if q.len() < MAX_PENDING_CHECKS {
            q.push_back(Check {
                mirror: mirror.profile.name().to_owned(),
                url: url.to_owned(),
                generation,
                file,
                size,
            });
            self.checks_ready.notify_one();
        }
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

/// The path the decision works on and what is wanted of it: a `.meta4`
/// suffix that names no file asks for the Metalink of the file without it.
fn wanted<'a>(tree: &Tree, ask: &Ask<'a>) -> (&'a [u8], Want) {
    let query_wants = |key: &[u8]| {
        ask.query
            .split(|&b| b == b'&' || b == b';')
            .any(|kv| kv.split(|&b| b == b'=').next() == Some(key))
    };
    if let Some(stem) = ask.path.strip_suffix(b".meta4")
        && tree.resolve(ask.path) == Resolved::Missing
    {
        return (stem, Want::Metalink);
    }
    let want = if query_wants(b"metalink") {
        Want::Metalink
    } else if query_wants(b"mirrorlist") {
        Want::MirrorList
    } else if query_wants(b"json") {
        Want::Json
    } else if ask.accept.is_some_and(|a| {
        a.windows(25)
            .any(|w| w.eq_ignore_ascii_case(b"application/metalink4+xml"))
    }) {
        Want::Metalink
    } else {
        Want::File
    };
    (ask.path, want)
}

fn to_offers(chosen: &[(&Mirror, Ranked)], path: &[u8], https: bool) -> Vec<Offer> {
    chosen
        .iter()
        .enumerate()
        .filter_map(|(i, (m, r))| {
            Some(Offer {
                mirror: m.profile.name().to_owned(),
                url: join(m.profile.base(https)?, path),
                country: m.profile.config.country.clone(),
                priority: i as u32 + 1,
                tier: r.tier.as_str(),
                distance_km: r.distance_km,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
