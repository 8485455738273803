//! The certificates levee keeps: loaded from disk at start, obtained when
//! missing, renewed when due, shared through the fleet, and published to
//! the TLS listeners (levee_tls::auto) at every change.
//!
//! ```text
//! start ─▶ load from disk ─▶ publish ─▶ loop: next due name ─▶ attempt ─▶ publish ─┐
//!                                        ▲   (or a wake: reload, on-demand, renew) │
//!                                        └─────────────────────────────────────────┘
//! attempt: [fleet: newer copy in Redis? take it | lock held elsewhere? wait]
//!          ─▶ order (issue.rs) ─▶ store on disk ─▶ [fleet: store in Redis] ─▶ schedule renewal
//!          on failure: log, count, keep what is served, retry after a backoff
//! ```
//!
//! One name is worked on at a time, on the manager's own thread, so a slow
//! CA never holds up the control thread or a worker; the CA's rate limits
//! are per account and name, so one at a time is also the polite pace.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use instant_acme::Account;
use levee_tls::CertifiedKey;
use tokio::sync::{Notify, oneshot};

use crate::budget::Budget;
use crate::error::AcmeError;
use crate::fleet::Share;
use crate::keys::{self, CertInfo};
use crate::on_demand::Gate;
use crate::schedule;
use crate::settings::Settings;
use crate::status::{Attempt, COUNTERS, CertStatus};
use crate::store::{Store, Stored};

/// The longest the loop sleeps with nothing due (a changed clock is noticed).
const IDLE: Duration = Duration::from_secs(60);
/// With `[fleet]`: how often Redis is asked whether a member stored a new
/// certificate, and how soon a member waiting on another's lock looks again.
pub const FLEET_POLL: Duration = Duration::from_secs(2);
/// A handshake for a name kept but not yet held waits for its attempt only
/// if it is due within this long.
const WAIT_FOR_DUE: Duration = Duration::from_secs(10);
mod ca;
mod handshake;

pub(crate) use handshake::Hook;

/// How often the CA's renewal information is asked again, when it has some.
const ARI_EVERY: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Config,
    OnDemand,
}

#[derive(Clone)]
struct Held {
    certified: Arc<CertifiedKey>,
    info: CertInfo,
}

struct Entry {
    origin: Origin,
    held: Option<Held>,
    due: SystemTime,
    /// When to ask the CA's renewal information next; `None`: never.
    ari_at: Option<SystemTime>,
    failures: u32,
    last: Option<Attempt>,
}

impl Entry {
    fn new(origin: Origin) -> Entry {
        Entry {
            origin,
            held: None,
            due: SystemTime::UNIX_EPOCH,
            ari_at: None,
            failures: 0,
            last: None,
        }
    }
}

pub struct Manager {
    settings: ArcSwap<Settings>,
    entries: Mutex<BTreeMap<String, Entry>>,
    account: tokio::sync::Mutex<Option<(String, Account)>>,
    wake: Notify,
    stop: AtomicBool,
    gate: Mutex<Gate>,
    budget: Mutex<Budget>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<bool>>>>,
    fleet_version: AtomicU64,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("settings", &self.settings.load())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one left valid data: use it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Manager {
    /// Loads what is on disk, publishes it, and starts the manager's thread.
    pub fn start(settings: Settings) -> Result<Arc<Manager>, AcmeError> {
        Store::open(&settings.storage)?;
        let manager = Arc::new(Manager {
            settings: ArcSwap::from_pointee(settings.clone()),
            entries: Mutex::new(BTreeMap::new()),
            account: tokio::sync::Mutex::new(None),
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            gate: Mutex::new(Gate::default()),
            budget: Mutex::new(Budget::default()),
            waiters: Mutex::new(HashMap::new()),
            fleet_version: AtomicU64::new(0),
        });
        manager.sync_names(&settings);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AcmeError::Storage {
                path: "levee-acme thread".into(),
                source: e,
            })?;
        let m = manager.clone();
        std::thread::Builder::new()
            .name("levee-acme".into())
            .spawn(move || runtime.block_on(m.run()))
            .map_err(|e| AcmeError::Storage {
                path: "levee-acme thread".into(),
                source: e,
            })?;
        Ok(manager)
    }

