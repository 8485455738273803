//! Reload (SIGHUP) and graceful stop (SIGTERM, SIGINT), including reloads
//! under load and stops during a slow download.

mod support;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Levee, LeveeSetup, Nginx, RawConn, curl, free_port, get_req, poll, random_bytes};

fn body_at(port: u16, path: &str) -> Option<String> {
    let out = curl(&[&format!("http://127.0.0.1:{port}{path}")]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn respond_config(pid: &str, ports: &[u16], body: &str) -> String {
    let mut c = format!("pid_file = \"{pid}\"\n");
    for p in ports {
        c.push_str(&format!("[[listener]]\naddress = \"127.0.0.1:{p}\"\n"));
    }
    c.push_str(&format!("[[route]]\nrespond = \"{body}\"\n"));
    c
}

fn refuses(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

#[test]
fn sighup_applies_a_changed_config() {
    let setup = LeveeSetup::new();
    let pid = setup.pid_file().display().to_string();
    let port = setup.port;
    let levee = setup.start(&respond_config(&pid, &[port], "one"));
    assert_eq!(body_at(port, "/").as_deref(), Some("one"));
    // An open keep-alive connection must not pin the old config forever.
    let mut conn = RawConn::connect(port);
    conn.send(&get_req("/", "a"));
    assert_eq!(conn.read_response("GET").body_text().trim(), "one");

    levee.write_config(&respond_config(&pid, &[port], "two"));
    levee.reload();
    let applied = poll(Duration::from_secs(5), || {
        (body_at(port, "/").as_deref() == Some("two")).then_some(())
    });
    assert!(
        applied.is_some(),
        "new config not applied; stderr:\n{}",
        levee.stderr()
    );
}

#[test]
fn invalid_config_on_reload_keeps_the_old_one() {
    let setup = LeveeSetup::new();
    let pid = setup.pid_file().display().to_string();
    let port = setup.port;
    let mut levee = setup.start(&respond_config(&pid, &[port], "old"));
    let broken = format!(
        "pid_file = \"{pid}\"\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n\
         [[route]]\nproxy = \"no-such-upstream\"\n"
    );
    levee.write_config(&broken);
    levee.reload();
    assert!(
        levee.wait_stderr("no-such-upstream", Duration::from_secs(5)),
        "reload errors not on stderr:\n{}",
        levee.stderr()
    );
    let config = levee.config_path().display().to_string();
    assert!(levee.stderr().contains(&config), "error without file name");
    assert!(levee.is_running(), "levee exited on a bad reload");
    assert_eq!(body_at(port, "/").as_deref(), Some("old"));
}

#[test]
fn reload_adds_and_removes_listeners() {
    let setup = LeveeSetup::new();
    let pid = setup.pid_file().display().to_string();
    let a = setup.port;
    let b = free_port();
    let mut levee = setup.start(&respond_config(&pid, &[a], "x"));
    assert!(refuses(b));

    levee.write_config(&respond_config(&pid, &[a, b], "x"));
    levee.reload();
    levee.wait_port(b);
    assert_eq!(body_at(b, "/").as_deref(), Some("x"));

    levee.write_config(&respond_config(&pid, &[b], "y"));
    levee.reload();
    let closed = poll(Duration::from_secs(5), || refuses(a).then_some(()));
    assert!(closed.is_some(), "removed listener still accepts");
    assert_eq!(body_at(b, "/").as_deref(), Some("y"));
}

/// One GET on `conn`, opening a connection first if there is none.
fn one_request(conn: &mut Option<RawConn>, port: u16, path: &str) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(RawConn::try_connect(port).map_err(|e| format!("connect: {e}"))?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".to_string());
    };
    c.try_send(&get_req(path, "load.test"))
        .map_err(|e| e.to_string())?;
    let resp = c
        .try_read_response("GET", Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    if resp.status != 200 || !resp.body_text().starts_with("hello from") {
        return Err(format!(
            "status {} body {:?}",
            resp.status,
            resp.body_text()
        ));
    }
    if resp.closes() {
        *conn = None;
    }
    Ok(())
}

#[test]
fn reload_under_load_fails_no_request() {
    let nginx = Nginx::start_default();
    let setup = LeveeSetup::new();
    let extra =
        |generation: u32| format!("[[route]]\npath = \"/gen/\"\nrespond = \"gen{generation}\"\n");
    let base = setup.proxy_config(&[&nginx.addr()], &extra(0));
    let port = setup.port;
    let levee = setup.start(&base);

    let failures = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (failures, retries, errors) = (failures.clone(), retries.clone(), errors.clone());
        workers.push(thread::spawn(move || {
            let keep_alive = w % 2 == 0;
            let mut conn: Option<RawConn> = None;
            for i in 0..500 {
                let path = format!("/load/{w}/{i}");
                if !keep_alive {
                    conn = None;
                }
                let reused = conn.is_some();
                let mut result = one_request(&mut conn, port, &path);
                if result.is_err() && reused {
                    // An idle keep-alive connection may be closed by the
                    // server just as a request is sent; HTTP clients retry
                    // idempotent requests on a fresh connection then
                    // (RFC 9112 section 9.3.1). Fresh connections get no retry.
                    retries.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                    result = one_request(&mut conn, port, &path);
                }
                if let Err(e) = result {
                    failures.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                    if let Ok(mut v) = errors.lock() {
                        v.push(format!("{path}: {e}"));
                    }
                }
            }
        }));
    }
    for generation in 1..=5 {
        thread::sleep(Duration::from_millis(150));
        levee.write_config(&levee_config_with(&base, &extra(0), &extra(generation)));
        levee.reload();
    }
    for w in workers {
        w.join().expect("load worker panicked");
    }
    let failed = failures.load(Ordering::Relaxed);
    eprintln!(
        "reload under load: {failed} failed, {} keep-alive retries",
        retries.load(Ordering::Relaxed)
    );
    let errors = errors.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(
        failed,
        0,
        "{failed} of 2000 requests failed ({} keep-alive retries); first errors: {:?}\nstderr:\n{}",
        retries.load(Ordering::Relaxed),
        &errors[..errors.len().min(5)],
        levee.stderr()
    );
    let last = poll(Duration::from_secs(5), || {
        (body_at(port, "/gen/").as_deref() == Some("gen5")).then_some(())
    });
    assert!(last.is_some(), "the last reload was not applied");
    let served = nginx
        .settled_entries()
        .iter()
        .filter(|e| e.get("uri").starts_with("/load/"))
        .count();
    assert!(served >= 2000, "nginx saw only {served} requests");
}

fn levee_config_with(base: &str, old: &str, new: &str) -> String {
    base.replace(old, new)
}

#[test]
fn sigterm_lets_a_slow_download_finish() {
    let nginx = Nginx::start_default();
    // 60 kB at 20 kB/s: about three seconds in flight.
    let data = random_bytes(60 * 1024, 5);
    nginx.put_file("slow/file.bin", &data);
    let mut levee = Levee::proxy(&nginx, "[timeouts]\ngrace = \"20s\"\n");
    let port = levee.port;

    let mut conn = RawConn::connect(port);
    conn.send(&get_req("/slow/file.bin", "a"));
    let head = conn.read_response_head();
    assert_eq!(head.status, 200);
    let started = Instant::now();
    levee.stop();

    let refused = poll(Duration::from_secs(3), || refuses(port).then_some(()));
    assert!(
        refused.is_some(),
        "new connections still accepted after SIGTERM"
    );

    let len: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(len, data.len());
    let (rest, closed) = conn.read_to_close(Duration::from_secs(15));
    assert!(closed, "connection not closed after the in-flight response");
    assert!(
        rest == data,
        "download cut short: {} of {} bytes",
        rest.len(),
        data.len()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "download was not slow"
    );

    let status = levee.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "levee exited with {status}");
}

#[test]
fn sigterm_with_idle_connections_exits_promptly() {
    let nginx = Nginx::start_default();
    let mut levee = Levee::proxy(&nginx, "[timeouts]\ngrace = \"20s\"\n");
    let mut conn = RawConn::connect(levee.port);
    conn.send(&get_req("/", "a"));
    assert_eq!(conn.read_response("GET").status, 200);
    let start = Instant::now();
    levee.stop();
    let status = levee.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "levee exited with {status}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "an idle keep-alive connection held the stop for {:?}",
        start.elapsed()
    );
    assert!(conn.closed_within(Duration::from_secs(2)));
}

