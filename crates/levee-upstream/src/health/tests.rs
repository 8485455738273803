//! Rise/fall and the check loop on paused tokio time with a scripted probe.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use levee_config::{CheckKind, HealthCheck, HttpCheck};
use tokio::time::Instant;

use super::*;
use crate::state::ServerState;

#[test]
fn counter_needs_fall_failures_then_rise_passes() {
    let mut c = Counter::new(2, 3, true);
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(true), None); // a pass resets the streak
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(false), Some(false));
    assert!(!c.up());
    assert_eq!(c.record(true), None);
    assert_eq!(c.record(false), None);
    assert_eq!(c.record(true), None);
    assert_eq!(c.record(true), Some(true));
}

#[test]
fn jitter_stays_within_its_share_of_the_interval() {
    let check = HealthCheck {
        interval: Duration::from_secs(10),
        jitter_percent: 10,
        ..HealthCheck::default()
    };
    for r in [0u64, 1, 999, 1000, 1001, u64::MAX] {
        let w = next_wait(&check, r);
        assert!(
            w >= Duration::from_secs(10) && w <= Duration::from_secs(11),
            "{w:?}"
        );
    }
    let spread: std::collections::HashSet<_> = (0..50u64)
        .map(|r| next_wait(&check, r.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    assert!(spread.len() > 10, "jitter should spread probes");
}

fn check(fall: u32, rise: u32) -> HealthCheck {
    HealthCheck {
        kind: CheckKind::Tcp,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        rise,
        fall,
        jitter_percent: 0,
    }
}

/// The server goes down after exactly `fall` failed probes, one interval
/// apart, and comes back after `rise` passes; a hanging probe counts as a
/// failure once its timeout passes.
#[tokio::test(start_paused = true)]
async fn loop_takes_a_server_down_and_up_on_schedule() {
    let addr = "127.0.0.1:1".parse().expect("literal");
    let state = Arc::new(ServerState::new(Instant::now()));
    // Script: pass, then fail (by hanging) until told otherwise.
    let healthy = Rc::new(RefCell::new(true));
    let script = healthy.clone();
    let probes = Rc::new(RefCell::new(0u32));
    let counted = probes.clone();
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    local.spawn_local(run(addr, state.clone(), check(3, 2), 7, move || {
        let ok = *script.borrow();
        *counted.borrow_mut() += 1;
        async move {
            if !ok {
                std::future::pending::<()>().await;
            }
            ok
        }
    }));
    local
        .run_until(async {
            tokio::time::sleep(Duration::from_millis(4_500)).await;
            assert_eq!(*probes.borrow(), 2);
            assert!(state.check_up());
            *healthy.borrow_mut() = false;
            // Probes at 6 s, 8 s (+1 s timeout each)… the third failure lands at 6+2*3+1 = 13 s.
            let down_at = loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if !state.check_up() {
                    break start.elapsed();
                }
            };
            assert!(
                down_at >= Duration::from_secs(12) && down_at <= Duration::from_millis(13_200),
                "down after {down_at:?}"
            );
            assert!(!state.usable(Instant::now()));
            *healthy.borrow_mut() = true;
            let before = start.elapsed();
            let up_at = loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if state.check_up() {
                    break start.elapsed();
                }
            };
            // Two passing probes, one interval apart.
            let took = up_at - before;
            assert!(
                took >= Duration::from_secs(3) && took <= Duration::from_millis(6_200),
                "up after {took:?}"
            );
            assert_eq!(
                state.status(Instant::now(), Duration::from_secs(10)),
                crate::Status::SlowStart
            );
        })
        .await;
}

#[test]
fn http_responses_are_judged_by_status_and_body() {
    let check = HttpCheck {
        body: Some("ready".into()),
        ..HttpCheck::default()
    };
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready";
    assert!(probe::judge(ok, &check));
    assert!(!probe::judge(b"HTTP/1.1 200 OK\r\n\r\nbusy", &check));
    assert!(!probe::judge(b"HTTP/1.1 500 Oops\r\n\r\nready", &check));
    assert!(!probe::judge(b"garbage", &check));
    let plain = HttpCheck::default();
    assert!(probe::judge(b"HTTP/1.0 302 Found\r\n", &plain));
    assert!(!probe::judge(b"HTTP/1.1 404 Not Found\r\n", &plain));
}

/// Real probes against a real socket (not on paused time).
#[tokio::test]
async fn tcp_and_http_probes_against_a_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
    });
    assert!(probe(addr, addr.to_string(), CheckKind::Tcp).await);
    let http = CheckKind::Http(HttpCheck {
        body: Some("ok".into()),
        ..HttpCheck::default()
    });
    assert!(probe(addr, addr.to_string(), http.clone()).await);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    assert!(!probe(closed, closed.to_string(), http).await);
}
