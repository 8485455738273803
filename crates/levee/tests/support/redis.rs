//! Real Redis for the fleet tests (Debian's redis-server and
//! redis-sentinel): a server on a free loopback port with no persistence,
//! which a test can kill, pause (SIGSTOP), resume and restart empty on the
//! same port; a replica; a sentinel watching a master.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::nginx::find_in_path;
use super::*;

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
    /// Extra arguments (a replica's `--replicaof`, `--requirepass`).
    args: Vec<String>,
    /// Certificate and key: the port speaks TLS only.
    tls: Option<(PathBuf, PathBuf)>,
    paused: bool,
}

impl Redis {
    /// A server with no persistence on a free port.
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// A server with extra command-line settings (`--requirepass x`).
    pub fn start_with(args: &[&str]) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis"),
            args: args.iter().map(|s| s.to_string()).collect(),
            tls: None,
            paused: false,
        };
        r.spawn();
        r
    }

    /// A server whose port speaks TLS only, with `cert` and `key`.
    pub fn start_tls(cert: PathBuf, key: PathBuf) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis-tls"),
            args: Vec::new(),
            tls: Some((cert, key)),
            paused: false,
        };
        r.spawn();
        r
    }

    /// A replica of `master` (for Sentinel).
    pub fn replica_of(master: &Redis) -> Redis {
        let port = master.port.to_string();
        Redis::start_with(&["--replicaof", "127.0.0.1", &port])
    }

    fn spawn(&mut self) {
        let bin = find_in_path("redis-server")
            .unwrap_or_else(|| panic!("redis-server not installed: run scripts/test"));
        let log = self.dir.join("redis.log");
        let port = self.port.to_string();
        let ports: Vec<&std::ffi::OsStr> = match &self.tls {
            None => vec!["--port".as_ref(), port.as_ref()],
            Some((cert, key)) => vec![
                "--port".as_ref(),
                "0".as_ref(),
                "--tls-port".as_ref(),
                port.as_ref(),
                "--tls-cert-file".as_ref(),
                cert.as_os_str(),
                "--tls-key-file".as_ref(),
                key.as_os_str(),
                "--tls-auth-clients".as_ref(),
                "no".as_ref(),
            ],
        };
        let mut child = Command::new(bin)
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.join("stderr")).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("spawn redis-server");
        let logs = [log, self.dir.join("stderr")];
        wait_listening(&mut child, [127, 0, 0, 1], self.port, "redis-server", &logs);
        self.child = Some(child);
        self.paused = false;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL): no goodbye to its clients.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.paused {
                signal_group(c.id(), "-CONT");
            }
            signal_group(c.id(), "-KILL");
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, with nothing in it.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers,
    /// as with a hung server or a partition.
    pub fn pause(&mut self) {
        if let Some(c) = &self.child {
            signal_group(c.id(), "-STOP");
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(c) = &self.child {
            signal_group(c.id(), "-CONT");
            self.paused = false;
        }
    }

    /// `redis-cli` against this server; the output as text.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = redis_cli(self.port, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the server answers `role` as a master.
    pub fn is_master(&self) -> bool {
        self.cli(&["role"]).starts_with("master")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn redis_cli(port: u16, args: &[&str]) -> Output {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli not installed: run scripts/test")
}

/// A sentinel watching `master` under the name `name`, with quorum 1 and a
/// 1 s down-after, so a failover follows a master's death within seconds.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Sentinel {
    pub fn start(name: &str, master: &Redis) -> Sentinel {
        let bin = find_in_path("redis-sentinel")
            .or_else(|| find_in_path("redis-server"))
            .unwrap_or_else(|| panic!("redis-sentinel not installed: run scripts/test"));
        let dir = TempDir::new("sentinel");
        let port = free_port();
        // The sentinel rewrites its config file, so it lives in the temp dir.
        let conf: PathBuf = dir.join("sentinel.conf");
        fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor {name} 127.0.0.1 {mport} 1\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 5000\n\
                 sentinel parallel-syncs {name} 1\n",
                dir = dir.path().display(),
                mport = master.port,
            ),
        )
        .expect("write sentinel.conf");
        let mut child = Command::new(bin)
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr")).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("spawn redis-sentinel");
        let logs = [dir.join("sentinel.log"), dir.join("stderr")];
        wait_listening(&mut child, [127, 0, 0, 1], port, "redis-sentinel", &logs);
        Sentinel {
            child,
            port,
            _dir: dir,
        }
    }

    /// The port of the master the sentinel names now.
    pub fn master_port(&self, name: &str) -> Option<u16> {
        let out = redis_cli(self.port, &["sentinel", "get-master-addr-by-name", name]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A Redis Cluster of three masters (no replicas) on free ports, ready
/// (`cluster_state:ok`) when returned.
pub struct Cluster {
    pub nodes: Vec<Redis>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                // The bus port would be the port + 10,000 (into the
                // ephemeral range): one of free_port's instead.
                let bus = free_port().to_string();
                Redis::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = redis_cli(nodes[0].port, &args);
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ready = poll(START_TIMEOUT, || {
            nodes
                .iter()
                .all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"))
                .then_some(())
        });
        assert!(ready.is_some(), "the cluster never became ready");
        Cluster { nodes }
    }

    /// Keys matching `pattern` over all the nodes.
    pub fn keys(&self, pattern: &str) -> usize {
        self.nodes
            .iter()
            .map(|n| n.cli(&["--scan", "--pattern", pattern]).lines().count())
            .sum()
    }
}
