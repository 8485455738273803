//! levee's runtime: workers, listeners, reload and shutdown.
//!
//! ```text
//! control thread                      worker threads (one per core)
//! ──────────────                      ─────────────────────────────
//! build site, bind listeners ──────▶  accept loop per listener ─▶ conn::serve per connection
//! SIGHUP, POST /reload or a fleet push:
//!   load + validate config,
//!   build site, swap it in,
//!   bind new / drop old listeners ──▶ Listen / Unlisten
//! SIGTERM: stop accepting ─────────▶  UnlistenAll; connections finish their request
//!   wait for in-flight requests (up to the grace period), exit 0
//! SIGUSR1: reopen the log files
//! levee upgrade (control socket) or SIGUSR2: a new binary takes the
//!   sockets (upgrade.rs), then this one drains as on SIGTERM
//! ```
//!
//! [`run`] serves sockets its caller bound until a future resolves (tests
//! run levee in-process with it); [`run_process`] is the `levee run`
//! process around it: signals, privileges, pid file, systemd.

pub mod acme;
mod dns;
pub mod fleet;
pub mod listeners;
pub mod logfile;
mod notify;
pub mod preflight;
pub mod privileges;
pub mod process;
mod push;
pub mod tls;
pub mod upgrade;
pub mod upkeep;
pub mod worker;

pub use listeners::Listeners;
pub use process::{Process, run_process};

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use levee_admin::control::{Ask, Outcome, Reloader};
use levee_config::{Config, ConfigErrors};
use levee_http::conn::{FirstSteps, ListenerCtx};
use levee_http::{Shared, Site};
use levee_upstream::Registry;

use process::{Sig, Signals};
use upgrade::{ControlSocket, UpgradeError};
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
    Invalid(ConfigErrors),
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
    /// `[fleet]` credentials or CA file that do not load, at their keys.
    #[error("{0}")]
    FleetFiles(levee_config::ConfigErrors),
    #[error("fleet: {0}")]
    Fleet(levee_fleet::FleetError),
    #[error("upgrade: {0}")]
    Upgrade(#[from] UpgradeError),
    #[error("dns: {0}")]
    Dns(levee_dns::DnsError),
}

/// Why a reload was refused; the running config stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("levee runs a built-in config; there is no file to reload")]
    Builtin,
    /// Every problem of the file, each at its file:line:column and key.
    #[error("{0}")]
    Config(ConfigErrors),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl From<levee_http::site::SiteError> for ReloadError {
    fn from(e: levee_http::site::SiteError) -> ReloadError {
        ReloadError::Server(ServerError::Site(e))
    }
}

impl ReloadError {
    /// One line per problem, as `levee reload` prints them.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ReloadError::Config(errors)
            | ReloadError::Server(ServerError::Invalid(errors) | ServerError::FleetFiles(errors)) => {
                errors.errors.iter().map(ToString::to_string).collect()
            }
            other => vec![other.to_string()],
        }
    }
}

