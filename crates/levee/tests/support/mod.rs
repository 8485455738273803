//! Shared fixtures for levee's black-box tests: real nginx upstreams, a levee
//! process per test, and raw TCP / curl clients.
//!
//! Every fixture picks free loopback ports, waits with a deadline, and kills
//! its process group on drop, so test files run in parallel safely.
#![allow(dead_code)]

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long any fixture waits for a process to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
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
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
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

fn signal_pid(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// Waits for `child` to exit, up to `timeout`.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    poll(timeout, || child.try_wait().ok().flatten())
}

/// Stops a process group: SIGTERM, then SIGKILL if it lingers.
fn kill_group(child: &mut Child) {
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

// ---------------------------------------------------------------- nginx

/// The log format every test nginx writes: `key="value"` pairs, so tests can
/// look fields up by name. nginx escapes `"` in values, so parsing is trivial.
const LOG_FORMAT: &str = concat!(
    r#"conn="$connection" method="$request_method" uri="$request_uri" "#,
    r#"status="$status" xff="$http_x_forwarded_for" via="$http_via" "#,
    r#"host="$http_host" xfp="$http_x_forwarded_proto" xfh="$http_x_forwarded_host" "#,
    r#"x_foo="$http_x_foo" x_bar="$http_x_bar" keep_alive="$http_keep_alive" "#,
    r#"te="$http_transfer_encoding" cl="$http_content_length" "#,
    r#"proto="$server_protocol" connection="$http_connection" upgrade="$http_upgrade""#
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
        let nginx_bin = find_in_path("nginx")
            .unwrap_or_else(|| panic!("nginx not installed: run scripts/test"));
        let dir = TempDir::new("nginx");
        let port = free_port();
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
    server {{
        listen 127.0.0.1:{port};
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
        let up = poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(status));
            }
            port_open(port).then_some(Ok(()))
        });
        match up {
            Some(Ok(())) => {}
            other => {
                let err = fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
                let stderr = fs::read_to_string(dir.join("logs/stderr.log")).unwrap_or_default();
                kill_group(&mut child);
                panic!("nginx did not start ({other:?}):\n{stderr}\n{err}");
            }
        }
        Nginx { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------- levee

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

    /// Starts levee with `args` in the setup's directory without waiting.
    pub fn spawn_args(self, args: &[&str], port: u16) -> Levee {
        let child = Command::new(env!("CARGO_BIN_EXE_levee"))
            .args(args)
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

// ---------------------------------------------------------------- clients

/// Runs curl with `args`, silent but showing errors, bounded in time and
/// never through a proxy from the environment.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--noproxy", "*"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl not installed: run scripts/test")
}

/// curl that must succeed (exit 0); returns stdout as text.
pub fn curl_ok(args: &[&str]) -> String {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `bytes` on a fresh connection and reads until EOF or 3 s pass.
pub fn raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    raw_eof(port, bytes).0
}

/// Like [`raw`], also telling whether the peer closed (EOF or reset) before the deadline.
pub fn raw_eof(port: u16, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut conn = RawConn::connect(port);
    conn.send(bytes);
    conn.read_to_close(Duration::from_secs(3))
}

/// A parsed HTTP/1.x response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True if a `Connection` header lists `close`.
    pub fn closes(&self) -> bool {
        self.header_all("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses the status line and head of `bytes`; the body is what follows the
/// head, unparsed. For quick checks of what [`raw`] returned.
pub fn parse_head(bytes: &[u8]) -> Option<Response> {
    let end = find(bytes, b"\r\n\r\n")?;
    let (status, reason, headers) = parse_head_text(&bytes[..end])?;
    Some(Response {
        status,
        reason,
        headers,
        body: bytes[end + 4..].to_vec(),
        trailers: Vec::new(),
    })
}

type Head = (u16, String, Vec<(String, String)>);

fn parse_head_text(head: &[u8]) -> Option<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect();
    Some((status, reason, headers))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A client connection for keep-alive and byte-exact tests.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub fn connect(port: u16) -> RawConn {
        RawConn::try_connect(port).expect("connect to levee")
    }

    pub fn try_connect(port: u16) -> std::io::Result<RawConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to levee");
    }

    /// Like `send`, but reports failure instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads at least one more byte into the buffer; `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads until `needle` is in the buffer; returns the bytes up to and including it.
    fn read_until(&mut self, needle: &[u8], deadline: Instant) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, needle) {
                let rest = self.buf.split_off(i + needle.len());
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if !self.fill(deadline)? {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "EOF before {:?}; had {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        }
    }

    fn read_exact_buf(&mut self, n: usize, deadline: Instant) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill(deadline)? {
                return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "EOF in body"));
            }
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Reads one response head (status line and fields).
    pub fn read_response_head(&mut self) -> Response {
        self.try_read_response_head(Duration::from_secs(10))
            .expect("read response head")
    }

    pub fn try_read_response_head(&mut self, timeout: Duration) -> std::io::Result<Response> {
        let deadline = Instant::now() + timeout;
        let head = self.read_until(b"\r\n\r\n", deadline)?;
        let (status, reason, headers) = parse_head_text(&head[..head.len() - 4])
            .ok_or_else(|| std::io::Error::other(format!("bad response head {head:?}")))?;
        Ok(Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        })
    }

    /// Reads one whole response to a request made with `method`.
    pub fn read_response(&mut self, method: &str) -> Response {
        self.try_read_response(method, Duration::from_secs(10))
            .expect("read response")
    }

    pub fn try_read_response(
        &mut self,
        method: &str,
        timeout: Duration,
    ) -> std::io::Result<Response> {
        let deadline = Instant::now() + timeout;
        let mut resp = self.try_read_response_head(timeout)?;
        while resp.status / 100 == 1 {
            resp =
                self.try_read_response_head(deadline.saturating_duration_since(Instant::now()))?;
        }
        let bodiless = method == "HEAD" || resp.status == 204 || resp.status == 304;
        if bodiless {
            return Ok(resp);
        }
        let chunked = resp
            .header_all("transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let line = self.read_until(b"\r\n", deadline)?;
                let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
                let size_text = text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| std::io::Error::other(format!("bad chunk size line {text:?}")))?;
                if size == 0 {
                    loop {
                        let t = self.read_until(b"\r\n", deadline)?;
                        if t == b"\r\n" {
                            break;
                        }
                        let t = String::from_utf8_lossy(&t[..t.len() - 2]).into_owned();
                        if let Some((k, v)) = t.split_once(':') {
                            resp.trailers.push((k.to_string(), v.trim().to_string()));
                        }
                    }
                    break;
                }
                let data = self.read_exact_buf(size + 2, deadline)?;
                resp.body.extend_from_slice(&data[..size]);
            }
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad content-length {len}")))?;
            resp.body = self.read_exact_buf(len, deadline)?;
        } else {
            // Delimited by close.
            let (rest, _) = self.read_to_close(deadline.saturating_duration_since(Instant::now()));
            resp.body = rest;
        }
        Ok(resp)
    }

    /// Reads everything until the peer closes or `timeout` passes; the flag
    /// says whether it closed (EOF or reset) in time.
    pub fn read_to_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let closed = loop {
            match self.fill(deadline) {
                Ok(true) => continue,
                Ok(false) => break true,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        (std::mem::take(&mut self.buf), closed)
    }

    /// True if the peer closes within `timeout` without sending anything more.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let (rest, closed) = self.read_to_close(timeout);
        closed && rest.is_empty()
    }
}

/// `GET path` with `Host: host` as HTTP/1.1 request bytes.
pub fn get_req(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}
