//! levee's runtime: workers, listeners, reload and shutdown.
//!
//! ```text
//! control thread                      worker threads (one per core)
//! ──────────────                      ─────────────────────────────
//! build site, bind listeners ──────▶  accept loop per listener ─▶ conn::serve per connection
//! SIGHUP: load + validate config,
//!   build site, swap it in,
//!   bind new / drop old listeners ──▶ Listen / Unlisten
//! SIGTERM: stop accepting ─────────▶  UnlistenAll; connections finish their request
//!   wait for in-flight requests (up to the grace period), exit 0
//! ```

pub mod listeners;
pub mod preflight;
pub mod tls;
pub mod upkeep;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use levee_config::Config;
use levee_http::conn::{FirstSteps, ListenerCtx};
use levee_http::{Shared, Site};
use levee_upstream::Registry;
use tokio::signal::unix::{SignalKind, signal};

use upkeep::{AdminListener, Upkeep};

use worker::{Command, Front, Worker};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Site(#[from] levee_http::site::SiteError),
    /// What the config asks for that this machine refuses (files that do
    /// not load, addresses that cannot be bound, a pid file that cannot be
    /// written), each at the key asking for it, as `levee check` reports it.
    #[error("{0}")]
    Invalid(levee_config::ConfigErrors),
    #[error("listener {addr}: {source}")]
    Tls {
        addr: SocketAddr,
        #[source]
        source: levee_tls::TlsError,
    },
    #[error("starting workers: {0}")]
    Workers(std::io::Error),
    /// The user map's error is in the message (and not a `source`, so a
    /// chain printer does not repeat it).
    #[error("mail listener {addr}: {error}")]
    Mail {
        addr: SocketAddr,
        error: levee_mail::front::UserMapError,
    },
}

/// The running server as the control thread sees it.
struct Server {
    config: Config,
    shared: Arc<Shared>,
    workers: Vec<Worker>,
    /// Open listeners, to update their first steps on reload.
    listening: HashMap<SocketAddr, Arc<ListenerCtx>>,
    /// Server state kept across reloads (drain, health, weight overrides).
    registry: Arc<Registry>,
    upkeep: Upkeep,
    /// Bound at start, served once the control runtime runs.
    admin_socket: Option<std::net::TcpListener>,
    admin: Option<AdminListener>,
    tls: tls::TlsListeners,
    /// Mail listeners' state by address; kept across reloads like the listener.
    mail: HashMap<SocketAddr, Arc<levee_mail::Frontend>>,
}

/// Each mail listener's state, loaded (user maps read) before anything
/// changes: new listeners get a new [`levee_mail::Frontend`], existing ones
/// a new state to swap in.
struct MailPlan {
    new: Vec<(SocketAddr, Arc<levee_mail::Frontend>)>,
    swap: Vec<(Arc<levee_mail::Frontend>, levee_mail::front::FrontState)>,
}

fn plan_mail(
    config: &Config,
    running: &HashMap<SocketAddr, Arc<levee_mail::Frontend>>,
) -> Result<MailPlan, ServerError> {
    let mut plan = MailPlan {
        new: Vec::new(),
        swap: Vec::new(),
    };
    for l in &config.listeners {
        let Some(mail) = &l.mail else { continue };
        let err = |error| ServerError::Mail {
            addr: l.address,
            error,
        };
        match running.get(&l.address) {
            Some(front) => plan.swap.push((
                front.clone(),
                levee_mail::front::FrontState::load(mail).map_err(err)?,
            )),
            None => plan.new.push((
                l.address,
                levee_mail::Frontend::new(l.address, mail).map_err(err)?,
            )),
        }
    }
    Ok(plan)
}

/// Runs levee with `config` until it is stopped. `config.source` is re-read on SIGHUP.
pub fn run(config: Config) -> Result<(), ServerError> {
    // Signal handlers first: a SIGHUP or SIGTERM that arrives while listeners
    // are being bound must be handled, not kill the process.
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Workers)?;
    let signals = {
        let _entered = control.enter();
        Signals::install().map_err(ServerError::Workers)?
    };
    // The files first, each problem at its key, before anything is bound.
    let mut errors = preflight::files(&config);
    errors.extend(tls::check(&config));
    if !errors.is_empty() {
        return Err(ServerError::Invalid(levee_config::ConfigErrors { errors }));
    }
    let registry = Registry::new();
    let site = Site::build_with(&config, &registry)?;
    let shared = Shared::new(site);
    let mail_plan = plan_mail(&config, &HashMap::new())?;
    let (admin_socket, bound) = bind_all(&config)?;
    let workers = (0..config.workers)
        .map(worker::spawn)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServerError::Workers)?;
    let mut server = Server {
        config,
        shared,
        workers,
        listening: HashMap::new(),
        registry,
        upkeep: Upkeep::default(),
        admin_socket,
        admin: None,
        tls: tls::TlsListeners::default(),
        mail: mail_plan.new.into_iter().collect(),
    };
    let mut opened = Vec::with_capacity(bound.len());
    for (l, (addr, sockets)) in server.config.listeners.iter().zip(bound) {
        let steps =
            first_steps(&mut server.tls, l).map_err(|source| ServerError::Tls { addr, source })?;
        opened.push((addr, steps, sockets));
    }
    for (addr, first, sockets) in opened {
        server.listen(addr, first, sockets);
    }
    if let Some(path) = &server.config.pid_file
        && let Err(e) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        let at = levee_config::Locator::new(&server.config);
        let error = at.error("pid_file", format!("cannot write {}: {e}", path.display()));
        return Err(ServerError::Invalid(error.into()));
    }
    control.block_on(server.control(signals))
}