/// The admin listener's rules for `config`, read from the files and
/// variables `[admin]` names; `None` without `[admin]`.
fn admin_access(config: &Config) -> Result<Option<levee_admin::Access>, ServerError> {
    let Some(admin) = &config.admin else {
        return Ok(None);
    };
    let source = config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(levee_config::BUILTIN_SOURCE));
    levee_admin::Access::load(admin, &source)
        .map(Some)
        .map_err(|errors| ServerError::Invalid(ConfigErrors { errors }))
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
    /// The admin listener's rules and sessions; kept across reloads, also
    /// when the listener moves.
    admin_state: Option<Arc<levee_admin::Admin>>,
    /// `POST /reload` asks arrive here; the sender is kept so the channel
    /// stays open even while no admin listener runs.
    reloader: Reloader,
    reload_asks: tokio::sync::mpsc::Receiver<Ask>,
    tls: tls::TlsListeners,
    /// Mail listeners' state by address; kept across reloads like the listener.
    mail: HashMap<SocketAddr, Arc<levee_mail::Frontend>>,
    /// `[fleet]` membership (fleet.rs).
    fleet: fleet::Membership,
    /// A second descriptor of each listener's sockets (the workers hold
    /// the first), for a binary upgrade to hand over.
    sockets: HashMap<SocketAddr, Vec<std::net::TcpListener>>,
    /// The admin listener's socket, likewise.
    admin_dup: Option<std::net::TcpListener>,
    /// The control socket (`control_socket`), for `levee upgrade`.
    control: Option<ControlSocket>,
    /// The binary levee was started from: what an upgrade starts.
    exe: Option<PathBuf>,
    /// levee's own log file, reopened on reload and SIGUSR1.
    log: Option<Arc<logfile::LogFile>>,
    /// Why the last upgrade failed, for `levee upgrade`'s answer.
    upgrade_error: Option<String>,
    /// `[dns]`, the authoritative DNS server (dns.rs).
    dns: dns::Service,
    /// Configs pushed to this member through the fleet (push.rs).
    pushes: tokio::sync::mpsc::UnboundedReceiver<fleet::Push>,
}

/// What the control loop answers besides reloads from the admin listener.
pub(crate) struct Inputs {
    /// Stops levee when it resolves.
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The process's signals; `None` in-process.
    signals: Option<Signals>,
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

/// Runs levee with `config` on `listeners` (sockets the caller bound,
/// listening or not; any other address of the config is bound here) until
/// `shutdown` resolves, then stops as on SIGTERM: no new connections,
/// in-flight requests finish within `timeouts.grace`. Installs no signal
/// handler and changes no privilege: that is [`run_process`]'s business.
/// A reload is asked through the admin listener (`POST /reload`).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = socket.local_addr()?;
/// let text = format!("[[listener]]\naddress = \"{addr}\"\n[[route]]\nrespond = \"hi\"\n");
/// let config = levee_config::parse(&text, std::path::Path::new("levee.toml"))?;
/// let mut listeners = levee_server::Listeners::new();
/// listeners.add(addr, socket);
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = std::thread::spawn(move || {
///     levee_server::run(listeners, config, async {
///         let _ = stopped.await;
///     })
/// });
/// // ... requests to addr ...
/// let _ = stop.send(());
/// server.join().expect("levee's thread")?;
/// # Ok(())
/// # }
/// ```
pub fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let control = control_runtime()?;
    check_files(&config)?;
    let mut listeners = listeners;
    listeners.bind_missing(&config)?;
    let server = Server::start(&control, config, listeners)?;
    if let Some(path) = &server.config.pid_file
        && let Err(e) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        let at = levee_config::Locator::new(&server.config);
        let error = at.error("pid_file", format!("cannot write {}: {e}", path.display()));
        return Err(ServerError::Invalid(error.into()));
    }
    control.block_on(server.control(Inputs {
        shutdown: Box::pin(shutdown),
        signals: None,
    }))
}

/// The control thread's runtime: signals, reloads, health checks, the
/// admin listener.
fn control_runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Workers)
}

/// The files first, each problem at its key, before anything is bound.
fn check_files(config: &Config) -> Result<(), ServerError> {
    let mut errors = preflight::files(config);
    errors.extend(tls::check(config));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServerError::Invalid(levee_config::ConfigErrors { errors }))
    }
}

