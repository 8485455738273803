//! Shared fixtures for levee's black-box tests: real nginx upstreams, a levee
//! process per test, and raw TCP / curl clients.
//!
//! Every fixture picks free loopback ports, waits with a deadline, and kills
//! its process group on drop, so test files run in parallel safely.
#![allow(dead_code)]
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]

mod admin;
mod cache;
mod client;
mod dnsmasq;
mod dovecot;
mod levee;
mod memcached;
mod mirrors;
mod named;
mod nginx;
mod pebble;
mod postfix;
mod python;
mod redis;
mod upstream;
mod websocket;

#[allow(unused_imports)]
pub use admin::*;
#[allow(unused_imports)]
pub use cache::*;
pub use client::*;
#[allow(unused_imports)]
pub use dnsmasq::*;
#[allow(unused_imports)]
pub use dovecot::*;
pub use levee::*;
#[allow(unused_imports)]
pub use memcached::*;
#[allow(unused_imports)]
pub use mirrors::*;
#[allow(unused_imports)]
pub use named::*;
pub use nginx::*;
#[allow(unused_imports)]
pub use pebble::*;
#[allow(unused_imports)]
pub use postfix::*;
#[allow(unused_imports)]
pub use python::*;
#[allow(unused_imports)]
pub use redis::*;
pub use upstream::*;
#[allow(unused_imports)]
pub use websocket::*;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long any fixture waits for a process to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A port on 127.0.0.1 that was free a moment ago.
///
/// Taken below the kernel's ephemeral range (32768 and up by default), so
/// no outgoing connection of the tests, levee or a peer can take it
/// between this call and the bind that uses it, as a port from `bind(0)`
/// could. Each test process walks its own stretch of the range (by pid),
/// and a port is handed out once per process, and once on the machine
/// while the process lives ([`reserve`]): test binaries run at once (two
/// worktrees' suites) may walk into each other's stretches.
pub fn free_port() -> u16 {
    const FIRST: u32 = 15_000;
    const SPAN: u32 = 17_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 97) * (SPAN / 97);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (start + n) % SPAN).expect("port below 32768");
        if reserve(port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN)
}

/// Holds `port` for this process against other test processes: a lock on
/// a file named after it, which the kernel drops when the process ends.
/// Another process's port may be free still (its peer not yet started,
/// or just restarted on it); `false` then. Without the directory the
/// port is taken as before, on the bind test alone.
fn reserve(port: u16) -> bool {
    static HELD: std::sync::Mutex<Vec<fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("levee-test-ports");
    let _ = fs::create_dir_all(&dir);
    let Ok(file) = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return true;
    };
    if file.try_lock().is_err() {
        return false;
    }
    HELD.lock().unwrap_or_else(|p| p.into_inner()).push(file);
    true
}

/// Polls `f` every 20 ms until it returns `Some`, or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn port_open(port: u16) -> bool {
    port_open_at([127, 0, 0, 1], port)
}

fn port_open_at(ip: [u8; 4], port: u16) -> bool {
    let addr = SocketAddr::from((ip, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "levee-test-{prefix}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Deterministic pseudo-random bytes (xorshift), so no `rand` crate is needed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

pub fn signal_pid(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// Waits until `child` listens on `ip:port`; on failure kills it and panics
/// with `what` and the log files' contents.
fn wait_listening(child: &mut Child, ip: [u8; 4], port: u16, what: &str, logs: &[PathBuf]) {
    let up = poll(START_TIMEOUT, || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(status));
        }
        port_open_at(ip, port).then_some(Ok(()))
    });
    if !matches!(up, Some(Ok(()))) {
        let text: Vec<String> = logs
            .iter()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .collect();
        kill_group(child);
        panic!("{what} did not start ({up:?}):\n{}", text.join("\n"));
    }
}

/// Waits for `child` to exit, up to `timeout`.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    poll(timeout, || child.try_wait().ok().flatten())
}

/// Stops a process group: SIGTERM, then SIGKILL if it lingers.
pub fn kill_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        // The leader is gone but children (nginx workers) may remain.
        signal_group(child.id(), "-KILL");
        return;
    }
    signal_group(child.id(), "-TERM");
    if wait_child(child, Duration::from_secs(3)).is_none() {
        signal_group(child.id(), "-KILL");
        let _ = child.wait();
    }
    signal_group(child.id(), "-KILL");
}
