//! Pebble, the ACME test CA (Debian's `pebble` package), on free loopback
//! ports: its HTTPS certificate made with the `openssl` CLI at test time
//! (the root a levee trusts with `[acme] ca_root`), its issuing root read
//! from its management interface (the root curl verifies levee with), and
//! its log kept to count the orders that reached it.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::nginx::find_in_path;
use super::*;

pub struct PebbleOptions<'a> {
    /// Where Pebble validates HTTP-01 and TLS-ALPN-01 (levee's listeners).
    pub http_port: u16,
    pub tls_port: u16,
    /// The DNS server Pebble resolves the names with (dnsmasq).
    pub dns: Option<String>,
    /// Extra environment: `PEBBLE_VA_ALWAYS_VALID`, `PEBBLE_WFE_NONCEREJECT`.
    pub env: &'a [(&'a str, &'a str)],
    /// Lifetime of the certificates it issues, in seconds (short-lived
    /// ones for renewal tests); Pebble's five years when `None`.
    pub validity: Option<u64>,
    /// External Account Binding required, with this key id and base64url
    /// HMAC key.
    pub eab: Option<(&'a str, &'a str)>,
}

pub struct Pebble {
    child: Option<Child>,
    pub port: u16,
    pub management: u16,
    dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pebble {
    pub fn start(o: PebbleOptions<'_>) -> Pebble {
        find_in_path("pebble").unwrap_or_else(|| panic!("pebble not installed: run scripts/test"));
        let dir = TempDir::new("pebble");
        let (port, management) = (free_port(), free_port());
        // A CA and Pebble's own HTTPS certificate for localhost.
        let p256 = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req"];
        ca.extend(p256);
        ca.extend([
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=pebble test CA",
            "-x509",
            "-days",
            "2",
            "-out",
            "ca.pem",
        ]);
        openssl(dir.path(), &ca);
        let mut leaf = vec!["req"];
        leaf.extend(p256);
        leaf.extend([
            "-keyout",
            "pebble.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "pebble.csr",
        ]);
        openssl(dir.path(), &leaf);
        fs::write(
            dir.join("ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("ext");
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "pebble.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "pebble.pem",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": dir.join("pebble.pem"),
                "privateKey": dir.join("pebble.key"),
                "httpPort": o.http_port,
                "tlsPort": o.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": o.eab.is_some(),
                "externalAccountMACKeys": o.eab.map(|(kid, key)| serde_json::json!({ kid: key })),
                "certificateValidityPeriod": o.validity.unwrap_or(157_766_400),
            }
        });
        fs::write(dir.join("pebble.json"), config.to_string()).expect("pebble config");
        let mut args = vec![
            "-config".to_owned(),
            dir.join("pebble.json").display().to_string(),
        ];
        if let Some(dns) = o.dns {
            args.extend(["-dnsserver".to_owned(), dns]);
        }
        let mut env = vec![("PEBBLE_VA_NOSLEEP".to_owned(), "1".to_owned())];
        env.extend(o.env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut p = Pebble {
            child: None,
            port,
            management,
            dir,
            args,
            env,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pebble.log"))
            .expect("pebble log");
        let mut child = Command::new("pebble")
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn pebble");
        wait_listening(
            &mut child,
            [127, 0, 0, 1],
            self.port,
            "pebble",
            &[self.dir.join("pebble.log")],
        );
        wait_listening(
            &mut child,
            [127, 0, 0, 1],
            self.management,
            "pebble",
            &[self.dir.join("pebble.log")],
        );
        self.child = Some(child);
    }

    /// Stops Pebble (its state goes with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
    }

    /// Starts it again on the same ports with `env` added.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.stop();
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.spawn();
    }

    pub fn directory(&self) -> String {
        format!("https://localhost:{}/dir", self.port)
    }

    /// The root of Pebble's own HTTPS certificate, for `[acme] ca_root`.
    pub fn https_root(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The root Pebble issues under, written to a file for curl's --cacert.
    pub fn issuing_root(&self) -> PathBuf {
        let path = self.dir.join("issuing-root.pem");
        let url = format!("https://127.0.0.1:{}/roots/0", self.management);
        let pem = curl_ok(&["-sk", &url]);
        assert!(
            pem.contains("BEGIN CERTIFICATE"),
            "no root from pebble: {pem}"
        );
        fs::write(&path, pem).expect("write root");
        path
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    /// New orders Pebble accepted so far (its log line per order).
    pub fn orders(&self) -> usize {
        // Orders Pebble created, not requests for one: it rejects 5% of
        // good nonces (as CAs may), and the client sends that POST again.
        self.log().matches("Added order \"").count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}
