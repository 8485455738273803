//! Zero-downtime binary upgrade (`levee upgrade`), as nginx's USR2 and
//! HAProxy's socket transfer do it, over the control socket
//! (`control_socket`):
//!
//! ```text
//! levee upgrade ──"upgrade [BINARY]"──▶ old levee (control thread)
//!                                        spawns BINARY run -c FILE --inherit-from SOCKET
//! new levee ─────"listeners"──────────▶ old: every listening socket, SCM_RIGHTS (handover.rs)
//! new: builds its site, accepts on the same sockets, starts its admin listener
//! new ───────────"ready PID"──────────▶ old: tells systemd MAINPID=PID
//! new ◀──────────"ok"─────────────────  old
//! new: writes pid_file, tells systemd READY=1
//! levee upgrade ◀──"ok PID"───────────  old: stops accepting, lets its connections and
//!                                        sessions (WebSocket, mail) finish within grace, exits
//! ```
//!
//! Both processes hold the same sockets meanwhile, so the kernel's accept
//! queues never close: a connection is accepted by one or the other. If
//! the new process fails (exits, or is not ready within
//! [`HANDOVER_TIMEOUT`]), it is stopped and the old one goes on serving;
//! `levee upgrade` prints why and exits 1.
//!
//! The control socket takes one command per connection, from whoever may
//! connect to it: make its directory root's or levee's alone. It is made
//! mode 0600, and `listeners` is answered only to the process the upgrade
//! started (checked with `SO_PEERCRED`).

pub(crate) mod handover;
mod old;

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::Interest;

use crate::listeners::Listeners;
use handover::Kind;

/// How long a new process has to ask for the sockets and be ready.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `levee upgrade` waits for the verdict.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest command line read from the control socket.
const MAX_LINE: usize = 4096;

/// Why an upgrade did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("the config sets no control_socket; `levee upgrade` needs one")]
    NoControlSocket,
    #[error("levee runs a built-in config; there is no file for the new binary to read")]
    Builtin,
    #[error("the binary to start is unknown; give `levee upgrade --binary PATH`")]
    NoBinary,
    #[error("starting {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the new process exited ({0}) before it was ready; see its log")]
    Exited(std::process::ExitStatus),
    #[error("the new process was not ready within {}s", HANDOVER_TIMEOUT.as_secs())]
    Timeout,
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("hand-over: {0}")]
    Handover(io::Error),
    /// What the running levee answered instead of `ok`.
    #[error("{0}")]
    Refused(String),
}

/// The control socket: its path, and the socket twice (served, and kept
/// to hand over).
pub(crate) struct ControlSocket {
    pub(crate) path: PathBuf,
    listener: tokio::net::UnixListener,
    pub(crate) dup: std::os::unix::net::UnixListener,
}

impl ControlSocket {
    /// Serves `socket`; must run inside the control runtime.
    pub(crate) fn start(
        path: PathBuf,
        socket: std::os::unix::net::UnixListener,
    ) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let dup = socket.try_clone()?;
        Ok(ControlSocket {
            path,
            listener: tokio::net::UnixListener::from_std(socket)?,
            dup,
        })
    }
}

/// The next connection to the control socket, or never without one.
pub(crate) async fn next_control(
    control: &Option<ControlSocket>,
) -> std::io::Result<tokio::net::UnixStream> {
    match control {
        Some(c) => c.listener.accept().await.map(|(conn, _)| conn),
        None => std::future::pending().await,
    }
}

