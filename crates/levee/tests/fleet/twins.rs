//! Members that run one and the same config file, as a fleet's members do
//! when a push rolls a config out: each in a UTS namespace of its own whose
//! host name is the member's name (the default `instance`), listening on
//! port 0 (the OS picks a free port; the log says which), so three can run
//! on one machine with identical files. `unshare` (util-linux) makes the
//! namespace; as root directly, otherwise in a user namespace of its own.
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]
// Each test file uses a part of this.
#![allow(dead_code)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{TempDir, kill_group, metric, poll};

/// One member: its directory holds `levee.toml` and its logs.
pub struct Twin {
    pub name: String,
    pub dir: TempDir,
    child: Option<Child>,
    pub port: u16,
    pub admin: u16,
}

impl Twin {
    /// Writes `config` as the member's file and starts it.
    pub fn start(name: &str, config: &str) -> Twin {
        let dir = TempDir::new(&format!("twin-{name}"));
        fs::write(dir.join("levee.toml"), config).expect("write config");
        let mut t = Twin {
            name: name.to_owned(),
            dir,
            child: None,
            port: 0,
            admin: 0,
        };
        t.spawn();
        t
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("levee.toml")
    }

    /// Starts levee on the member's file (again, after [`Twin::stop`]);
    /// waits until it listens and reads its ports from the log.
    pub fn spawn(&mut self) {
        let log = self.dir.join("stderr.log");
        let _ = fs::remove_file(&log);
        let mut cmd = Command::new("unshare");
        if !rustix::process::geteuid().is_root() {
            cmd.args(["--user", "--map-root-user"]);
        }
        let child = cmd
            .args(["--uts", "sh", "-c"])
            .arg("hostname \"$0\" && exec \"$1\" run -c \"$2\"")
            .arg(&self.name)
            .arg(env!("CARGO_BIN_EXE_levee"))
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.join("stdout.log")).expect("stdout"))
            .stderr(fs::File::create(&log).expect("stderr"))
            .process_group(0)
            .spawn()
            .expect("spawn unshare (util-linux)");
        self.child = Some(child);
        let ports = poll(Duration::from_secs(15), || {
            let text = self.stderr();
            let http = bound_port(&text, "INFO listening ")?;
            let admin = bound_port(&text, "control API and /metrics listening")?;
            Some((http, admin))
        });
        let Some((port, admin)) = ports else {
            panic!("{} did not start:\n{}", self.name, self.stderr());
        };
        self.port = port;
        self.admin = admin;
    }

    /// SIGTERM; waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
    }

    /// SIGHUP: reload the config file.
    pub fn reload(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series).unwrap_or(0.0)
    }

    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin)
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The port in `bound=…:PORT` on the last line with `marker`.
fn bound_port(log: &str, marker: &str) -> Option<u16> {
    let line = log.lines().rev().find(|l| l.contains(marker))?;
    let bound = line.split("bound=").nth(1)?;
    let digits: String = bound
        .rsplit(':')
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
