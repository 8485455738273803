//! Real memcached for the shared cache tier's tests (Debian's memcached): a
//! server on a free loopback port that a test can kill, and a look at the
//! objects it holds.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::nginx::find_in_path;
use super::*;

pub struct Memcached {
    child: Option<Child>,
    pub port: u16,
    _dir: TempDir,
}

impl Memcached {
    /// A server with 64 MB of memory on a free port.
    pub fn start() -> Memcached {
        let bin = find_in_path("memcached")
            .unwrap_or_else(|| panic!("memcached not installed: run scripts/test"));
        let dir = TempDir::new("memcached");
        let port = free_port();
        let stderr = dir.join("stderr");
        let mut child = Command::new(bin)
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-m",
                "64",
            ])
            // memcached refuses to run as root without a user to become.
            .args(["-u", "root"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("spawn memcached");
        wait_listening(&mut child, [127, 0, 0, 1], port, "memcached", &[stderr]);
        Memcached {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_group(c.id(), "-KILL");
            let _ = c.wait();
        }
    }

    /// The keys held and their sizes (`lru_crawler metadump all`), keys
    /// decoded from the dump's URL encoding. The crawler answers BUSY while
    /// it runs on its own: asked again then.
    pub fn items(&self) -> Vec<(String, u64)> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(items) = self.dump() {
                return items;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "memcached's crawler stays busy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn dump(&self) -> Option<Vec<(String, u64)>> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to memcached");
        conn.write_all(b"lru_crawler metadump all\r\n")
            .expect("ask memcached");
        let mut out = Vec::new();
        for line in BufReader::new(conn).lines() {
            let line = line.expect("memcached's answer");
            if line == "END" {
                break;
            }
            if line.starts_with("BUSY") {
                return None;
            }
            assert!(!line.starts_with("ERROR"), "memcached: {line}");
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_owned)
            };
            let (Some(key), Some(size)) = (field("key="), field("size=")) else {
                continue;
            };
            let key = key
                .replace("%7B", "{")
                .replace("%7D", "}")
                .replace("%3A", ":");
            out.push((key, size.parse().unwrap_or(0)));
        }
        Some(out)
    }

    /// The objects (values) of fleet `fleet` held, with their sizes.
    pub fn objects(&self, fleet: &str) -> Vec<(String, u64)> {
        let prefix = format!("{{{fleet}}}:c:");
        self.items()
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .collect()
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}