/// Binds the control socket at `path`, mode 0600. A socket file left by a
/// levee that did not stop cleanly is replaced; one that a running levee
/// answers on is not.
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "a running levee answers on it",
                ));
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let listener = UnixListener::bind(path)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// `levee upgrade`: asks the levee at `socket` to start `binary` (its own
/// binary's path at start if `None`) and waits for the verdict: the new
/// process's pid.
pub fn request(socket: &Path, binary: Option<&Path>) -> Result<u32, UpgradeError> {
    let err = |source| UpgradeError::Socket {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(err)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(err)?;
    let line = match binary {
        Some(b) => format!("upgrade {}\n", b.display()),
        None => "upgrade\n".to_owned(),
    };
    stream.write_all(line.as_bytes()).map_err(err)?;
    let answer = read_line_blocking(&mut stream).map_err(err)?;
    match answer.strip_prefix("ok ").map(str::parse::<u32>) {
        Some(Ok(pid)) => Ok(pid),
        _ => Err(UpgradeError::Refused(
            answer.strip_prefix("error ").unwrap_or(&answer).to_owned(),
        )),
    }
}

fn read_line_blocking(stream: &mut UnixStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < MAX_LINE {
        match stream.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The new process's side, kept until it is ready.
#[derive(Debug)]
pub struct Handover {
    stream: UnixStream,
}

/// The new process: asks the old one at `socket` for its listening
/// sockets. Blocking, before the runtime starts.
pub(crate) fn inherit(socket: &Path) -> Result<(Listeners, Handover), UpgradeError> {
    let err = |source| UpgradeError::Socket {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(err)?;
    stream
        .set_read_timeout(Some(HANDOVER_TIMEOUT))
        .map_err(err)?;
    stream.write_all(b"listeners\n").map_err(err)?;
    let items = handover::receive(&stream).map_err(UpgradeError::Handover)?;
    let mut listeners = Listeners::new();
    for (kind, fd) in items {
        match kind {
            Kind::Listener(addr) => {
                listeners.add(addr, fd.into());
            }
            Kind::Admin(addr) => listeners.inherited_admin = Some((addr, fd.into())),
            Kind::Control(path) => listeners.inherited_control = Some((path, fd.into())),
        }
    }
    tracing::info!(from = %socket.display(), "took over the listening sockets");
    Ok((listeners, Handover { stream }))
}

impl Handover {
    /// Tells the old process this one serves, and waits for its word that
    /// the service is now this process's (after which the old one drains).
    pub(crate) fn ready(mut self) -> Result<(), UpgradeError> {
        let line = format!("ready {}\n", std::process::id());
        self.stream
            .write_all(line.as_bytes())
            .map_err(UpgradeError::Handover)?;
        let answer = read_line_blocking(&mut self.stream).map_err(UpgradeError::Handover)?;
        if answer == "ok" {
            Ok(())
        } else {
            Err(UpgradeError::Refused(format!(
                "the old process did not confirm ({answer:?})"
            )))
        }
    }
}

/// A command read from the control socket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ControlCommand {
    /// Start this binary (or levee's own) and hand over.
    Upgrade(Option<PathBuf>),
    Listeners,
    Unknown(String),
}

pub(crate) fn parse_command(line: &str) -> ControlCommand {
    match line.split_once(' ') {
        None if line == "upgrade" => ControlCommand::Upgrade(None),
        None if line == "listeners" => ControlCommand::Listeners,
        Some(("upgrade", path)) if !path.is_empty() => {
            ControlCommand::Upgrade(Some(PathBuf::from(path)))
        }
        _ => ControlCommand::Unknown(line.chars().take(64).collect()),
    }
}

/// Reads one line from a control connection (the peer sends one and waits).
pub(crate) async fn read_line(conn: &tokio::net::UnixStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = conn
            .async_io(Interest::READABLE, || {
                rustix::net::recv(conn, &mut buf, rustix::net::RecvFlags::empty())
                    .map(|(n, _)| n)
                    .map_err(io::Error::from)
            })
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let got = buf.get(..n).unwrap_or_default();
        match got.iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(got.get(..end).unwrap_or_default());
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            None => line.extend_from_slice(got),
        }
        if line.len() > MAX_LINE {
            return Err(io::Error::other("line too long"));
        }
    }
}

/// Writes `text` on a control connection (a short answer: a socket buffer
/// takes it at once).
pub(crate) async fn write(conn: &tokio::net::UnixStream, text: &str) -> io::Result<()> {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        let n = conn
            .async_io(Interest::WRITABLE, || {
                rustix::net::send(conn, rest, rustix::net::SendFlags::NOSIGNAL)
                    .map_err(io::Error::from)
            })
            .await?;
        rest = rest.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Starts the new binary, told to take the sockets from `socket`.
pub(crate) fn spawn(binary: &Path, config: &Path, socket: &Path) -> Result<Child, UpgradeError> {
    Command::new(binary)
        .arg("run")
        .arg("-c")
        .arg(config)
        .arg("--inherit-from")
        .arg(socket)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| UpgradeError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })
}

/// The old process: sends `items` to the new one on `conn`. The socket is
/// made blocking for it, with a timeout: a few messages a Unix socket's
/// buffer takes at once.
pub(crate) fn send_sockets(
    conn: &tokio::net::UnixStream,
    items: &[(Kind, std::os::fd::BorrowedFd<'_>)],
) -> io::Result<()> {
    let fd = conn.as_fd();
    rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Send,
        Some(Duration::from_secs(10)),
    )?;
    rustix::io::ioctl_fionbio(fd, false)?;
    let sent = handover::send(fd, items);
    rustix::io::ioctl_fionbio(fd, true)?;
    sent
}

/// Whether the connection comes from process `pid`.
pub(crate) fn peer_is(conn: &tokio::net::UnixStream, pid: u32) -> bool {
    rustix::net::sockopt::socket_peercred(conn)
        .is_ok_and(|cred| cred.pid.as_raw_nonzero().get() as u32 == pid)
}

/// Stops a new process that failed: SIGTERM, then SIGKILL after a while.
pub(crate) async fn stop_child(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_commands() {
        assert_eq!(parse_command("upgrade"), ControlCommand::Upgrade(None));
        assert_eq!(
            parse_command("upgrade /usr/sbin/levee"),
            ControlCommand::Upgrade(Some("/usr/sbin/levee".into()))
        );
        assert_eq!(parse_command("listeners"), ControlCommand::Listeners);
        assert!(matches!(
            parse_command("upgrade "),
            ControlCommand::Unknown(_)
        ));
        assert!(matches!(parse_command("stop"), ControlCommand::Unknown(_)));
    }

    #[test]
    fn a_stale_socket_file_is_replaced_and_a_live_one_kept() {
        let dir = std::env::temp_dir().join(format!("levee-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ctl.sock");
        let first = bind(&path).expect("bind");
        let mode = std::fs::metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let live = bind(&path).expect_err("a live socket is kept");
        assert_eq!(live.kind(), io::ErrorKind::AddrInUse);
        drop(first);
        // The file stays behind, as after a crash.
        assert!(path.exists());
        bind(&path).expect("a stale socket is replaced");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