/// The admin listener's socket, and each listener's sockets (one per worker).
type Bound = (
    Option<std::net::TcpListener>,
    Vec<(SocketAddr, Vec<std::net::TcpListener>)>,
);

/// Binds every address start-up needs; every one the OS refuses is
/// reported at its key.
fn bind_all(config: &Config) -> Result<Bound, ServerError> {
    let mut refused = Vec::new();
    let admin = match config.admin {
        Some(admin) => match AdminListener::bind(admin.address) {
            Ok(socket) => Some(socket),
            Err(e) => {
                refused.push(("admin.address".to_owned(), admin.address, e));
                None
            }
        },
        None => None,
    };
    let mut bound = Vec::new();
    for (i, l) in config.listeners.iter().enumerate() {
        match listeners::bind(l.address, l.backlog, config.workers) {
            Ok(sockets) => bound.push((l.address, sockets)),
            Err(e) => refused.push((format!("listener[{i}].address"), l.address, e)),
        }
    }
    if refused.is_empty() {
        return Ok((admin, bound));
    }
    let at = levee_config::Locator::new(config);
    let errors = refused
        .iter()
        .map(|(key, addr, e)| at.error(key, preflight::cannot_listen(*addr, e)))
        .collect();
    Err(ServerError::Invalid(levee_config::ConfigErrors { errors }))
}

/// Logs every problem of a config a reload will not apply.
fn refuse_reload(errors: &[levee_config::ConfigError]) {
    for e in errors {
        tracing::error!("{e}");
    }
    tracing::error!(
        errors = errors.len(),
        "reload refused; the running config stays"
    );
}

/// What `l`'s new connections do before HTTP (TLS, PROXY header).
fn first_steps(
    tls: &mut tls::TlsListeners,
    l: &levee_config::Listener,
) -> Result<FirstSteps, levee_tls::TlsError> {
    Ok(FirstSteps {
        tls: tls.update(l)?,
        proxy_protocol: proxy_protocol(l),
        h2c: l.h2c,
    })
}

fn proxy_protocol(l: &levee_config::Listener) -> Option<levee_protect::Acl> {
    (!l.proxy_protocol.is_empty()).then(|| {
        levee_protect::Acl::new(&levee_config::AccessList {
            allow: l.proxy_protocol.clone(),
            deny: Vec::new(),
        })
    })
}

/// The signals levee acts on.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

impl Server {
    fn listen(&mut self, addr: SocketAddr, steps: FirstSteps, sockets: Vec<std::net::TcpListener>) {
        let ctx = Arc::new(ListenerCtx {
            steps: arc_swap::ArcSwap::from_pointee(steps),
            ..ListenerCtx::new(addr, self.shared.clone())
        });
        let bound = sockets.first().and_then(|s| s.local_addr().ok());
        let front = match self.mail.get(&addr) {
            Some(mail) => Front::Mail(mail.clone()),
            None => Front::Http,
        };
        for (socket, w) in sockets.into_iter().zip(&self.workers) {
            let _ = w.tx.send(Command::Listen {
                socket,
                ctx: ctx.clone(),
                front: front.clone(),
            });
        }
        tracing::info!(listener = %addr, bound = ?bound, "listening");
        self.listening.insert(addr, ctx);
    }

    fn unlisten(&mut self, addr: SocketAddr) {
        for w in &self.workers {
            let _ = w.tx.send(Command::Unlisten(addr));
        }
        self.listening.remove(&addr);
        self.tls.close(addr);
        self.mail.remove(&addr);
        tracing::info!(listener = %addr, "stopped listening");
    }

    /// Waits for signals: SIGHUP reloads, SIGTERM and SIGINT stop.
    async fn control(mut self, mut signals: Signals) -> Result<(), ServerError> {
        self.upkeep = Upkeep::start(&self.shared.site.load());
        if let (Some(socket), Some(admin)) = (self.admin_socket.take(), self.config.admin) {
            match AdminListener::start(admin.address, socket, self.shared.clone()) {
                Ok(listener) => self.admin = Some(listener),
                Err(e) => {
                    tracing::error!(admin = %admin.address, error = %e, "admin listener failed")
                }
            }
        }
        let mut watch = tokio::time::interval(tls::WATCH_EVERY);
        loop {
            tokio::select! {
                _ = watch.tick() => self.tls.refresh(),
                _ = signals.hup.recv() => self.reload(),
                _ = signals.term.recv() => break,
                _ = signals.int.recv() => break,
            }
        }
        self.stop().await;
        Ok(())
    }

