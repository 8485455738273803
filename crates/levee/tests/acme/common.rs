//! What the ACME tests share: dnsmasq answering the test names with
//! 127.0.0.1, Pebble validating against levee's listeners, a levee with
//! `tls = "auto"`, and clients that verify with Pebble's root.
#![allow(dead_code)]
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::*;

pub const NAMES: &[&str] = &["a.test", "b.test", "c.test", "ok.test"];

pub struct Acme {
    pub dns: Dnsmasq,
    pub pebble: Pebble,
    pub plain: u16,
    pub tls: u16,
    pub admin: u16,
}

impl Acme {
    /// dnsmasq and Pebble, validating against `setup`'s port (plain) and
    /// a TLS port picked here.
    pub fn start<'a>(
        setup: &LeveeSetup,
        env: &'a [(&'a str, &'a str)],
        validity: Option<u64>,
    ) -> Acme {
        Acme::start_with(setup, None, |o| {
            o.env = env;
            o.validity = validity;
        })
    }

    /// [`Acme::start`] with Pebble's options changed by `tweak`; Pebble
    /// resolves names with `dns` (a server of the test's) when given.
    pub fn start_with<'a>(
        setup: &LeveeSetup,
        dns: Option<String>,
        tweak: impl FnOnce(&mut PebbleOptions<'a>),
    ) -> Acme {
        let records: Vec<(&str, &str)> = NAMES.iter().map(|n| (*n, "127.0.0.1")).collect();
        let dnsmasq = Dnsmasq::start(&records);
        let tls = free_port();
        let mut options = PebbleOptions {
            http_port: setup.port,
            tls_port: tls,
            dns: Some(dns.unwrap_or_else(|| dnsmasq.addr())),
            env: &[],
            validity: None,
            eab: None,
        };
        tweak(&mut options);
        let pebble = Pebble::start(options);
        let dns = dnsmasq;
        Acme {
            dns,
            pebble,
            plain: setup.port,
            tls,
            admin: free_port(),
        }
    }

    /// A config with a plain listener, an `auto` TLS listener, an admin
    /// listener, `[acme]` at Pebble (with `acme` added), and `routes`.
    /// `dir` is the levee's directory (pid file, storage).
    pub fn config(&self, dir: &Path, acme: &str, routes: &str) -> String {
        self.config_at(dir, (self.plain, self.tls, self.admin), acme, routes)
    }

    /// [`Acme::config`] with other ports (a fleet member's).
    pub fn config_at(
        &self,
        dir: &Path,
        (plain, tls, admin): (u16, u16, u16),
        acme: &str,
        routes: &str,
    ) -> String {
        format!(
            r#"pid_file = "{pid}"

[[listener]]
name = "plain"
address = "127.0.0.1:{plain}"

[[listener]]
name = "tls"
address = "127.0.0.1:{tls}"
tls = "auto"

[admin]
address = "127.0.0.1:{admin}"

[acme]
directory = "{directory}"
ca_root = "{root}"
storage = "{storage}"
contact = "ops@example.com"
{acme}

{routes}
"#,
            pid = dir.join("levee.pid").display(),
            directory = self.pebble.directory(),
            root = self.pebble.https_root().display(),
            storage = dir.join("acme").display(),
        )
    }

    /// `curl https://NAME/` on the TLS listener, verified with Pebble's root.
    pub fn get(&self, name: &str, root: &std::path::Path) -> Output {
        get_at(self.tls, name, root)
    }

    /// Waits until `name` is served with a certificate Pebble issued.
    pub fn wait_served(&self, name: &str, body: &str, root: &std::path::Path, levee: &Levee) {
        let served = poll(Duration::from_secs(90), || {
            let out = self.get(name, root);
            (out.status.success() && String::from_utf8_lossy(&out.stdout) == body).then_some(())
        });
        assert!(
            served.is_some(),
            "{name} not served with a Pebble certificate: {:?}\nlevee:\n{}\npebble:\n{}",
            self.get(name, root),
            levee.stderr(),
            self.pebble.log()
        );
    }

    /// `levee ctl --admin ... ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let admin = format!("127.0.0.1:{}", self.admin);
        let mut all = vec!["ctl", "--admin", &admin];
        all.extend_from_slice(args);
        levee_cmd(&all)
    }

    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series).unwrap_or(0.0)
    }
}

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/acme/tls_client.py")
}

/// The serial of the certificate a fresh handshake for `name` gets.
pub fn served_serial(port: u16, name: &str, root: &std::path::Path) -> Option<String> {
    let out = Command::new("python3")
        .arg(script())
        .args([
            "serial",
            name,
            &port.to_string(),
            &root.display().to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.strip_prefix("serial ").map(|s| s.trim().to_owned())
}

/// `curl https://NAME/` on `port`, verified with `root`.
pub fn get_at(port: u16, name: &str, root: &std::path::Path) -> Output {
    curl(&[
        "-s",
        "--max-time",
        "20",
        "--cacert",
        &root.display().to_string(),
        "--resolve",
        &format!("{name}:{port}:127.0.0.1"),
        &format!("https://{name}:{port}/"),
    ])
}
