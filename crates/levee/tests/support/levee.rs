//! The levee process under test.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use super::*;

/// A temp dir and a port, reserved before the config that names them is written.
pub struct LeveeSetup {
    pub dir: TempDir,
    pub port: u16,
}

impl LeveeSetup {
    pub fn new() -> LeveeSetup {
        LeveeSetup {
            dir: TempDir::new("levee"),
            port: free_port(),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("levee.toml")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("levee.pid")
    }

    /// A config whose one route proxies everything to `upstreams`; `extra` is
    /// appended (tables such as `[timeouts]` or more `[[route]]`s).
    pub fn proxy_config(&self, upstreams: &[&str], extra: &str) -> String {
        let servers: Vec<String> = upstreams.iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
proxy = "app"

[upstream.app]
servers = [{servers}]

{extra}
"#,
            pid = self.pid_file().display(),
            port = self.port,
            servers = servers.join(", "),
        )
    }

    /// Writes `config` and starts `levee run -c` on it; waits for the port.
    pub fn start(self, config: &str) -> Levee {
        fs::write(self.config_path(), config).expect("write levee config");
        let config_path = self.config_path().display().to_string();
        let port = self.port;
        self.start_args(&["run", "-c", &config_path], port)
    }

    /// Starts levee with `args` in the setup's directory; waits for `port`.
    pub fn start_args(self, args: &[&str], port: u16) -> Levee {
        let mut levee = self.spawn_args(args, port);
        levee.wait_port(port);
        levee
    }

    /// Writes `config` and starts `levee run -c` on it without waiting.
    pub fn spawn(self, config: &str) -> Levee {
        fs::write(self.config_path(), config).expect("write levee config");
        let config_path = self.config_path().display().to_string();
        let port = self.port;
        self.spawn_args(&["run", "-c", &config_path], port)
    }

    /// Writes `config` and starts `levee run -c` on it with at most
    /// `nofile` descriptors (`ulimit -n`, through `sh`); waits for the port.
    pub fn start_with_nofile(self, config: &str, nofile: u32) -> Levee {
        fs::write(self.config_path(), config).expect("write levee config");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("ulimit -n \"$0\" && exec \"$1\" run -c \"$2\"")
            .arg(nofile.to_string())
            .arg(env!("CARGO_BIN_EXE_levee"))
            .arg(self.config_path());
        let port = self.port;
        let mut levee = self.spawn_command(cmd, port);
        levee.wait_port(port);
        levee
    }

    /// Writes `config` and starts `levee run` with `env` set (the config's
    /// path in `LEVEE_CONFIG` unless `env` names it); waits for the port.
    pub fn start_env(self, config: &str, env: &[(&str, &str)]) -> Levee {
        fs::write(self.config_path(), config).expect("write levee config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        cmd.arg("run").env("LEVEE_CONFIG", self.config_path());
        cmd.envs(env.iter().copied());
        let port = self.port;
        let mut levee = self.spawn_command(cmd, port);
        levee.wait_port(port);
        levee
    }

    /// Starts levee with `args` in the setup's directory without waiting.
    pub fn spawn_args(self, args: &[&str], port: u16) -> Levee {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        cmd.args(args);
        self.spawn_command(cmd, port)
    }

    /// Runs `cmd` (levee, or a shell that execs it) in the setup's
    /// directory, its output in files there, in a process group of its own.
    fn spawn_command(self, mut cmd: Command, port: u16) -> Levee {
        let child = cmd
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.join("stdout.log")).expect("create stdout"))
            .stderr(fs::File::create(self.dir.join("stderr.log")).expect("create stderr"))
            .process_group(0)
            .spawn()
            .expect("spawn levee");
        Levee {
            child,
            port,
            setup: self,
        }
    }
}

impl Default for LeveeSetup {
    fn default() -> Self {
        LeveeSetup::new()
    }
}

/// A running `levee run` process.
pub struct Levee {
    child: Child,
    pub port: u16,
    setup: LeveeSetup,
}

impl Levee {
    /// levee proxying every request to `nginx`, with `extra` config appended.
    pub fn proxy(nginx: &Nginx, extra: &str) -> Levee {
        let setup = LeveeSetup::new();
        let config = setup.proxy_config(&[&nginx.addr()], extra);
        setup.start(&config)
    }

    /// Waits until `port` accepts; panics with levee's stderr if it exits or never does.
    pub fn wait_port(&mut self, port: u16) {
        let up = poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Err(status));
            }
            port_open(port).then_some(Ok(()))
        });
        match up {
            Some(Ok(())) => {}
            other => panic!(
                "levee did not listen on {port} ({other:?}); stderr:\n{}\nstdout:\n{}",
                self.stderr(),
                self.stdout()
            ),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.setup.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.setup.config_path()
    }

    pub fn pid_file(&self) -> PathBuf {
        self.setup.pid_file()
    }

    /// Replaces the config file (without signalling).
    pub fn write_config(&self, config: &str) {
        fs::write(self.config_path(), config).expect("write levee config");
    }

    pub fn reload(&self) {
        signal_pid(self.pid(), "-HUP");
    }

    pub fn stop(&self) {
        signal_pid(self.pid(), "-TERM");
    }

    pub fn interrupt(&self) {
        signal_pid(self.pid(), "-INT");
    }

    /// Waits for levee to exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_child(&mut self.child, timeout).unwrap_or_else(|| {
            panic!(
                "levee did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            )
        })
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.setup.dir.join("stdout.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.setup.dir.join("stderr.log")).unwrap_or_default()
    }

    /// The first stdout line containing every one of `needles`, waiting up to 5 s.
    pub fn wait_stdout_line(&self, needles: &[&str]) -> String {
        poll(Duration::from_secs(5), || {
            self.stdout()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            panic!(
                "no stdout line with {needles:?}; stdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }

    /// Waits until stderr contains `needle`; returns whether it did within `timeout`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, || self.stderr().contains(needle).then_some(())).is_some()
    }
}

impl Drop for Levee {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Runs the levee binary to completion with `args` (for `check`, `reload`, `stop`).
pub fn levee_cmd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run levee")
}
