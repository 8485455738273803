//! levee's fleet: many levees acting as one through Redis (docs/fleet.md).
//!
//! - [`settings`]: `[fleet]` made ready to connect (credentials, CA, name);
//! - [`link`]: the reconnecting connection, never holding a caller past
//!   `timeout`, and its [`health`] (up, restoring, down, since when);
//! - [`members`]: heartbeats and the member list;
//! - [`bus`]: typed messages on the fleet's pub/sub channel;
//! - [`drain`]: members taken out of the fleet's DNS answers;
//! - [`limits`]: the Redis side of fleet-scoped rate limits;
//! - [`push`]: config pushes' identifiers and the members' reports;
//! - [`bans`]: runtime bans and allow entries, kept in Redis for the fleet;
//! - [`actions`]: upstream server actions for every member, and their
//!   reports;
//! - [`table`]: versioned shared tables (the mirror list's runtime edits);
//! - [`Script`]: other crates' shared state (the mail guard's counts, the
//!   auth negative cache) as Lua scripts run within the fleet's timeout;
//! - [`metrics`]: the fleet's counters as Prometheus text.
//!
//! All Redis work runs on one thread of its own (`levee-fleet`), so a slow
//! reload on the control thread never delays a rate-limit answer and
//! workers never run Redis' I/O. Workers only queue questions and wait,
//! each at most `timeout`, on a channel.

pub mod actions;
pub mod bans;
pub mod bus;
pub mod drain;
pub mod health;
pub mod limits;
pub mod link;
pub mod members;
pub mod metrics;
pub mod push;
mod script;
pub mod settings;
pub mod table;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use tokio::sync::{Notify, broadcast, mpsc, watch};

pub use health::{Health, State};
pub use limits::{Debts, Grant, Limits, Take};
pub use link::Link;
pub use members::{Member, Record};
use script::OWED;
pub use script::{Call, Owed, Script, register_owed};
pub use settings::Settings;

/// Why a fleet operation failed. Requests never see these: they decide
/// locally instead.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("Redis is unreachable")]
    Down,
    #[error("Redis did not answer in time")]
    Timeout,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis client setup: {0}")]
    Client(#[source] redis::RedisError),
    #[error("unexpected answer from Redis: {0}")]
    Protocol(&'static str),
    #[error("starting the fleet thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What a member says about itself that changes only on reload.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub config_hash: String,
    pub listeners: Vec<String>,
}

/// What a member measures about itself at each heartbeat.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Open client connections.
    pub connections: u64,
    /// Requests served since start (a counter).
    pub requests: u64,
    /// False once a stop began.
    pub serving: bool,
}

type LoadFn = Box<dyn Fn() -> Load + Send + Sync>;

/// The member list as last read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub members: Vec<Member>,
    /// When it was read (this member's clock); `None`: never.
    pub read_at: Option<SystemTime>,
}

/// A running fleet member: its link to Redis and what runs over it.
pub struct Fleet {
    pub settings: Settings,
    pub link: Arc<Link>,
    pub limits: Arc<Limits>,
    info: Mutex<Info>,
    load: LoadFn,
    snapshot: Mutex<Snapshot>,
    /// Fresh members at the last read, this one included (at least 1).
    live: AtomicU32,
    bus: broadcast::Sender<bus::Envelope>,
    /// What the process does with each message (set by levee-server).
    handler: Mutex<Option<bus::Handler>>,
    outgoing: mpsc::UnboundedSender<bus::Message>,
    /// Drained members as last read or heard (drain.rs).
    drained: Mutex<BTreeSet<String>>,
    /// Drains and undrains made here that Redis has not taken yet.
    drains_unsent: Mutex<Vec<(String, bool)>>,
    /// Bumped whenever the member list or the drained set may have changed.
    changes: watch::Sender<u64>,
    stop: Notify,
    /// Told when the fleet thread is done (its record removed).
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    started_ms: u64,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("name", &self.settings.config.name)
            .field("instance", &self.settings.instance)
            .field("link", &self.link)
            .finish()
    }
}

static CURRENT: Mutex<Option<Arc<Fleet>>> = Mutex::new(None);

