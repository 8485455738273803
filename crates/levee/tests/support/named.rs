//! A real authoritative DNS server taking RFC 2136 dynamic updates (BIND 9,
//! Debian's `bind9`): one zone on a free loopback port, updates allowed
//! with a TSIG key (HMAC-SHA256). For DNS-01.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::nginx::find_in_path;
use super::*;

pub struct Named {
    child: Child,
    pub port: u16,
    dir: TempDir,
    /// The TSIG secret, base64, in a file.
    pub secret_file: PathBuf,
}

pub const TSIG_KEY: &str = "acme-key";

impl Named {
    /// Serves `zone` (every name in it at 127.0.0.1), updatable with [`TSIG_KEY`].
    pub fn start(zone: &str) -> Named {
        let bin = find_in_path("named")
            .unwrap_or_else(|| panic!("named not installed: run scripts/test"));
        let dir = TempDir::new("named");
        let port = free_port();
        let secret = b64(&random_bytes(32, u64::from(port)));
        let secret_file = dir.join("tsig.secret");
        fs::write(&secret_file, format!("{secret}\n")).expect("secret");
        fs::write(
            dir.join("zone"),
            format!(
                "$TTL 1\n@ IN SOA ns.{zone}. admin.{zone}. 1 60 60 600 1\n@ IN NS ns.{zone}.\n\
                 ns IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n"
            ),
        )
        .expect("zone");
        let d = dir.path().display();
        fs::write(
            dir.join("named.conf"),
            format!(
                r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
key "{TSIG_KEY}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{zone}" {{ type primary; file "{d}/zone"; allow-update {{ key "{TSIG_KEY}"; }}; }};
"#
            ),
        )
        .expect("named.conf");
        let mut child = Command::new(bin)
            .args(["-g", "-4", "-u", "root", "-c"])
            .arg(dir.join("named.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("named.log")).expect("log"))
            .process_group(0)
            .spawn()
            .expect("spawn named");
        wait_listening(
            &mut child,
            [127, 0, 0, 1],
            port,
            "named",
            &[dir.join("named.log")],
        );
        Named {
            child,
            port,
            dir,
            secret_file,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Drop for Named {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