#[test]
fn sigint_stops_gracefully() {
    let setup = LeveeSetup::new();
    let pid = setup.pid_file().display().to_string();
    let port = setup.port;
    let mut levee = setup.start(&respond_config(&pid, &[port], "bye"));
    assert_eq!(body_at(port, "/").as_deref(), Some("bye"));
    levee.interrupt();
    let status = levee.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "levee exited with {status}");
    assert!(refuses(port));
}

#[test]
fn signals_right_after_start_are_handled() {
    // Once levee accepts connections (and has written its pid file), a
    // SIGHUP or SIGTERM must be handled, never fatal through the default
    // disposition. Repeat to make a start-up race visible.
    for round in 0..5 {
        let setup = LeveeSetup::new();
        let pid = setup.pid_file().display().to_string();
        let port = setup.port;
        let mut levee = setup.spawn(&respond_config(&pid, &[port], "up"));
        // Signal the moment the pid file appears (as `levee reload` would),
        // without the usual poll interval.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&pid).map_or(true, |s| s.trim().is_empty()) {
            assert!(Instant::now() < deadline, "levee never listened");
            assert!(levee.is_running(), "levee exited: {}", levee.stderr());
        }
        levee.reload();
        levee.stop();
        let status = levee.wait_exit(Duration::from_secs(10));
        assert!(
            status.success(),
            "round {round}: levee exited with {status} after SIGHUP+SIGTERM at start-up"
        );
    }
}