/// The running fleet member, if `[fleet]` is configured.
pub fn current() -> Option<Arc<Fleet>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Fleet {
    /// Starts the fleet thread and makes this member [`current`]. Redis
    /// need not be up: the member starts on local limits and joins when it
    /// answers.
    pub fn start(settings: Settings, info: Info, load: LoadFn) -> Result<Arc<Fleet>, FleetError> {
        let link = Arc::new(Link::new(&settings)?);
        let (outgoing, rx) = mpsc::unbounded_channel();
        let fleet = Arc::new(Fleet {
            settings,
            link,
            limits: Arc::new(Limits::default()),
            info: Mutex::new(info),
            load,
            snapshot: Mutex::new(Snapshot {
                members: Vec::new(),
                read_at: None,
            }),
            live: AtomicU32::new(1),
            bus: broadcast::channel(256).0,
            handler: Mutex::new(None),
            outgoing,
            drained: Mutex::new(BTreeSet::new()),
            drains_unsent: Mutex::new(Vec::new()),
            changes: watch::channel(0).0,
            stop: Notify::new(),
            done: Mutex::new(None),
            started_ms: unix_ms(SystemTime::now()),
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        *fleet.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(done_rx);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FleetError::Thread)?;
        let f = fleet.clone();
        std::thread::Builder::new()
            .name("levee-fleet".into())
            .spawn(move || {
                runtime.block_on(f.run(rx));
                let _ = done_tx.send(());
            })
            .map_err(FleetError::Thread)?;
        *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(fleet.clone());
        Ok(fleet)
    }

    /// Stops the fleet thread, which first removes this member's record
    /// (so a member that stopped is not listed as stale); waits for that up
    /// to `wait`.
    pub fn stop(self: &Arc<Self>, wait: Duration) {
        {
            let mut cur = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, self)) {
                *cur = None;
            }
        }
        self.stop.notify_one();
        if let Some(done) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = done.recv_timeout(wait);
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.config.name
    }

    pub fn instance(&self) -> &str {
        &self.settings.instance
    }

    pub fn set_info(&self, info: Info) {
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// Members alive at the last read, this one included: what a limit is
    /// shared by when each member falls back to its own part.
    pub fn live(&self) -> u32 {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// Sets the live count as a heartbeat would (tests of the fallback
    /// arithmetic, which have no Redis).
    #[doc(hidden)]
    pub fn assume_live(&self, n: u32) {
        self.live.store(n.max(1), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Members drained from the fleet's DNS answers, as last read or heard.
    pub fn drained(&self) -> BTreeSet<String> {
        self.drained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drains `instance` from the fleet's DNS answers (or undrains it): at
    /// once here, then in Redis and on the bus for every member; kept and
    /// sent again while Redis is away.
    pub fn set_drained(&self, instance: &str, drained: bool) {
        self.apply_drain(instance, drained);
        lock(&self.drains_unsent).push((instance.to_owned(), drained));
        let _ = self.outgoing.send(bus::Message::Drain {
            instance: instance.to_owned(),
            drained,
        });
    }

    fn apply_drain(&self, instance: &str, drained: bool) {
        let mut set = lock(&self.drained);
        let changed = if drained {
            set.insert(instance.to_owned())
        } else {
            set.remove(instance)
        };
        drop(set);
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Wakes whenever the member list or the drained set may have changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Messages from the bus, as they arrive.
    pub fn bus(&self) -> broadcast::Receiver<bus::Envelope> {
        self.bus.subscribe()
    }

    /// Sends `message` to every member (this one included), from the
    /// fleet thread; a message sent while Redis is away is dropped.
    pub fn publish(&self, message: bus::Message) {
        let _ = self.outgoing.send(message);
    }

    /// Acts on every message from now on with `handler` (this member's own
    /// included: the handler tells them by `from`).
    pub fn set_handler(&self, handler: bus::Handler) {
        *self.handler.lock().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    /// A SipHash hasher whose keys every member derives alike (the fleet's
    /// name, `purpose`, and the Redis password as a secret), so a key
    /// hashed on one member names the same Redis key on every other.
    /// Without a password the keys follow from names an attacker may guess
    /// (docs/fleet.md says what that costs).
    pub fn hasher(&self, purpose: &str) -> SipHasher13 {
        let secret = self.settings.password.as_deref().unwrap_or_default();
        let seed = format!("levee fleet key\0{}\0{purpose}\0{secret}", self.name());
        let derive = |k: u64| {
            let mut h = SipHasher13::new_with_keys(k, !k);
            h.write(seed.as_bytes());
            h.finish()
        };
        SipHasher13::new_with_keys(derive(0x6c65_7665_6520_6b31), derive(0x6c65_7665_6520_6b32))
    }

    /// What signs and checks the messages of this fleet's bus.
    pub fn signer(&self) -> bus::Signer {
        bus::Signer::new(
            self.name(),
            self.settings.password.as_deref().unwrap_or_default(),
        )
    }

    /// Whether shared state is in force (Redis answers, local admissions
    /// charged); otherwise each member decides alone.
    pub fn is_up(&self) -> bool {
        self.link.health.is_up()
    }

    /// Runs `script` with `keys` and `args`, within the fleet's `timeout`
    /// (two timeouts in a row mark Redis down, as for rate limits). The
    /// script answers a list of integers.
    pub async fn run_script(
        &self,
        script: &Script,
        keys: &[String],
        args: &[i64],
    ) -> Result<Vec<i64>, FleetError> {
        let call = script.invocation(keys, args);
        self.link
            .run(|mut conn| async move { call.invoke_async(&mut conn).await })
            .await
    }

    async fn run(self: Arc<Self>, mut outgoing: mpsc::UnboundedReceiver<bus::Message>) {
        let me = Arc::downgrade(&self);
        let handle: bus::Handler = Arc::new(move |e: &bus::Envelope| {
            let Some(fleet) = me.upgrade() else { return };
            // Drains are the fleet's own state: applied here, as they
            // arrive, before the process sees the message.
            if let bus::Message::Drain { instance, drained } = &e.message {
                fleet.apply_drain(instance, *drained);
            }
            if let bus::Message::Bans {} = e.message {
                bans::announced();
            }
            let handler = fleet
                .handler
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(h) = handler {
                h(e);
            }
        });
        let tasks = [
            tokio::spawn(self.limits.clone().serve(self.link.clone())),
            tokio::spawn(bus::subscribe(
                self.link.clone(),
                self.name().to_owned(),
                self.signer(),
                self.bus.clone(),
                handle,
            )),
            tokio::spawn(self.clone().heartbeats()),
            tokio::spawn(self.clone().maintain()),
            tokio::spawn(bans::keep(self.clone())),
        ];
        let signer = self.signer();
        loop {
            tokio::select! {
                _ = self.stop.notified() => break,
                Some(m) = outgoing.recv() => {
                    if matches!(m, bus::Message::Drain { .. }) {
                        // Redis first, so a member that reads the hash
                        // after hearing the message finds it there.
                        self.send_drains().await;
                    }
                    if let Err(e) = bus::publish(&self.link, self.name(), self.instance(), m, &signer).await {
                        tracing::warn!(error = %e, "fleet bus: message not sent");
                    }
                }
            }
        }
        for t in &tasks {
            t.abort();
        }
        let _ = members::beat(&self.link, self.name(), self.instance(), None).await;
    }

    /// Writes the drains made here that Redis has not taken yet.
    async fn send_drains(&self) {
        let unsent = std::mem::take(&mut *lock(&self.drains_unsent));
        for (i, (instance, drained)) in unsent.iter().enumerate() {
            if let Err(e) = drain::set(&self.link, self.name(), instance, *drained).await {
                tracing::warn!(instance = %instance, drained, error = %e, "fleet: drain not recorded in Redis yet; trying again at the next heartbeat");
                lock(&self.drains_unsent).splice(0..0, unsent[i..].iter().cloned());
                return;
            }
        }
    }

    /// Connects whenever the link is down; after each connect, charges what
    /// was admitted locally, then lets fleet limits resume.
    async fn maintain(self: Arc<Self>) {
        let mut warned = false;
        loop {
            if self.link.conn().is_some() {
                self.link.broken().await;
                continue;
            }
            if let Err(e) = self.link.connect().await {
                if !warned {
                    tracing::warn!(redis = %self.link.health.peer(), error = %e, "fleet: cannot reach Redis; rate limits are each member's share until it answers");
                    warned = true;
                }
                tokio::time::sleep(link::RETRY).await;
                continue;
            }
            let restored = match self.limits.restore(&self.link).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(keys = n, "fleet: local admissions charged to Redis");
                    }
                    self.charge_owed().await
                }
                Err(e) => Err(e),
            };
            match restored {
                Ok(()) => self.link.health.set(State::Up, ""),
                Err(e) => self.link.drop_conn(&format!("restoring: {e}")),
            }
        }
    }

    /// Charges what every [`Owed`] decided alone, before shared state
    /// resumes.
    async fn charge_owed(&self) -> Result<(), FleetError> {
        let owed: Vec<_> = OWED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        let patient = self.link.timeout().max(Duration::from_secs(1));
        for o in owed {
            let Some(call) = o.take(self) else { continue };
            let invoke = call.script.invocation(&call.keys, &call.args);
            let ran = self
                .link
                .run_within(patient, |mut conn| async move {
                    invoke.invoke_async::<Vec<i64>>(&mut conn).await
                })
                .await;
            if let Err(e) = ran {
                o.unpaid(call);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn heartbeats(self: Arc<Self>) {
        let every = self.settings.config.heartbeat;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = (
            std::time::Instant::now(),
            members::cpu_ticks(),
            (self.load)().requests,
        );
        loop {
            tick.tick().await;
            let now = (
                std::time::Instant::now(),
                members::cpu_ticks(),
                (self.load)(),
            );
            let secs = now.0.duration_since(last.0).as_secs_f64().max(0.001);
            let record = self.record(
                now.2,
                (now.2.requests.saturating_sub(last.2)) as f64 / secs,
                (now.1.saturating_sub(last.1)) as f64 / members::TICKS_PER_S / secs * 100.0,
            );
            last = (now.0, now.1, now.2.requests);
            if let Ok(list) =
                members::beat(&self.link, self.name(), self.instance(), Some(&record)).await
            {
                let fresh = list.iter().filter(|m| m.fresh).count() as u32;
                self.live.store(fresh.max(1), Ordering::Relaxed);
                *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Snapshot {
                    members: list,
                    read_at: Some(SystemTime::now()),
                };
                self.send_drains().await;
                let known = self.drained();
                if let Ok(set) = drain::read(&self.link, self.name(), &known).await
                    && lock(&self.drains_unsent).is_empty()
                {
                    *lock(&self.drained) = set;
                }
                self.changes.send_modify(|n| *n += 1);
            }
        }
    }

    fn record(&self, load: Load, requests_per_s: f64, cpu_percent: f64) -> Record {
        let info = self.info.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let c = &self.settings.config;
        Record {
            instance: self.instance().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_hash: info.config_hash,
            listeners: info.listeners,
            state: if load.serving { "serving" } else { "stopping" }.to_owned(),
            connections: load.connections,
            requests_per_s: (requests_per_s * 10.0).round() / 10.0,
            cpu_percent: (cpu_percent * 10.0).round() / 10.0,
            started_ms: self.started_ms,
            heartbeat_ms: c.heartbeat.as_millis() as u64,
            ttl_ms: c.heartbeat_ttl.as_millis() as u64,
            public: c.public_addresses.clone(),
            weight: c.weight,
        }
    }
}

/// A short hash of what a config means (comments and layout aside, and
/// this member's own name aside), so members can tell where configs differ.
pub fn config_hash(config: &levee_config::Config) -> String {
    let mut c = config.clone();
    c.source = None;
    if let Some(f) = &mut c.fleet {
        // What differs from member to member by design.
        f.instance = None;
        f.public_addresses.clear();
        f.weight = levee_config::DEFAULT_FLEET_WEIGHT;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, levee_config::to_toml(&c).as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}