    /// Applies the config file anew; on any error the running config stays.
    fn reload(&mut self) {
        let Some(path) = self.config.source.clone() else {
            tracing::warn!("reload: levee runs a built-in config; nothing to reload");
            return;
        };
        let config = match levee_config::load(&path) {
            Ok(config) => config,
            Err(errors) => return refuse_reload(&errors.errors),
        };
        // The files `levee check` and start-up load, refused here as there:
        // a static root that is gone would answer 404 to everything.
        let errors = preflight::files(&config);
        if !errors.is_empty() {
            return refuse_reload(&errors);
        }
        let site = match Site::build_with(&config, &self.registry) {
            Ok(site) => site,
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the running config stays");
                return;
            }
        };
        if config.workers != self.config.workers {
            tracing::warn!("reload: a change of `workers` takes effect at the next start");
        }
        let mail_plan = match plan_mail(&config, &self.mail) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the running config stays");
                return;
            }
        };
        for l in &config.listeners {
            let was_mail = self.mail.contains_key(&l.address);
            if self.listening.contains_key(&l.address) && was_mail != l.mail.is_some() {
                tracing::warn!(listener = %l.address, "reload: a change of `protocol` takes effect at the next start");
            }
        }
        let wanted: HashMap<SocketAddr, u32> = config
            .listeners
            .iter()
            .map(|l| (l.address, l.backlog))
            .collect();
        let mut added = Vec::new();
        for (&addr, &backlog) in &wanted {
            if self.listening.contains_key(&addr) {
                continue;
            }
            match listeners::bind(addr, backlog, self.workers.len()) {
                Ok(sockets) => added.push((addr, sockets)),
                Err(e) => {
                    tracing::error!(listener = %addr, error = %e, "reload refused; the running config stays");
                    return;
                }
            }
        }
        let mut opened = Vec::with_capacity(added.len());
        for (addr, sockets) in added {
            let Some(l) = config.listeners.iter().find(|l| l.address == addr) else {
                continue;
            };
            match first_steps(&mut self.tls, l) {
                Ok(steps) => opened.push((addr, steps, sockets)),
                Err(e) => {
                    for (addr, _, _) in &opened {
                        self.tls.close(*addr);
                    }
                    tracing::error!(listener = %addr, error = %e, "reload refused; the running config stays");
                    return;
                }
            }
        }
        self.shared.site.store(Arc::new(site));
        self.update_first_steps(&config);
        for (front, state) in mail_plan.swap {
            front.swap(state);
        }
        for (addr, front) in mail_plan.new {
            if !self.listening.contains_key(&addr) {
                self.mail.insert(addr, front);
            }
        }
        self.upkeep = Upkeep::start(&self.shared.site.load());
        self.reload_admin(&config);
        for (addr, first, sockets) in opened {
            self.listen(addr, first, sockets);
        }
        let gone: Vec<SocketAddr> = self
            .listening
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        for addr in gone {
            self.unlisten(addr);
        }
        self.config = config;
        tracing::info!(file = %path.display(), "reloaded");
    }

    /// On reload, open listeners take their new TLS and PROXY protocol
    /// settings for connections accepted from now on. A listener whose TLS
    /// cannot start keeps its old steps.
    fn update_first_steps(&mut self, config: &Config) {
        for l in &config.listeners {
            let Some(ctx) = self.listening.get(&l.address).cloned() else {
                continue;
            };
            match first_steps(&mut self.tls, l) {
                Ok(steps) => ctx.steps.store(Arc::new(steps)),
                Err(e) => tracing::error!(
                    listener = %l.address,
                    error = %e,
                    "TLS cannot start; the listener keeps its previous settings"
                ),
            }
        }
    }

    /// Moves, starts or stops the admin listener when `[admin]` changed.
    fn reload_admin(&mut self, config: &Config) {
        let wanted = config.admin.map(|a| a.address);
        if wanted == self.admin.as_ref().map(|a| a.addr) {
            return;
        }
        self.admin = None;
        let Some(addr) = wanted else {
            return;
        };
        let started = AdminListener::bind(addr)
            .and_then(|socket| AdminListener::start(addr, socket, self.shared.clone()));
        match started {
            Ok(listener) => self.admin = Some(listener),
            Err(e) => tracing::error!(admin = %addr, error = %e, "admin listener failed"),
        }
    }

    /// Stops accepting and lets in-flight requests finish within the grace period.
    async fn stop(self) {
        tracing::info!("stopping: no new connections; finishing in-flight requests");
        self.shared.start_draining();
        for w in &self.workers {
            let _ = w.tx.send(Command::UnlistenAll);
        }
        // Mail sessions before login are told so and closed; logged-in ones
        // relay until the process exits.
        levee_mail::shutdown::begin();
        let deadline = Instant::now() + self.config.timeouts.grace;
        // One wait first: workers woken by the drain (HTTP/2 connections
        // sending GOAWAY) count themselves in flight when they run.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while (self.shared.in_flight() > 0 || levee_mail::metrics::open_preauth() > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.shared.in_flight();
        if left > 0 {
            tracing::warn!(
                requests = left,
                "grace period over; closing unfinished requests"
            );
        }
        if let Some(path) = &self.config.pid_file {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("stopped");
    }
}
