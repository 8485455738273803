//! Upstream groups under test: a config with one proxy route to upstream
//! `app`, the nginx default body's port, and steady client load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use super::*;

/// A levee config with an admin listener and upstream `app` over `servers`
/// (TOML array items); `route` is added to the one route, `upstream` inside
/// `[upstream.app]`, and `tail` after it (tables such as
/// `[upstream.app.health_check]` or `[cache]`).
pub fn upstream_config(
    setup: &LeveeSetup,
    admin: u16,
    servers: &[String],
    route: &str,
    upstream: &str,
    tail: &str,
) -> String {
    format!(
        r#"pid_file = "{pid}"
workers = 2

[log]
access = "off"

[admin]
address = "127.0.0.1:{admin}"

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
proxy = "app"
{route}

[upstream.app]
servers = [{servers}]
{upstream}

{tail}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        servers = servers.join(", "),
    )
}

/// The state of upstream `app`'s server at `addr` in the control API.
pub fn state(admin: u16, addr: &str) -> String {
    server_json(admin, "app", addr)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Requests sent to upstream `app`'s server at `addr` (-1: no such series).
pub fn requests_to(admin: u16, addr: &str) -> f64 {
    metric(
        admin,
        &format!("levee_upstream_requests_total{{upstream=\"app\",server=\"{addr}\"}}"),
    )
    .unwrap_or(-1.0)
}

/// The nginx's address as a TOML string.
pub fn quoted(n: &Nginx) -> String {
    format!("\"{}\"", n.addr())
}

/// The port that answered a default nginx body ("hello from PORT").
pub fn served_by(resp: &Response) -> String {
    resp.body_text()
        .trim()
        .strip_prefix("hello from ")
        .unwrap_or("?")
        .to_string()
}

/// One GET on a connection of its own.
pub fn get(port: u16, path: &str) -> Response {
    let mut c = RawConn::connect(port);
    c.send(&get_req(path, "up.test"));
    c.read_response("GET")
}

/// What a load thread makes of a response: `Err` for one that must not
/// happen.
pub type Check = fn(&Response) -> Result<(), String>;

/// A response from the nginx default body.
pub fn hello(resp: &Response) -> Result<(), String> {
    if resp.status == 200 && resp.body_text().starts_with("hello from") {
        Ok(())
    } else {
        Err(format!(
            "status {} body {:?}",
            resp.status,
            resp.body_text()
        ))
    }
}

/// Steady load from `threads` keep-alive clients, each sending `request`
/// (made with `method`) until `finish`: responses `check` refuses, and
/// connections that fail, are collected; the others counted.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<Vec<String>>>,
}

impl Load {
    pub fn start(
        port: u16,
        threads: usize,
        request: &[u8],
        method: &'static str,
        check: Check,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok, request) = (stop.clone(), ok.clone(), request.to_vec());
                thread::spawn(move || {
                    let mut errors = Vec::new();
                    let mut conn: Option<RawConn> = None;
                    while !stop.load(Ordering::Relaxed) {
                        match one_request(&mut conn, port, &request, method, check) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                errors.push(e);
                                conn = None;
                            }
                        }
                    }
                    errors
                })
            })
            .collect();
        Load { stop, ok, threads }
    }

    /// GETs of `/` that must all be answered by the nginx default body.
    pub fn hello(port: u16, threads: usize) -> Load {
        Load::start(port, threads, &get_req("/", "load.test"), "GET", hello)
    }

    /// Stops the clients: the responses that passed, and every failure.
    pub fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("load thread"))
            .collect();
        (self.ok.load(Ordering::Relaxed), errors)
    }
}

fn one_request(
    conn: &mut Option<RawConn>,
    port: u16,
    request: &[u8],
    method: &str,
    check: Check,
) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(RawConn::try_connect(port).map_err(|e| format!("connect: {e}"))?);
    }
    let c = conn.as_mut().ok_or("no connection")?;
    c.try_send(request).map_err(|e| e.to_string())?;
    let resp = c
        .try_read_response(method, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let checked = check(&resp);
    if resp.closes() {
        *conn = None;
    }
    checked
}
