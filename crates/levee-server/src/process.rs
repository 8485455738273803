//! levee as a process, around [`crate::run`]'s server: the signals it acts
//! on, its sockets bound (or taken over from the levee it upgrades), its
//! pid file and control socket, the drop to `user`, and systemd told when
//! it is ready.
//!
//! ```text
//! signals installed ─▶ files checked ─▶ sockets bound as root (or handed over)
//!   ─▶ pid file, control socket (given to `user`) ─▶ drop to `user`, for good
//!   ─▶ site built, workers started, listeners served ─▶ READY=1 ─▶ control loop
//! ```
//!
//! Nothing reads a request before the drop: the workers that accept do
//! not exist yet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use levee_config::Config;
use tokio::signal::unix::{SignalKind, signal};

use crate::logfile::LogFile;
use crate::privileges::{self, Account, PrivilegeError};
use crate::upgrade::{self, UpgradeError};
use crate::{Inputs, Listeners, Server, ServerError, notify};

/// What the binary hands the process beyond its config.
#[derive(Debug, Default)]
pub struct Process {
    /// levee's own log file (`[log] error`), reopened on reload and SIGUSR1.
    pub log: Option<Arc<LogFile>>,
    /// Take the listening sockets from the levee answering on this control
    /// socket (`levee upgrade` starts the new binary so).
    pub inherit_from: Option<PathBuf>,
}

/// The signals levee acts on.
pub(crate) struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

/// What a signal asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sig {
    /// SIGHUP: reload.
    Reload,
    /// SIGUSR1: reopen the log files.
    Reopen,
    /// SIGUSR2: upgrade to the binary levee was started from (nginx's USR2).
    Upgrade,
    /// SIGTERM, SIGINT.
    Stop,
}

impl Signals {
    pub(crate) fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.hup.recv() => Sig::Reload,
            _ = self.usr1.recv() => Sig::Reopen,
            _ = self.usr2.recv() => Sig::Upgrade,
            _ = self.term.recv() => Sig::Stop,
            _ = self.int.recv() => Sig::Stop,
        }
    }
}

/// The next signal, or never without handlers (levee in a test's process).
pub(crate) async fn next_signal(signals: &mut Option<Signals>) -> Sig {
    match signals {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Runs levee as the `levee run` process: until SIGTERM or SIGINT, or until
/// a binary upgrade has handed its sockets over and its connections are done.
pub fn run_process(config: Config, process: Process) -> Result<(), ServerError> {
    // Before anything: a package upgrade replaces the file later, and
    // `levee upgrade` starts what is at this path then.
    let exe = std::env::current_exe().ok().filter(|p| p.exists());
    let control = crate::control_runtime()?;
    // Signal handlers first: a SIGHUP or SIGTERM that arrives while
    // listeners are being bound must be handled, not kill the process.
    let signals = {
        let _entered = control.enter();
        Signals::install().map_err(ServerError::Workers)?
    };
    crate::check_files(&config)?;
    let account = privileges::account(&config).map_err(|e| privilege_error(&config, &e))?;
    if let Some(a) = &account {
        privileges::can_become(a).map_err(|e| privilege_error(&config, &e))?;
    }
    let (mut listeners, handover) = match &process.inherit_from {
        Some(path) => {
            let (l, h) = upgrade::inherit(path).map_err(ServerError::Upgrade)?;
            (l, Some(h))
        }
        None => (Listeners::new(), None),
    };
    listeners.bind_missing(&config)?;
    // Before the drop, like the listeners: DNS's port 53 wants root.
    listeners.dns = Some(crate::dns::prepare(&config)?);
    let control_socket = control_socket(&config, &mut listeners)?;
    if handover.is_none() {
        write_pid_file(&config, account.as_ref())?;
    }
    if let Some(a) = &account {
        if let Some((path, _)) = &control_socket {
            give(&config, "control_socket", path, a)?;
        }
        privileges::drop_to(a).map_err(|e| privilege_error(&config, &e))?;
    }
    let mut server = Server::start(&control, config, listeners)?;
    server.exe = exe;
    server.log = process.log;
    {
        let _entered = control.enter();
        server.control = control_socket
            .map(|(path, socket)| crate::upgrade::ControlSocket::start(path, socket))
            .transpose()
            .map_err(ServerError::Workers)?;
    }
    if let Some(handover) = handover {
        handover.ready().map_err(ServerError::Upgrade)?;
        write_pid_file(&server.config, None)?;
    }
    notify::ready();
    tracing::info!(pid = std::process::id(), "ready");
    control.block_on(server.control(Inputs {
        shutdown: Box::pin(std::future::pending()),
        signals: Some(signals),
    }))
}

/// The control socket `config` names: the one handed over when it is at
/// the same path, else bound now.
fn control_socket(
    config: &Config,
    listeners: &mut Listeners,
) -> Result<Option<(PathBuf, std::os::unix::net::UnixListener)>, ServerError> {
    let inherited = listeners.inherited_control.take();
    let Some(path) = &config.control_socket else {
        return Ok(None);
    };
    if let Some((old, socket)) = inherited
        && &old == path
    {
        return Ok(Some((old, socket)));
    }
    match upgrade::bind(path) {
        Ok(socket) => Ok(Some((path.clone(), socket))),
        Err(e) => {
            let at = levee_config::Locator::new(config);
            let message = format!("cannot listen on {}: {e}", path.display());
            Err(ServerError::Invalid(
                at.error("control_socket", message).into(),
            ))
        }
    }
}

/// Writes the pid file, given to `account` (made as root, rewritten after
/// an upgrade by the new process, which runs as that user).
fn write_pid_file(config: &Config, account: Option<&Account>) -> Result<(), ServerError> {
    let Some(path) = &config.pid_file else {
        return Ok(());
    };
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        let at = levee_config::Locator::new(config);
        let error = at.error("pid_file", format!("cannot write {}: {e}", path.display()));
        return Err(ServerError::Invalid(error.into()));
    }
    match account {
        Some(a) => give(config, "pid_file", path, a),
        None => Ok(()),
    }
}

fn give(config: &Config, key: &str, path: &Path, a: &Account) -> Result<(), ServerError> {
    privileges::give(path, a).map_err(|e| {
        let at = levee_config::Locator::new(config);
        let message = format!("cannot give {} to `{}`: {e}", path.display(), a.user);
        ServerError::Invalid(at.error(key, message).into())
    })
}

/// A privilege problem at the key it comes from.
pub(crate) fn privilege_error(config: &Config, e: &PrivilegeError) -> ServerError {
    let key = match e {
        PrivilegeError::NoGroup(_) => "group",
        PrivilegeError::Lookup(name, _) if config.group.as_ref() == Some(name) => "group",
        _ => "user",
    };
    let at = levee_config::Locator::new(config);
    ServerError::Invalid(at.error(key, e.to_string()).into())
}

/// `levee upgrade`: through the control socket `config` names.
pub fn upgrade(config: &Config, binary: Option<&Path>) -> Result<u32, UpgradeError> {
    let socket = config
        .control_socket
        .as_deref()
        .ok_or(UpgradeError::NoControlSocket)?;
    upgrade::request(socket, binary)
}
