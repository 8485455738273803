//! Slow clients and overload, end to end: a request body trickled below the
//! minimum progress, a reader that takes a large response too slowly, and
//! shedding of the oldest idle connections near the descriptor limit, be
//! they keep-alive connections or connections that never sent a byte.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{LeveeSetup, Nginx, RawConn, get_req};

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
    // 128 descriptors: shedding starts at 64 open client connections.
    let levee = setup.start_with_nofile(&cfg, 128);
    let port = levee.port;
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
}

/// Keeps `n` connections to `port` open that never send a byte, opening a
/// new one for each that levee closes, until `stop`. Counts the reopened.
fn silent_flood(port: u16, n: usize, stop: Arc<AtomicBool>, reopened: Arc<AtomicUsize>) {
    let open = || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // Short: once the listen queue is full the kernel drops the SYN.
        let s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
        s.set_nonblocking(true).ok()?;
        Some(s)
    };
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        conns.retain_mut(|c| match c.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            _ => {
                reopened.fetch_add(1, Ordering::Relaxed);
                false
            }
        });
        while conns.len() < n {
            match open() {
                Some(c) => conns.push(c),
                None => break,
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Regression: connections that never send a byte were never shed, so a
/// flood of them took every descriptor and a normal client was not
/// accepted until the first of them reached `request_head` (here 60 s);
/// and a head started under that pressure had all of `request_head`.
#[test]
fn connections_that_never_speak_cannot_starve_a_normal_client() {
    let setup = LeveeSetup::new();
    let cfg = format!(
        r#"workers = 1
[log]
access = "off"
[timeouts]
request_head = "60s"
[[listener]]
address = "127.0.0.1:{port}"
[[route]]
respond = "served"
"#,
        port = setup.port
    );
    // 256 descriptors: shedding starts at 230 open client connections
    // (shed_idle_at = 90), and 400 silent connections want far more.
    let levee = setup.start_with_nofile(&cfg, 256);
    let port = levee.port;
    let stop = Arc::new(AtomicBool::new(false));
    let reopened = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (stop, reopened) = (stop.clone(), reopened.clone());
        thread::spawn(move || silent_flood(port, 400, stop, reopened))
    };
    thread::sleep(Duration::from_secs(2));
    // A head started now, and never finished, gets a tenth of request_head
    // while descriptors are short (6 s here), not all 60 s of it.
    let mut slow = RawConn::connect(port);
    slow.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let slow_started = Instant::now();
    // A normal client, a fresh connection every 200 ms for 6 s.
    let started = Instant::now();
    let mut outcomes = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let got = (|| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut response = Vec::new();
            s.read_to_end(&mut response).ok()?;
            Some(String::from_utf8_lossy(&response).into_owned())
        })();
        let ok = got.is_some_and(|r| r.starts_with("HTTP/1.1 200") && r.ends_with("served"));
        outcomes.push((ok, t.elapsed()));
        thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed()));
    }
    let (answer, cut) = slow.read_to_close(Duration::from_secs(20));
    let slow_took = slow_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = flood.join();
    assert!(
        cut && slow_took < Duration::from_secs(20),
        "an unfinished head was kept {slow_took:?} under pressure"
    );
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    let failed: Vec<_> = outcomes.iter().filter(|(ok, _)| !ok).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the flood: {failed:?}; levee stderr:\n{}",
        failed.len(),
        outcomes.len(),
        levee.stderr()
    );
    // The flood did reach the limit: levee closed silent connections.
    let reopened = reopened.load(Ordering::Relaxed);
    assert!(
        reopened >= 50,
        "only {reopened} silent connections were shed"
    );
}
