//! The old process's side of a binary upgrade (see `upgrade.rs`): the
//! control socket's commands, starting the new binary, handing it the
//! sockets and waiting for it to be ready.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::time::Instant;

use super::handover::Kind;
use super::{ControlCommand, HANDOVER_TIMEOUT, UpgradeError};
use crate::{Server, notify};

/// How often the new process is looked at while it starts.
const POLL: Duration = Duration::from_millis(100);

impl Server {
    /// Answers one connection to the control socket; `true` when an
    /// upgrade took over and this levee is to drain.
    pub(crate) async fn on_control(&mut self, conn: io::Result<UnixStream>) -> bool {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                return false;
            }
        };
        let line = match tokio::time::timeout(Duration::from_secs(5), super::read_line(&conn)).await
        {
            Ok(Ok(line)) => line,
            _ => return false,
        };
        let answer = match super::parse_command(&line) {
            ControlCommand::Upgrade(binary) => match self.upgrade_logged(binary).await {
                Some(pid) => {
                    let _ = super::write(&conn, &format!("ok {pid}\n")).await;
                    return true;
                }
                None => format!("error {}\n", self.last_upgrade_error()),
            },
            ControlCommand::Listeners => "error no upgrade in progress\n".to_owned(),
            ControlCommand::Unknown(what) => {
                format!("error unknown command `{what}`; expected `upgrade [BINARY]`\n")
            }
        };
        let _ = super::write(&conn, &answer).await;
        false
    }

    /// Upgrades (control socket or SIGUSR2) and logs the outcome; the new
    /// process's pid when it took over.
    pub(crate) async fn upgrade_logged(&mut self, binary: Option<PathBuf>) -> Option<u32> {
        match self.upgrade(binary).await {
            Ok(pid) => {
                tracing::info!(pid, "upgrade: the new process serves; draining this one");
                self.upgrade_error = None;
                Some(pid)
            }
            Err(e) => {
                tracing::error!(error = %e, "upgrade failed; this process goes on serving");
                self.upgrade_error = Some(e.to_string());
                None
            }
        }
    }

    fn last_upgrade_error(&self) -> String {
        self.upgrade_error.clone().unwrap_or_default()
    }

    async fn upgrade(&mut self, binary: Option<PathBuf>) -> Result<u32, UpgradeError> {
        let control = self.control.as_ref().ok_or(UpgradeError::NoControlSocket)?;
        let source = self.config.source.clone().ok_or(UpgradeError::Builtin)?;
        let binary = binary
            .or_else(|| self.exe.clone())
            .ok_or(UpgradeError::NoBinary)?;
        tracing::info!(binary = %binary.display(), "upgrade: starting the new binary");
        let mut child = super::spawn(&binary, &source, &control.path)?;
        let pid = child.id();
        match self.hand_over(&mut child).await {
            Ok(conn) => {
                // Still the main process: systemd takes the new one as
                // main from now on, then hears READY=1 from it.
                notify::main_pid(pid);
                super::write(&conn, "ok\n")
                    .await
                    .map_err(UpgradeError::Handover)?;
                Ok(pid)
            }
            Err(e) => {
                super::stop_child(&mut child).await;
                Err(e)
            }
        }
    }

    /// Waits for `child` to ask for the sockets, sends them, and waits for
    /// it to say it is ready; the connection it is on.
    async fn hand_over(&self, child: &mut Child) -> Result<UnixStream, UpgradeError> {
        let deadline = Instant::now() + HANDOVER_TIMEOUT;
        let pid = child.id();
        let conn = loop {
            let accepted = tokio::time::timeout(POLL, super::next_control(&self.control)).await;
            check_child(child, deadline)?;
            let Ok(accepted) = accepted else { continue };
            let conn = accepted.map_err(UpgradeError::Handover)?;
            if !super::peer_is(&conn, pid) {
                let _ = super::write(&conn, "error an upgrade is in progress\n").await;
                continue;
            }
            let line = tokio::time::timeout(Duration::from_secs(5), super::read_line(&conn))
                .await
                .map_err(|_| UpgradeError::Timeout)?
                .map_err(UpgradeError::Handover)?;
            if line != "listeners" {
                return Err(UpgradeError::Refused(format!(
                    "the new process asked `{line}`"
                )));
            }
            break conn;
        };
        let items = self.handed_sockets();
        super::send_sockets(&conn, &items).map_err(UpgradeError::Handover)?;
        tracing::info!(sockets = items.len(), pid, "upgrade: sockets handed over");
        loop {
            let line = tokio::time::timeout(POLL, super::read_line(&conn)).await;
            check_child(child, deadline)?;
            match line {
                Err(_) => continue,
                Ok(Ok(line)) if line == format!("ready {pid}") => return Ok(conn),
                Ok(Ok(line)) => {
                    return Err(UpgradeError::Refused(format!(
                        "the new process said `{line}`"
                    )));
                }
                Ok(Err(e)) => return Err(UpgradeError::Handover(e)),
            }
        }
    }

    /// Every socket to hand over, with what it is.
    fn handed_sockets(&self) -> Vec<(Kind, std::os::fd::BorrowedFd<'_>)> {
        let mut items = Vec::new();
        for (addr, sockets) in &self.sockets {
            items.extend(sockets.iter().map(|s| (Kind::Listener(*addr), s.as_fd())));
        }
        if let (Some(socket), Some(admin)) = (&self.admin_dup, &self.config.admin) {
            items.push((Kind::Admin(admin.address), socket.as_fd()));
        }
        if let Some(c) = &self.control {
            items.push((Kind::Control(c.path.clone()), c.dup.as_fd()));
        }
        items
    }
}

/// The new process's failure so far: it exited, or time is up.
fn check_child(child: &mut Child, deadline: Instant) -> Result<(), UpgradeError> {
    if let Ok(Some(status)) = child.try_wait() {
        return Err(UpgradeError::Exited(status));
    }
    if Instant::now() >= deadline {
        return Err(UpgradeError::Timeout);
    }
    Ok(())
}