    /// Takes new settings (reload): names added are loaded or ordered,
    /// names removed are no longer served.
    pub fn apply(&self, settings: Settings) -> Result<(), AcmeError> {
        Store::open(&settings.storage)?;
        self.sync_names(&settings);
        self.settings.store(Arc::new(settings));
        self.wake.notify_one();
        Ok(())
    }

    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
        self.wake.notify_one();
    }

    pub fn on_demand_enabled(&self) -> bool {
        self.settings.load().on_demand.is_some()
    }

    /// Makes the entries match `settings`' names, loading each new one from
    /// disk; on-demand names stay while on-demand TLS is on.
    fn sync_names(&self, settings: &Settings) {
        let store = Store::open(&settings.storage).ok();
        let mut entries = lock(&self.entries);
        entries.retain(|name, e| match e.origin {
            Origin::Config => settings.names.contains(name),
            Origin::OnDemand => settings.on_demand.is_some(),
        });
        // A staple put beside a certificate (`ocsp.der`) is served from
        // the next reload, as a file certificate's `ocsp` is.
        if let Some(store) = &store {
            for (name, e) in entries.iter_mut() {
                let Some(h) = &mut e.held else { continue };
                if let Ok(Some(stored)) = store.cert(name)
                    && stored.ocsp != h.certified.ocsp
                    && let Ok(new) = held(&stored, store.dir(), name)
                    && new.info == h.info
                {
                    *h = new;
                }
            }
        }
        for name in &settings.names {
            if let Some(e) = entries.get_mut(name) {
                e.origin = Origin::Config;
                continue;
            }
            let mut e = Entry::new(Origin::Config);
            if let Some(stored) = store.as_ref().and_then(|s| s.cert(name).ok().flatten()) {
                match held(&stored, &settings.storage, name) {
                    Ok(h) => {
                        e.due = schedule::renew_at(&h.info, settings.renew_before, None);
                        e.ari_at = Some(SystemTime::now());
                        e.held = Some(h);
                    }
                    Err(err) => {
                        tracing::warn!(name, error = %err, "stored certificate unusable; ordering a new one")
                    }
                }
            }
            entries.insert(name.clone(), e);
        }
        drop(entries);
        self.publish();
    }

    /// Hands every certificate held to the listeners.
    fn publish(&self) {
        let mut names = levee_tls::sni::Names::default();
        for (name, e) in lock(&self.entries).iter() {
            if let Some(h) = &e.held {
                names.insert(name, h.certified.clone());
            }
        }
        levee_tls::auto::publish(names);
    }

    pub fn status(&self) -> Vec<CertStatus> {
        lock(&self.entries)
            .iter()
            .map(|(name, e)| CertStatus {
                name: name.clone(),
                source: "acme",
                info: e.held.as_ref().map(|h| h.info.clone()),
                last: e.last.clone(),
                next: Some(e.due),
                failures: e.failures,
            })
            .collect()
    }

    /// Renews `name` now (`levee ctl certs renew NAME`) and waits for the
    /// outcome, at most `wait`.
    pub async fn renew(&self, name: &str, wait: Duration) -> Result<Attempt, String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let rx = {
            let mut entries = lock(&self.entries);
            let Some(e) = entries.get_mut(&name) else {
                return Err(format!("levee keeps no ACME certificate for `{name}`"));
            };
            e.due = SystemTime::now();
            self.waiter(&name)
        };
        self.wake.notify_one();
        let _ = tokio::time::timeout(wait, rx).await;
        lock(&self.entries)
            .get(&name)
            .and_then(|e| e.last.clone())
            .ok_or_else(|| "no outcome yet; see `levee ctl certs`".to_owned())
    }

    fn waiter(&self, name: &str) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = lock(&self.waiters);
        let list = waiters.entry(name.to_owned()).or_default();
        // Handshakes that gave up (their timeout) are dropped here, so
        // many handshakes for one name keep at most the waiting ones.
        list.retain(|tx| !tx.is_closed());
        list.push(tx);
        rx
    }

    fn tell(&self, name: &str, ok: bool) {
        for tx in lock(&self.waiters).remove(name).unwrap_or_default() {
            let _ = tx.send(ok);
        }
    }

    async fn run(self: Arc<Self>) {
        while !self.stop.load(Relaxed) {
            let now = SystemTime::now();
            let next = self.next();
            if let Some((name, at, ari)) = &next
                && *at <= now
            {
                match ari {
                    true => self.refresh_ari(name).await,
                    false => self.attempt(name).await,
                }
                continue;
            }
            let share = self.share();
            let mut sleep = next
                .map(|(_, at, _)| at.duration_since(now).unwrap_or_default())
                .unwrap_or(IDLE)
                .min(IDLE);
            if share.is_some() {
                sleep = sleep.min(FLEET_POLL);
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
            if let Some(share) = share {
                self.fleet_sync(&share).await;
            }
        }
    }

    /// The next thing to do: a name whose renewal or ARI check is due
    /// soonest (`true` for an ARI check).
    fn next(&self) -> Option<(String, SystemTime, bool)> {
        lock(&self.entries)
            .iter()
            .flat_map(|(name, e)| {
                let ari = e.ari_at.map(|t| (name.clone(), t, true));
                [Some((name.clone(), e.due, false)), ari]
            })
            .flatten()
            .min_by_key(|(_, t, _)| *t)
    }

    fn share(&self) -> Option<Share> {
        let key = self.settings.load().fleet_key?;
        Share::new(levee_fleet::current()?, &key)
    }

    /// Whether `stored` is newer than what is held for `name`.
    fn newer(&self, name: &str, stored: &Stored) -> bool {
        let Ok(info) = keys::info_pem(&stored.chain) else {
            return false;
        };
        match lock(&self.entries).get(name).and_then(|e| e.held.as_ref()) {
            Some(h) => info.not_after > h.info.not_after,
            None => true,
        }
    }

    /// Whether `name` must be ordered even without the fleet's lock: none
    /// is held, or less than a sixth of its lifetime is left.
    fn urgent(&self, name: &str) -> bool {
        match lock(&self.entries).get(name).and_then(|e| e.held.as_ref()) {
            None => true,
            Some(h) => {
                let left = h
                    .info
                    .not_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                left < h.info.lifetime() / 6
            }
        }
    }

    /// One attempt for `name`.
    async fn attempt(&self, name: &str) {
        let settings = self.settings.load_full();
        let share = self.share();
        let mut locked = false;
        if let Some(share) = &share
            && self.take_shared(share, name).await
        {
            return;
        }
        if let Some(share) = &share {
            match share.lock(name).await {
                Ok(true) => locked = true,
                Ok(false) => {
                    // Another member is ordering it: look again soon.
                    self.set_due(name, SystemTime::now() + FLEET_POLL);
                    return;
                }
                Err(e) if !self.urgent(name) => {
                    self.failed(name, &AcmeError::Fleet(format!(
                        "{e}; keeping the certificate in use, not ordering without the fleet's lock"
                    )));
                    return;
                }
                Err(_) if share.down_for() < crate::fleet::ALONE_AFTER => {
                    // Not yet connected, or failing over: wait for it.
                    self.set_due(name, SystemTime::now() + FLEET_POLL);
                    return;
                }
                Err(e) => {
                    tracing::warn!(name, error = %e, "fleet unreachable and no usable certificate: ordering without the lock")
                }
            }
            // It may have been stored between our look and our lock.
            if locked && self.take_shared(share, name).await {
                let _ = share.unlock(name).await;
                return;
            }
        }
        // Only an order that is about to reach the CA is counted: not the
        // looks of a member waiting on another's lock.
        if !self.within_budget(name, &settings) {
            if locked && let Some(share) = &share {
                let _ = share.unlock(name).await;
            }
            return;
        }
        match self.order(name, &settings).await {
            Ok(stored) => match self.install(name, &stored, &settings) {
                Ok(()) => {
                    COUNTERS.issued.fetch_add(1, Relaxed);
                    if let Err(e) =
                        Store::open(&settings.storage).and_then(|s| s.save_cert(name, &stored))
                    {
                        tracing::error!(name, error = %e, "certificate obtained but not stored on disk");
                    }
                    if let Some(share) = &share
                        && let Err(e) = share.put_cert(name, &stored).await
                    {
                        tracing::warn!(name, error = %e, "certificate not shared with the fleet");
                    }
                    self.succeeded(name, "obtained from the CA".into());
                }
                Err(e) => self.failed(name, &e),
            },
            Err(e) => self.failed(name, &e),
        }
        if locked && let Some(share) = &share {
            let _ = share.unlock(name).await;
        }
    }

    /// Takes an order from the budget, or puts the attempt off until the
    /// budget allows it (logged and counted, not a failure).
    fn within_budget(&self, name: &str, settings: &Settings) -> bool {
        let taken = lock(&self.budget).take(
            name,
            Instant::now(),
            settings.max_orders_per_hour,
            settings.max_orders_per_name,
        );
        let Err(wait) = taken else {
            return true;
        };
        COUNTERS.held_back.fetch_add(1, Relaxed);
        tracing::warn!(
            name,
            wait_s = wait.as_secs(),
            "order put off: max_orders_per_hour or max_orders_per_name reached"
        );
        let now = SystemTime::now();
        if let Some(e) = lock(&self.entries).get_mut(name) {
            e.due = now + wait;
            e.last = Some(Attempt {
                at: now,
                ok: false,
                message: format!("put off {}s by the order limits", wait.as_secs()),
            });
        }
        self.tell(name, false);
        false
    }

    /// Takes the fleet's copy of `name` if it is newer than ours.
    async fn take_shared(&self, share: &Share, name: &str) -> bool {
        let stored = match share.cert(name).await {
            Ok(Some(s)) => s,
            Ok(None) => return false,
            Err(e) => {
                tracing::debug!(name, error = %e, "fleet: no shared copy read");
                return false;
            }
        };
        if !self.newer(name, &stored) {
            return false;
        }
        let settings = self.settings.load_full();
        match self.install(name, &stored, &settings) {
            Ok(()) => {
                COUNTERS.fleet_pickups.fetch_add(1, Relaxed);
                if let Err(e) =
                    Store::open(&settings.storage).and_then(|s| s.save_cert(name, &stored))
                {
                    tracing::warn!(name, error = %e, "fleet's certificate not stored on disk");
                }
                tracing::info!(name, "certificate taken from the fleet");
                self.succeeded(name, "taken from the fleet".into());
                true
            }
            Err(e) => {
                tracing::warn!(name, error = %e, "fleet's certificate unusable");
                false
            }
        }
    }

    /// Looks for certificates other members stored since the last look.
    async fn fleet_sync(&self, share: &Share) {
        let Ok(version) = share.version().await else {
            return;
        };
        if self.fleet_version.swap(version, Relaxed) == version {
            return;
        }
        let names: Vec<String> = lock(&self.entries).keys().cloned().collect();
        for name in names {
            self.take_shared(share, &name).await;
        }
    }

    fn set_ari(&self, name: &str, at: Option<SystemTime>) {
        if let Some(e) = lock(&self.entries).get_mut(name) {
            e.ari_at = at;
        }
    }

    fn set_due(&self, name: &str, at: SystemTime) {
        if let Some(e) = lock(&self.entries).get_mut(name) {
            e.due = at;
        }
    }

    /// Serves `stored` for `name` from now on and schedules its renewal.
    fn install(&self, name: &str, stored: &Stored, settings: &Settings) -> Result<(), AcmeError> {
        let h = held(stored, &settings.storage, name)?;
        {
            let mut entries = lock(&self.entries);
            // A name a reload removed while it was being ordered stays out.
            let Some(e) = entries.get_mut(name) else {
                return Ok(());
            };
            e.due = schedule::renew_at(&h.info, settings.renew_before, None);
            e.ari_at = Some(SystemTime::now());
            e.held = Some(h);
        }
        self.publish();
        Ok(())
    }

    fn succeeded(&self, name: &str, message: String) {
        if let Some(e) = lock(&self.entries).get_mut(name) {
            e.failures = 0;
            e.last = Some(Attempt {
                at: SystemTime::now(),
                ok: true,
                message,
            });
        }
        self.tell(name, true);
    }

    /// Logs and counts a failure, keeps what is served, schedules a retry.
    fn failed(&self, name: &str, error: &AcmeError) {
        COUNTERS.failures.fetch_add(1, Relaxed);
        let now = SystemTime::now();
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get_mut(name) {
            e.failures += 1;
            let left = e
                .held
                .as_ref()
                .map(|h| h.info.not_after.duration_since(now).unwrap_or_default());
            let wait = schedule::backoff(e.failures, schedule::random_unit(), left);
            e.due = now + wait;
            e.last = Some(Attempt {
                at: now,
                ok: false,
                message: error.to_string(),
            });
            tracing::error!(
                name,
                error = %error,
                failures = e.failures,
                retry_in_s = wait.as_secs(),
                serving = e.held.is_some(),
                "certificate not obtained; the one in use (if any) stays"
            );
            // On-demand names that never got one are forgotten: the gate
            // decides whether a later handshake may try again.
            if e.origin == Origin::OnDemand && e.held.is_none() {
                entries.remove(name);
            }
        }
        drop(entries);
        self.tell(name, false);
    }
}

/// `stored`, ready to serve, for `name` kept under `storage`.
fn held(stored: &Stored, storage: &std::path::Path, name: &str) -> Result<Held, AcmeError> {
    let info = keys::info_pem(&stored.chain)?;
    let certified = levee_tls::certified_pem(&stored.chain, &stored.key, stored.ocsp.clone())
        .map_err(|e| AcmeError::Crypto(e.to_string()))?;
    // Listed with the files' certificates while in use, for the dashboard
    // and its expiry gauge (levee_tls::expiry), by the file it is kept in.
    if let Some(file) = crate::store::cert_file(storage, name) {
        levee_tls::expiry::record(&certified, file, info.names.clone());
    }
    Ok(Held { certified, info })
}
