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
mod error;
pub mod fleet;
pub mod listeners;
pub mod logfile;
mod notify;
pub mod preflight;
pub mod privileges;
pub mod process;
mod push;
mod reload;
pub mod tls;
pub mod upgrade;
pub mod upkeep;
pub mod worker;

pub use error::{ReloadError, ServerError};
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
use upgrade::ControlSocket;
use upkeep::{AdminListener, Upkeep};

use reload::plan_mail;
use worker::{Command, Front, Worker};

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
