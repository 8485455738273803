//! A real gRPC server and client (grpc/peer.py on Debian's python3-grpcio)
//! and levee configs that put levee between them.
#![allow(dead_code)]
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::support::{LeveeSetup, TempDir, kill_group, poll, python_with};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/peer.py");
const H2PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/h2peer.py");

fn python() -> &'static str {
    static FOUND: OnceLock<&'static str> = OnceLock::new();
    FOUND.get_or_init(|| python_with("grpc"))
}

fn python_h2() -> &'static str {
    static FOUND: OnceLock<&'static str> = OnceLock::new();
    FOUND.get_or_init(|| python_with("h2"))
}

/// `peer.py server`: the test.Svc service on a free port, in cleartext or
/// with `tls` (certificate, key).
pub struct GrpcServer {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: TempDir,
}

impl GrpcServer {
    pub fn start(tls: Option<(&Path, &Path)>) -> GrpcServer {
        GrpcServer::start_with(tls, None)
    }

    /// [`GrpcServer::start`], allowing at most `max_streams` concurrent
    /// streams per connection when given.
    pub fn start_with(tls: Option<(&Path, &Path)>, max_streams: Option<u32>) -> GrpcServer {
        let mut cmd = Command::new(python());
        cmd.arg(PEER).arg("server");
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        if let Some(n) = max_streams {
            cmd.env("GRPC_MAX_STREAMS", n.to_string());
        }
        GrpcServer::spawn(cmd)
    }

    /// A cleartext server on `port` (where another one was).
    pub fn start_on(port: u16) -> GrpcServer {
        let mut cmd = Command::new(python());
        cmd.arg(PEER)
            .arg("server")
            .env("GRPC_PORT", port.to_string());
        GrpcServer::spawn(cmd)
    }

    /// `h2peer.py server`: a bare HTTP/2 server (request trailers, resets).
    pub fn start_h2() -> GrpcServer {
        let mut cmd = Command::new(python_h2());
        cmd.arg(H2PEER).arg("server");
        GrpcServer::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> GrpcServer {
        let dir = TempDir::new("grpc");
        let out = dir.join("server.out");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("server.out"))
            .stderr(fs::File::create(dir.join("server.err")).expect("server.err"))
            .process_group(0)
            .spawn()
            .expect("start peer.py server");
        let port = poll(Duration::from_secs(15), || {
            let text = fs::read_to_string(&out).ok()?;
            let line = text.lines().find(|l| l.starts_with("READY "))?;
            line.trim_start_matches("READY ").trim().parse().ok()
        });
        let Some(port) = port else {
            kill_group(&mut child);
            panic!(
                "gRPC server did not start: {}",
                fs::read_to_string(dir.join("server.err")).unwrap_or_default()
            );
        };
        GrpcServer {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for a line of the server's output starting with `prefix`.
    pub fn wait_line(&self, prefix: &str, within: Duration) -> Option<String> {
        poll(within, || {
            let text = fs::read_to_string(&self.out).ok()?;
            text.lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        })
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// How the client reaches levee: `tls` is the CA file and the name to verify.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub port: u16,
    pub tls: Option<(&'a Path, &'a str)>,
}

/// One call of `peer.py client`; what it printed, as JSON.
pub fn call(target: Target<'_>, scenario: &str, args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(python());
    cmd.arg(PEER)
        .arg("client")
        .arg(format!("127.0.0.1:{}", target.port))
        .arg(scenario)
        .args(args);
    if let Some((ca, name)) = target.tls {
        cmd.env("GRPC_CA", ca).env("GRPC_NAME", name);
    }
    let out = cmd.output().expect("run peer.py client");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "peer.py client {scenario}: {e}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// One request of `h2peer.py client` to levee's `port`: a body and
/// request trailers; what came back, as JSON.
pub fn h2_call(port: u16, path: &str) -> serde_json::Value {
    let out = Command::new(python_h2())
        .args([H2PEER, "client", &port.to_string(), path])
        .output()
        .expect("run h2peer.py client");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "h2peer.py client {path}: {e}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A levee config: one listener (`listener` holds its extra lines and
/// tables, such as `http2` or `[listener.tls]`), one route to the upstream
/// `app` of `servers` speaking `protocol`; `upstream` and `extra` are
/// appended to its table and to the file.
pub fn config(
    setup: &LeveeSetup,
    listener: &str,
    servers: &[&str],
    upstream: &str,
    extra: &str,
) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"pid_file = "{pid}"

[log]
access = "{log}"

[[listener]]
address = "127.0.0.1:{port}"
{listener}

[[route]]
proxy = "app"

[upstream.app]
servers = [{servers}]
{upstream}

{extra}
"#,
        pid = setup.pid_file().display(),
        log = setup.dir.join("access.log").display(),
        port = setup.port,
        servers = servers.join(", "),
    )
}

/// The access log lines that contain `needle`, once there are `n`.
pub fn logged(dir: &Path, needle: &str, n: usize) -> Vec<String> {
    poll(Duration::from_secs(5), || {
        let text = fs::read_to_string(dir.join("access.log")).ok()?;
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| {
        panic!(
            "fewer than {n} log lines with {needle}: {:?}",
            fs::read_to_string(dir.join("access.log"))
        )
    })
}

/// Established TCP connections to `port` on 127.0.0.1 (the client side of
/// each), read from /proc/net/tcp so no `ss` is needed.
pub fn connections_to(port: u16) -> usize {
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // sl, local_address, rem_address, st ("01": ESTABLISHED)
            cols.get(2) == Some(&remote.as_str()) && cols.get(3) == Some(&"01")
        })
        .count()
}
