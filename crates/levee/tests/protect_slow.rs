//! Slow clients and overload, end to end: a request body trickled below the
//! minimum progress, a reader that takes a large response too slowly, and
//! shedding of the oldest idle connections near the descriptor limit.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{LeveeSetup, Nginx, RawConn, get_req, poll};

const PACE: &str = r#"
[protect]
min_progress = "16k"
progress_window = "1s"
"#;

#[test]
fn a_trickled_body_is_refused_408_before_the_upstream_sees_it() {
    let nginx = Nginx::start_default();
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&nginx.addr()], PACE);
    let levee = setup.start(&cfg);
    let mut conn = RawConn::connect(levee.port);
    conn.send(b"POST /slow-body HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    let started = Instant::now();
    // Ten bytes every 100 ms: far below 16 KiB a second, yet never idle
    // long enough for the per-read timeout.
    let sender = {
        let mut s = conn.stream.try_clone().expect("clone");
        thread::spawn(move || {
            for _ in 0..60 {
                if s.write_all(b"0123456789").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let resp = conn.read_response_head();
    assert_eq!(resp.status, 408);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    let _ = sender.join();
    thread::sleep(Duration::from_millis(200));
    assert!(
        !nginx.access_log().contains("/slow-body"),
        "the upstream saw the request"
    );
    // A body sent at a normal pace is fine.
    let mut conn = RawConn::connect(levee.port);
    let body = vec![b'x'; 200_000];
    conn.send(b"POST /fast-body HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n");
    conn.send(&body);
    let status = conn.read_response("POST").status;
    assert!(status < 500 && status != 408, "normal body got {status}");
}

#[test]
fn a_slow_reader_of_a_large_response_is_cut_off() {
    let nginx = Nginx::start_default();
    nginx.put_file("files/big.bin", &vec![b'b'; 32 << 20]);
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(&[&nginx.addr()], PACE);
    let levee = setup.start(&cfg);
    let mut s = TcpStream::connect(("127.0.0.1", levee.port)).expect("connect");
    s.write_all(&get_req("/files/big.bin", "t")).expect("send");
    // Take a little, then stop reading: levee fills the socket buffers and
    // then must give up within about one window rather than wait forever.
    let mut buf = vec![0u8; 4096];
    s.read_exact(&mut buf).expect("first bytes");
    thread::sleep(Duration::from_secs(4));
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = Instant::now();
    let mut total = buf.len();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            // levee resets a reader it cuts off, dropping what was queued.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close: {e} after {total} bytes"),
        }
    }
    assert!(total < 32 << 20, "the whole body arrived ({total} bytes)");
    // Closed (or reset) without waiting for levee.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn oldest_idle_connections_are_shed_near_the_descriptor_limit() {
    let nginx = Nginx::start_default();

    let setup = LeveeSetup::new();
    let cfg = format!(
        r#"workers = 1
[log]
access = "off"
[protect]
shed_idle_at = 50
[[listener]]
address = "127.0.0.1:{port}"
[[route]]
proxy = "app"
[upstream.app]
servers = ["{nginx}"]
"#,
        port = setup.port,
        nginx = nginx.addr()
    );
    let config_path = setup.config_path();
    std::fs::write(&config_path, cfg).expect("write config");
    // 128 descriptors: shedding starts at 64 open client connections.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 128 && exec \"$0\" run -c \"$1\"")
        .arg(env!("CARGO_BIN_EXE_levee"))
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn levee");
    let port = setup.port;
    let up = poll(Duration::from_secs(15), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "levee did not start");
    let request = |c: &mut RawConn| {
        c.try_send(&get_req("/", "t")).ok()?;
        c.try_read_response("GET", Duration::from_secs(5))
            .ok()
            .map(|r| r.status)
    };
    // 60 idle keep-alive connections, parked.
    let mut idle: Vec<RawConn> = (0..60)
        .map(|_| {
            let mut c = RawConn::connect(port);
            assert_eq!(request(&mut c), Some(200));
            c
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    // 100 more clients, each served, far past what the descriptors allow.
    let mut fresh = Vec::new();
    for i in 0..100 {
        let mut c = RawConn::connect(port);
        assert_eq!(request(&mut c), Some(200), "new client {i} not served");
        fresh.push(c);
        thread::sleep(Duration::from_millis(120));
    }
    // The oldest idle connections made the room: closed without a word.
    let shed = idle
        .iter_mut()
        .take(20)
        .map(|c| c.closed_within(Duration::from_millis(200)))
        .filter(|closed| *closed)
        .count();
    assert!(
        shed >= 15,
        "only {shed} of the 20 oldest idle connections were shed"
    );
    let _ = child.kill();
    let _ = child.wait();
}