/// An address the OS would not bind for a reload, at the key asking for it.
fn refused_bind(config: &Config, key: String, addr: SocketAddr, e: &std::io::Error) -> ServerError {
    let at = levee_config::Locator::new(config);
    ServerError::Invalid(at.error(&key, preflight::cannot_listen(addr, e)).into())
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
        h2_only: l.h2_only,
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

impl Server {
    /// Builds the site, starts the workers and serves `listeners` (which
    /// has a socket for every listener of `config`); the admin listener
    /// and the control thread's tasks start on `control`.
    fn start(
        control: &tokio::runtime::Runtime,
        config: Config,
        mut listeners: Listeners,
    ) -> Result<Server, ServerError> {
        let registry = Registry::new();
        // Before the site: its fleet-scoped rate limits use the fleet.
        let (mut membership, pushes) = fleet::Membership::start(&config)?;
        // After the fleet (certificates are shared through it), before the
        // listeners (the certificates on disk are served from the first
        // handshake).
        acme::apply(&config)?;
        let site = Site::build_with(&config, &registry)?;
        let shared = Shared::new(site);
        membership.serve(shared.clone());
        let (reloader, reload_asks) = levee_admin::control::channel();
        let admin_state = admin_access(&config)?
            .map(|access| levee_admin::Admin::new(shared.clone(), access, Some(reloader.clone())));
        if let Some(state) = &admin_state {
            state.dash().set_config(Arc::new(config.clone()));
        }
        let mail_plan = plan_mail(&config, &HashMap::new())?;
        // After the fleet: its fleet records read the member list.
        let prepared = match listeners.dns.take() {
            Some(prepared) => prepared,
            None => dns::prepare(&config)?,
        };
        let mut dns = dns::Service::default();
        dns.apply(prepared)?;
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
            admin_socket: listeners.admin.take(),
            admin: None,
            admin_state,
            reloader,
            reload_asks,
            tls: tls::TlsListeners::default(),
            mail: mail_plan.new.into_iter().collect(),
            fleet: membership,
            sockets: HashMap::new(),
            admin_dup: None,
            control: None,
            exe: None,
            log: None,
            upgrade_error: None,
            dns,
            pushes,
        };
        let mut opened = Vec::with_capacity(server.config.listeners.len());
        for l in &server.config.listeners {
            let addr = l.address;
            let steps = first_steps(&mut server.tls, l)
                .map_err(|source| ServerError::Tls { addr, source })?;
            // bind_missing gave every listener its sockets.
            let sockets = listeners
                .take(addr, server.workers.len(), l.backlog)
                .unwrap_or_else(|| Err(std::io::ErrorKind::NotFound.into()))
                .map_err(|e| {
                    ServerError::Workers(std::io::Error::other(format!("listener {addr}: {e}")))
                })?;
            opened.push((addr, steps, sockets));
        }
        for addr in listeners.leftover() {
            tracing::info!(listener = %addr, "a handed-over listener the config no longer has: closed");
        }
        for (addr, first, sockets) in opened {
            server.listen(addr, first, sockets);
        }
        let _entered = control.enter();
        server.upkeep = Upkeep::start(&server.shared.site.load());
        let admin = server.config.admin.as_ref().map(|a| a.address);
        if let (Some(socket), Some(addr)) = (server.admin_socket.take(), admin) {
            server.serve_admin(addr, socket);
        }
        Ok(server)
    }

    /// Serves the admin listener on `socket` (keeping a descriptor of it
    /// for a binary upgrade).
    fn serve_admin(&mut self, addr: SocketAddr, socket: std::net::TcpListener) {
        let Some(state) = self.admin_state.clone() else {
            return;
        };
        self.admin = None;
        self.admin_dup = socket.try_clone().ok();
        match AdminListener::start(addr, socket, state) {
            Ok(listener) => self.admin = Some(listener),
            Err(e) => tracing::error!(admin = %addr, error = %e, "admin listener failed"),
        }
    }

    /// Serves `sockets` (each worker's) for the listener at `addr`.
    fn listen(
        &mut self,
        addr: SocketAddr,
        steps: FirstSteps,
        sockets: Vec<Vec<std::net::TcpListener>>,
    ) {
        let ctx = Arc::new(ListenerCtx {
            steps: arc_swap::ArcSwap::from_pointee(steps),
            ..ListenerCtx::new(addr, self.shared.clone())
        });
        let bound = sockets
            .first()
            .and_then(|s| s.first())
            .and_then(|s| s.local_addr().ok());
        let front = match self.mail.get(&addr) {
            Some(mail) => Front::Mail(mail.clone()),
            None => Front::Http,
        };
        let mut kept = Vec::new();
        for (mine, w) in sockets.into_iter().zip(&self.workers) {
            for socket in mine {
                match socket.try_clone() {
                    Ok(dup) => kept.push(dup),
                    Err(e) => {
                        tracing::warn!(listener = %addr, error = %e, "cannot keep a socket for an upgrade")
                    }
                }
                let _ = w.tx.send(Command::Listen {
                    socket,
                    ctx: ctx.clone(),
                    front: front.clone(),
                });
            }
        }
        tracing::info!(listener = %addr, bound = ?bound, "listening");
        self.sockets.insert(addr, kept);
        self.listening.insert(addr, ctx);
    }

    fn unlisten(&mut self, addr: SocketAddr) {
        for w in &self.workers {
            let _ = w.tx.send(Command::Unlisten(addr));
        }
        self.listening.remove(&addr);
        self.sockets.remove(&addr);
        self.tls.close(addr);
        self.mail.remove(&addr);
        tracing::info!(listener = %addr, "stopped listening");
    }

    /// Answers reloads, signals and the control socket until levee stops
    /// (SIGTERM, SIGINT, `shutdown`) or an upgrade took over.
    async fn control(mut self, mut inputs: Inputs) -> Result<(), ServerError> {
        let mut watch = tokio::time::interval(tls::WATCH_EVERY);
        let handed_over = loop {
            tokio::select! {
                _ = watch.tick() => self.tls.refresh(),
                sig = process::next_signal(&mut inputs.signals) => match sig {
                    Sig::Reload => {
                        let _ = self.reload_logged();
                    }
                    Sig::Reopen => self.reopen_logs(),
                    Sig::Upgrade => {
                        if self.upgrade_logged(None).await.is_some() {
                            break true;
                        }
                    }
                    Sig::Stop => break false,
                },
                Some(ask) = self.reload_asks.recv() => {
                    let outcome = match self.reload_logged() {
                        Ok(file) => Outcome::Reloaded(file),
                        Err(e) => Outcome::Refused(e.lines()),
                    };
                    let _ = ask.send(outcome);
                }
                Some(push) = self.pushes.recv() => self.apply_push(push),
                conn = upgrade::next_control(&self.control) => {
                    if self.on_control(conn).await {
                        break true;
                    }
                }
                () = &mut inputs.shutdown => break false,
            }
        };
        self.stop(handed_over).await;
        Ok(())
    }

    /// Reopens levee's own log file and the access log file at their paths
    /// (SIGUSR1, after logrotate moved them; also on reload).
    fn reopen_logs(&self) {
        let mut failed = false;
        if let Some(log) = &self.log
            && let Err(e) = log.reopen()
        {
            failed = true;
            tracing::error!(file = %log.path().display(), error = %e, "cannot reopen the log file; writing on to the old one");
        }
        if let Err(e) = self.shared.site.load().access_log.reopen() {
            failed = true;
            tracing::error!(error = %e, "cannot reopen the access log; writing on to the old one");
        }
        if !failed {
            tracing::info!("log files reopened");
        }
    }

    /// Reloads (SIGHUP or `POST /reload`) and logs the outcome: each
    /// problem of a refused config on its own line.
    fn reload_logged(&mut self) -> Result<PathBuf, ReloadError> {
        notify::reloading();
        let result = self.reload();
        notify::ready();
        self.reopen_logs();
        match &result {
            Ok(path) => tracing::info!(file = %path.display(), "reloaded"),
            Err(ReloadError::Builtin) => {
                tracing::warn!("reload: levee runs a built-in config; nothing to reload")
            }
            Err(e) => {
                let lines = e.lines();
                for line in &lines {
                    tracing::error!("{line}");
                }
                tracing::error!(
                    errors = lines.len(),
                    "reload refused; the running config stays"
                );
            }
        }
        result
    }

    /// Applies the config file anew; on any error the running config stays.
    fn reload(&mut self) -> Result<PathBuf, ReloadError> {
        let path = self.config.source.clone().ok_or(ReloadError::Builtin)?;
        let config = levee_config::load(&path).map_err(ReloadError::Config)?;
        self.apply(config)?;
        Ok(path)
    }

    /// The one reload, whatever asked for it (SIGHUP, `POST /reload`, a
    /// fleet push): all or nothing. Everything that can fail is done
    /// before anything changes: the files loaded, the user maps read, the
    /// admin rules read, new addresses bound, new listeners' TLS loaded.
    /// One step needs the new membership first: a changed `[fleet]` is
    /// joined just before the site is built (its fleet-scoped limits find
    /// the fleet then); a site that then fails to build rejoins the old
    /// one. The certificate manager (`[acme]`) takes its new names after
    /// the fleet it shares certificates through, and gets the old ones back
    /// likewise. What stays outside, as logged: open listeners whose new
    /// certificates do not load keep the ones in use (tls.rs; `levee
    /// check` and a push refuse such a config first).
    fn apply(&mut self, config: Config) -> Result<(), ReloadError> {
        // The files `levee check` and start-up load, refused here as there:
        // a static root that is gone would answer 404 to everything.
        let mut errors = preflight::files(&config);
        errors.extend(fleet::check(&config));
        if !errors.is_empty() {
            return Err(ReloadError::Config(ConfigErrors { errors }));
        }
        if config.workers != self.config.workers {
            tracing::warn!("reload: a change of `workers` takes effect at the next start");
        }
        let mail_plan = plan_mail(&config, &self.mail)?;
        let admin_access = admin_access(&config)?;
        // A moved admin listener is bound now, so an address in use refuses
        // the reload instead of leaving levee without its admin listener.
        let admin_wanted = config.admin.as_ref().map(|a| a.address);
        let admin_socket = match admin_wanted {
            Some(addr) if Some(addr) != self.admin.as_ref().map(|a| a.addr) => Some(
                AdminListener::bind(addr)
                    .map_err(|e| refused_bind(&config, "admin.address".into(), addr, &e))?,
            ),
            _ => None,
        };
        // [dns]'s files loaded and its new sockets bound beside the running
        // ones; served once nothing else can fail.
        let dns_plan = dns::prepare(&config)?;
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
            let sockets = listeners::bind(addr, backlog, self.workers.len()).map_err(|e| {
                let i = config.listeners.iter().position(|l| l.address == addr);
                let key = format!("listener[{}].address", i.unwrap_or_default());
                refused_bind(&config, key, addr, &e)
            })?;
            // One socket per worker, as at start.
            added.push((
                addr,
                sockets.into_iter().map(|s| vec![s]).collect::<Vec<_>>(),
            ));
        }
        let mut opened = Vec::with_capacity(added.len());
        let close_opened = |tls: &mut tls::TlsListeners, opened: &[(SocketAddr, FirstSteps, _)]| {
            for (addr, _, _) in opened {
                tls.close(*addr);
            }
        };
        for (addr, sockets) in added {
            let Some(l) = config.listeners.iter().find(|l| l.address == addr) else {
                continue;
            };
            match first_steps(&mut self.tls, l) {
                Ok(steps) => opened.push((addr, steps, sockets)),
                Err(source) => {
                    close_opened(&mut self.tls, &opened);
                    return Err(ServerError::Tls { addr, source }.into());
                }
            }
        }
        let site = self
            .fleet
            .apply(&config)
            .and_then(|()| acme::apply(&config))
            .and_then(|()| Site::build_with(&config, &self.registry).map_err(ServerError::Site));
        let site = match site {
            Ok(site) => site,
            Err(e) => {
                close_opened(&mut self.tls, &opened);
                if let Err(back) = self.fleet.apply(&self.config) {
                    tracing::error!(error = %back, "reload refused, and the previous [fleet] cannot be joined again");
                }
                if let Err(back) = acme::apply(&self.config) {
                    tracing::error!(error = %back, "reload refused, and the previous [acme] cannot be applied again");
                }
                return Err(e.into());
            }
        };
        // Nothing fails from here on.
        self.shared.site.store(Arc::new(site));
        if let Err(e) = self.dns.apply(dns_plan) {
            // Only a thread or runtime that cannot start gets here.
            tracing::error!(error = %e, "reload: the new DNS server cannot start; the running one (if any) stays");
        }
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
        self.reload_admin(&config, admin_access, admin_socket);
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
        Ok(())
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

    /// Gives the admin listener its new rules, and moves, starts or stops
    /// it when `[admin] address` changed (`socket` is the new address,
    /// bound while the reload was checked).
    fn reload_admin(
        &mut self,
        config: &Config,
        access: Option<levee_admin::Access>,
        socket: Option<std::net::TcpListener>,
    ) {
        match (access, &self.admin_state) {
            (None, _) => {
                self.admin = None;
                self.admin_dup = None;
                self.admin_state = None;
                return;
            }
            (Some(access), Some(state)) => state.update(access),
            (Some(access), None) => {
                self.admin_state = Some(levee_admin::Admin::new(
                    self.shared.clone(),
                    access,
                    Some(self.reloader.clone()),
                ));
            }
        }
        // The dashboard's config view shows what now runs.
        if let Some(state) = &self.admin_state {
            state.dash().set_config(Arc::new(config.clone()));
        }
        let (Some(socket), Some(admin)) = (socket, &config.admin) else {
            return;
        };
        self.serve_admin(admin.address, socket);
    }

    /// Stops accepting and lets in-flight requests finish within the grace
    /// period. After a binary upgrade (`handed_over`) the new process holds
    /// the sockets, the pid file and systemd's attention; this one lets its
    /// WebSocket tunnels and mail sessions, logged in or not, finish too,
    /// within the same period.
    async fn stop(mut self, handed_over: bool) {
        if handed_over {
            tracing::info!("upgraded: no new connections here; finishing connections and sessions");
        } else {
            notify::stopping();
            tracing::info!("stopping: no new connections; finishing in-flight requests");
        }
        self.fleet.stopping();
        self.shared.start_draining();
        for w in &self.workers {
            let _ = w.tx.send(Command::UnlistenAll);
        }
        self.sockets.clear();
        self.admin = None;
        self.admin_dup = None;
        self.control = None;
        if !handed_over {
            // Mail sessions before login are told so and closed; logged-in
            // ones relay until the process exits.
            levee_mail::shutdown::begin();
        }
        let busy = |shared: &Shared| {
            shared.in_flight() > 0
                || if handed_over {
                    levee_mail::metrics::open_sessions() > 0
                } else {
                    levee_mail::metrics::open_preauth() > 0
                }
        };
        let deadline = Instant::now() + self.config.timeouts.grace;
        // One wait first: workers woken by the drain (HTTP/2 connections
        // sending GOAWAY) count themselves in flight when they run.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while busy(&self.shared) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.shared.in_flight();
        if left > 0 {
            tracing::warn!(
                requests = left,
                "grace period over; closing unfinished requests"
            );
        }
        if !handed_over
            && let Some(path) = &self.config.pid_file
            && std::fs::remove_file(path).is_err()
        {
            // After the drop to `user` the directory may not be ours, but
            // the file is: leave it naming no process.
            let _ = std::fs::write(path, "");
        }
        acme::stop();
        self.dns.leave();
        self.fleet.leave();
        tracing::info!("stopped");
    }
}
