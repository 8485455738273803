//! A real DNS server (Debian's dnsmasq) on a free loopback port, answering
//! from a hosts file the test rewrites, with a 1 s TTL.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::nginx::{find_in_path, is_root};
use super::*;

pub struct Dnsmasq {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq answering `records` (`(name, ip)` pairs).
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        let bin = find_in_path("dnsmasq")
            .unwrap_or_else(|| panic!("dnsmasq not installed: run scripts/test"));
        let dir = TempDir::new("dnsmasq");
        let port = free_port();
        let hosts = dir.join("hosts");
        fs::write(&hosts, hosts_text(records)).expect("write hosts");
        let mut cmd = Command::new(bin);
        cmd.arg("--keep-in-foreground")
            .arg("--conf-file=/dev/null")
            .arg(format!("--port={port}"))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--addn-hosts={}", hosts.display()))
            .arg("--local-ttl=1")
            .arg("--pid-file=")
            .arg(format!("--log-facility={}", dir.join("log").display()));
        if is_root() {
            // Stay root so the hosts file in our private temp dir stays readable.
            cmd.arg("--user=root");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr")).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("spawn dnsmasq");
        let logs = [dir.join("stderr"), dir.join("log")];
        wait_listening(&mut child, [127, 0, 0, 1], port, "dnsmasq", &logs);
        Dnsmasq { child, port, dir }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the records and makes dnsmasq read them again (SIGHUP).
    pub fn set(&self, records: &[(&str, &str)]) {
        fs::write(self.dir.join("hosts"), hosts_text(records)).expect("write hosts");
        signal_group(self.child.id(), "-HUP");
    }
}

fn hosts_text(records: &[(&str, &str)]) -> String {
    records
        .iter()
        .map(|(name, ip)| format!("{ip} {name}\n"))
        .collect()
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
