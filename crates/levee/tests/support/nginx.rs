//! A real nginx upstream on a free port, logging what it received.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// The log format every test nginx writes: `key="value"` pairs, so tests can
/// look fields up by name. nginx escapes `"` in values, so parsing is trivial.
const LOG_FORMAT: &str = concat!(
    r#"conn="$connection" method="$request_method" uri="$request_uri" "#,
    r#"status="$status" xff="$http_x_forwarded_for" via="$http_via" "#,
    r#"host="$http_host" xfp="$http_x_forwarded_proto" xfh="$http_x_forwarded_host" "#,
    r#"x_foo="$http_x_foo" x_bar="$http_x_bar" keep_alive="$http_keep_alive" "#,
    r#"te="$http_transfer_encoding" cl="$http_content_length" "#,
    r#"proto="$server_protocol" connection="$http_connection" upgrade="$http_upgrade" "#,
    r#"xri="$http_x_real_ip" fwd="$http_forwarded" sent="$body_bytes_sent""#
);

/// One line of the test nginx's access log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub line: String,
}

impl LogEntry {
    /// The value of `key`, with nginx's `-` for "absent" kept as is.
    pub fn get(&self, key: &str) -> String {
        let needle = format!("{key}=\"");
        let mut search = 0;
        while let Some(i) = self.line[search..].find(&needle) {
            let at = search + i;
            if at == 0 || self.line.as_bytes()[at - 1] == b' ' {
                let start = at + needle.len();
                let end = self.line[start..]
                    .find('"')
                    .map(|e| start + e)
                    .unwrap_or(self.line.len());
                return self.line[start..end].to_string();
            }
            search = at + needle.len();
        }
        panic!("no {key} in nginx log line {:?}", self.line);
    }
}

/// The default server body: a greeting, a slow download, static files and a
/// WebDAV `PUT` location that stores request bodies so tests can read them back.
pub const DEFAULT_APP: &str = r#"
        location / { return 200 "hello from $server_port\n"; }
        location = /nocontent { return 204; }
        location /files/ { }
        location /slow/ { limit_rate 20k; }
        location /chunked/ {
            gzip on; gzip_min_length 0; gzip_types *; gzip_proxied any;
            add_trailer X-Trailer "trailer-value" always;
        }
        location /dav/ {
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
        }
"#;

/// A real nginx on a free loopback port, with its own prefix directory.
pub struct Nginx {
    child: Child,
    ip: [u8; 4],
    port: u16,
    dir: TempDir,
}

impl Nginx {
    /// nginx with [`DEFAULT_APP`] as its server body.
    pub fn start_default() -> Nginx {
        Nginx::start(DEFAULT_APP)
    }

    /// nginx whose `server {}` holds `server_body` (locations and directives).
    /// Files under `root()` are served at the same paths.
    pub fn start(server_body: &str) -> Nginx {
        Nginx::start_on(free_port(), server_body)
    }

    /// Like [`Nginx::start`] on a given port (to bring a killed server back).
    pub fn start_on(port: u16, server_body: &str) -> Nginx {
        Nginx::start_full([127, 0, 0, 1], port, "", server_body)
    }

    /// Like [`Nginx::start_on`] on another loopback address (127.0.0.0/8),
    /// so two servers can share a port, as the records of one name do.
    pub fn start_at(ip: [u8; 4], port: u16, server_body: &str) -> Nginx {
        Nginx::start_full(ip, port, "", server_body)
    }

    /// nginx with `http_extra` in its `http {}` block (such as `map`s) and
    /// `server_body` in its one server.
    pub fn start_http(http_extra: &str, server_body: &str) -> Nginx {
        Nginx::start_full([127, 0, 0, 1], free_port(), http_extra, server_body)
    }

    fn start_full(ip: [u8; 4], port: u16, http_extra: &str, server_body: &str) -> Nginx {
        let [a, b, c, e] = ip;
        let listen = format!("{a}.{b}.{c}.{e}:{port}");
        let nginx_bin = find_in_path("nginx")
            .unwrap_or_else(|| panic!("nginx not installed: run scripts/test"));
        let dir = TempDir::new("nginx");
        let root = dir.join("html");
        for sub in [
            "html/files",
            "html/slow",
            "html/chunked",
            "html/dav",
            "tmp",
            "logs",
        ] {
            fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        let d = dir.path().display();
        // As root, nginx drops workers to `nobody`, who could not write dav
        // files into our temp dir; keep workers as the current user instead.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            r#"
{user}
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 1024; }}
http {{
    types {{ text/html html; text/css css; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    log_format levee_test '{LOG_FORMAT}';
    access_log {d}/logs/access.log levee_test;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    {http_extra}
    server {{
        listen {listen};
        server_name _;
        root {root};
        {server_body}
    }}
}}
"#,
            root = root.display(),
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut child = Command::new(nginx_bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("logs/stderr.log")).expect("create stderr log"))
            .process_group(0)
            .spawn()
            .expect("spawn nginx");
        let logs = [dir.join("logs/stderr.log"), dir.join("logs/error.log")];
        wait_listening(&mut child, ip, port, "nginx", &logs);
        Nginx {
            child,
            ip,
            port,
            dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> String {
        let [a, b, c, d] = self.ip;
        format!("{a}.{b}.{c}.{d}:{}", self.port)
    }

    /// The document root; `files/`, `slow/`, `chunked/` and `dav/` exist in it.
    pub fn root(&self) -> PathBuf {
        self.dir.join("html")
    }

    /// Writes `content` at `rel` under the document root.
    pub fn put_file(&self, rel: &str, content: &[u8]) -> PathBuf {
        let path = self.root().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, content).expect("write file");
        path
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    /// The log entries once every request nginx has answered is logged:
    /// nginx writes a line just after the response, so a test that read its
    /// answer may look before the line exists. One worker serves requests in
    /// order, so once a marker request sent now is logged, so is every
    /// request answered before it. Marker lines are left out.
    pub fn settled_entries(&self) -> Vec<LogEntry> {
        static MARK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MARK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uri = format!("/__log_sync/{n}");
        if let Ok(mut s) = std::net::TcpStream::connect(self.addr()) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!("GET {uri} HTTP/1.1\r\nHost: sync\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(req.as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        }
        self.wait_entries(&uri, 1);
        self.entries()
            .into_iter()
            .filter(|e| !e.get("uri").starts_with("/__log_sync/"))
            .collect()
    }

    /// The request targets nginx received, in order, once settled.
    pub fn seen_uris(&self) -> Vec<String> {
        self.settled_entries()
            .iter()
            .map(|e| e.get("uri"))
            .collect()
    }

    pub fn entries(&self) -> Vec<LogEntry> {
        self.access_log()
            .lines()
            .map(|l| LogEntry {
                line: l.to_string(),
            })
            .collect()
    }

    /// The log entries whose `uri` starts with `prefix`, once at least `n`
    /// exist (nginx writes a line when a request completes).
    pub fn wait_entries(&self, prefix: &str, n: usize) -> Vec<LogEntry> {
        let found = poll(Duration::from_secs(10), || {
            let matching: Vec<LogEntry> = self
                .entries()
                .into_iter()
                .filter(|e| e.get("uri").starts_with(prefix))
                .collect();
            (matching.len() >= n).then_some(matching)
        });
        found.unwrap_or_else(|| {
            panic!(
                "nginx never logged {n} requests for {prefix}; log:\n{}",
                self.access_log()
            )
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

pub(crate) fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
