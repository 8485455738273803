//! The fleet end to end: levee members on 127.0.0.2, .3 and .4 sharing a
//! real redis-server (started per test, no persistence): a fleet-scoped
//! promotion-code limit held across members, membership and `levee ctl
//! fleet`, the bus, credentials, TLS. Faults are in fleet_faults.rs.
//!
//! The routes answer with `respond`: what is under test is the decision
//! before the action, the same for every action.

#[path = "tls/certs.rs"]
mod certs;
#[path = "fleet/common.rs"]
mod common;
mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{Member, Tally, ping_until_heard, promo, send, start_fleet};
use support::{Redis, TempDir, levee_cmd, poll};

fn section(redis: &Redis) -> String {
    format!("name = \"t\"\nredis = \"{}\"", redis.url())
}

/// The case: limit 100 per minute on one promotion code, 3,000
/// requests spread unevenly (60 / 30 / 10 %) over three members at once.
/// Three local limits would admit about 300; the fleet admits what one
/// limit does: the burst of 100, plus one per 600 ms slot the run spans
/// (GCRA, docs/protection.md), within one.
#[test]
fn three_members_hold_one_promotion_code_limit() {
    let redis = Redis::start();
    // A generous timeout: on this loaded machine an answer can take more
    // than the default 20 ms, and a request not answered in time is decided
    // by the member's share instead (fleet_faults.rs tests that path).
    let fleet = format!("{}\ntimeout = \"500ms\"", section(&redis));
    let members = start_fleet(&fleet, &promo("100/m", 100));
    // (member, connections, requests per connection): 1,800 / 900 / 300.
    let plan = [(0usize, 3u32, 600u32), (1, 2, 450), (2, 1, 300)];
    let started = Instant::now();
    let tallies: Vec<Tally> = thread::scope(|s| {
        let handles: Vec<_> = plan
            .iter()
            .flat_map(|&(m, conns, n)| {
                let member = &members[m];
                (0..conns).map(move |_| (member, n))
            })
            .map(|(member, n)| s.spawn(move || send(member, "/redeem?code=X", n)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut total = Tally::default();
    for t in &tallies {
        total.merge(t);
    }
    assert_eq!(total.admitted + total.refused, 3000, "{total:?}");
    let slots = (elapsed.as_millis() / 600) as u32;
    let allowed = 100 + slots;
    assert!(
        total.admitted.abs_diff(allowed) <= 1,
        "admitted {} over {elapsed:?}: one limit allows {allowed} (100 + {slots} slots); {total:?}",
        total.admitted
    );
    // Another code has its own allowance, on any member.
    assert_eq!(send(&members[2], "/redeem?code=Y", 1).admitted, 1);
    // Fleet limits were decided by Redis, not by the fallback.
    for m in &members {
        assert_eq!(
            m.metric("levee_rate_limit_fallback_total{rule=\"promo\"}"),
            0.0
        );
    }
}

#[test]
fn members_are_listed_and_a_killed_one_turns_stale() {
    let redis = Redis::start();
    let members = start_fleet(&section(&redis), &promo("10/s", 10));
    let listed = poll(Duration::from_secs(10), || {
        let out = members[0].ctl_fleet();
        (out.matches(" fresh ").count() == 3).then_some(out)
    })
    .unwrap_or_else(|| panic!("three fresh members: {}", members[0].ctl_fleet()));
    assert!(listed.contains("3 live member(s)"), "{listed}");
    for n in 0..3 {
        assert!(listed.contains(&format!("m{n} ")), "{listed}");
        assert!(listed.contains(&format!("127.0.0.{}:", n + 2)), "{listed}");
    }
    // Each member listens elsewhere, so their configs differ, and ctl says so.
    assert!(listed.contains("config hashes differ:"), "{listed}");
    // SIGKILL: no goodbye, the record stays and ages past its 1 s TTL.
    let status = Command::new("kill")
        .args(["-KILL", &members[2].levee.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let stale = poll(Duration::from_secs(10), || {
        let out = members[0].ctl_fleet();
        out.lines()
            .any(|l| l.starts_with("m2 ") && l.contains("STALE"))
            .then_some(out)
    })
    .unwrap_or_else(|| panic!("m2 never stale: {}", members[0].ctl_fleet()));
    assert!(stale.contains("2 live member(s)"), "{stale}");
    let counted = poll(Duration::from_secs(5), || {
        (members[1].metric("levee_fleet_members{state=\"stale\"}") == 1.0).then_some(())
    });
    assert!(counted.is_some(), "m1 does not count one stale member");
    // A member that stops gracefully removes its record instead.
    members[1].levee.stop();
    let gone = poll(Duration::from_secs(10), || {
        let out = members[0].ctl_fleet();
        (!out.contains("m1 ")).then_some(out)
    });
    assert!(
        gone.is_some(),
        "m1 still listed: {}",
        members[0].ctl_fleet()
    );
}

#[test]
fn a_ping_on_the_bus_reaches_every_member() {
    let redis = Redis::start();
    let members = start_fleet(&section(&redis), &promo("10/s", 10));
    assert!(
        ping_until_heard(&members[0], &members, "hello-fleet"),
        "not every member logged the ping:\n{}",
        members
            .iter()
            .map(|m| m.levee.stderr())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
}

#[test]
fn credentials_come_from_a_file_and_check_reads_them() {
    let redis = Redis::start_with(&["--requirepass", "s3cret-pass"]);
    let dir = TempDir::new("fleet-creds");
    let creds = dir.join("redis.auth");
    std::fs::write(&creds, "default:s3cret-pass\n").expect("write credentials");
    let fleet = format!(
        "name = \"t\"\nredis = \"{}\"\ncredentials_file = \"{}\"",
        redis.url(),
        creds.display()
    );
    let m = Member::start(0, &fleet, &promo("10/s", 10));
    assert!(
        m.wait_redis_up(Duration::from_secs(15)),
        "{}",
        m.levee.stderr()
    );
    assert_eq!(send(&m, "/redeem?code=A", 3).admitted, 3);
    // The password is in no log line and no metric.
    assert!(!m.levee.stderr().contains("s3cret-pass"));
    // `levee check` reads the file as `levee run` does: gone, it fails at
    // the key, with its line and column.
    std::fs::remove_file(&creds).expect("remove credentials");
    let out = levee_cmd(&["check", "-c", &m.levee.config_path().display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("fleet.credentials_file"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("levee.toml:26:"), "{line}");
    assert!(line.contains("cannot read"), "{line}");
}

/// `rediss://` with a private CA: verified against `ca_file`, and refused
/// without it (the system roots do not know the CA), in which case the
/// member limits on its own share and says so.
#[test]
fn tls_to_redis_is_verified_against_the_ca_file() {
    let dir = TempDir::new("fleet-tls");
    let ca = certs::ca(dir.path(), "ca");
    let (cert, key) = certs::leaf(dir.path(), "ca", "redis", "localhost", &["localhost"]);
    let redis = Redis::start_tls(cert, key);
    let addr = format!("rediss://localhost:{}", redis.port);
    // Generous: a TLS round trip on a loaded machine may take longer than
    // the default 20 ms, and a late answer counts as a fallback.
    let trusted = Member::start(
        0,
        &format!(
            "name = \"t\"\nredis = \"{addr}\"\nca_file = \"{}\"\ntimeout = \"500ms\"",
            ca.display()
        ),
        &promo("10/s", 10),
    );
    assert!(
        trusted.wait_redis_up(Duration::from_secs(15)),
        "{}",
        trusted.levee.stderr()
    );
    assert_eq!(send(&trusted, "/redeem?code=T", 3).admitted, 3);
    assert_eq!(
        trusted.metric("levee_rate_limit_fallback_total{rule=\"promo\"}"),
        0.0
    );
    let untrusted = Member::start(
        1,
        &format!("name = \"t\"\nredis = \"{addr}\""),
        &promo("10/s", 10),
    );
    assert!(
        untrusted
            .levee
            .wait_stderr("cannot reach Redis", Duration::from_secs(10)),
        "{}",
        untrusted.levee.stderr()
    );
    assert_eq!(untrusted.metric("levee_fleet_redis_up"), 0.0);
    // Still serving, on its own share.
    assert_eq!(send(&untrusted, "/redeem?code=T", 3).admitted, 3);
    assert_eq!(
        untrusted.metric("levee_rate_limit_fallback_total{rule=\"promo\"}"),
        3.0
    );
}

/// A reload keeps the membership and reports the new config's hash; one
/// that drops `[fleet]` leaves the fleet (the record goes), and one that
/// keeps a fleet-scoped rule without `[fleet]` is refused.
#[test]
fn reloads_update_leave_or_refuse() {
    let redis = Redis::start();
    let m = Member::start(0, &section(&redis), &promo("10/s", 10));
    assert!(
        m.wait_redis_up(Duration::from_secs(15)),
        "{}",
        m.levee.stderr()
    );
    let hash = || {
        let out = m.ctl_fleet();
        out.lines()
            .find(|l| l.starts_with("m0 "))
            .and_then(|l| l.split_whitespace().nth(4))
            .map(str::to_owned)
    };
    let before = poll(Duration::from_secs(5), hash).expect("m0 listed");
    let text = std::fs::read_to_string(m.levee.config_path()).expect("config");
    m.levee.write_config(&format!(
        "{text}\n[[route]]\npath = \"/new\"\nrespond = \"new\"\n"
    ));
    m.levee.reload();
    let after = poll(Duration::from_secs(10), || hash().filter(|h| *h != before));
    assert!(
        after.is_some(),
        "the hash did not change: {}",
        m.ctl_fleet()
    );
    // Without [fleet], the fleet-scoped rule cannot stand: refused.
    let start = text.find("[fleet]").expect("a [fleet] section");
    let end = text.find("[rate_limit.promo]").expect("the rule");
    let alone = format!("{}{}", &text[..start], &text[end..]);
    m.levee.write_config(&alone);
    m.levee.reload();
    assert!(
        m.levee
            .wait_stderr("needs a [fleet] section", Duration::from_secs(10)),
        "{}",
        m.levee.stderr()
    );
    assert!(redis.cli(&["hgetall", "{t}:members"]).contains("m0"));
    // Without [fleet] and with a local rule: the member leaves.
    m.levee
        .write_config(&alone.replace("scope = \"fleet\"", "scope = \"local\""));
    m.levee.reload();
    let left = poll(Duration::from_secs(10), || {
        (!redis.cli(&["hgetall", "{t}:members"]).contains("m0")).then_some(())
    });
    assert!(left.is_some(), "{}", m.levee.stderr());
    let (status, _) = support::admin_request(m.admin, "GET", "/fleet", "");
    assert_eq!(status, 404);
    assert_eq!(send(&m, "/redeem?code=L", 3).admitted, 3);
}

/// A Redis Cluster: limits hold across members (the fleet's keys share one
/// slot, so one script call may carry many), and the bus works through a
/// seed node (PUBLISH reaches every node of a cluster).
#[test]
fn a_redis_cluster_carries_the_fleet() {
    let cluster = support::Cluster::start();
    let seeds: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("\"127.0.0.1:{}\"", n.port))
        .collect();
    let fleet = format!(
        "name = \"t\"\ncluster = [{}]\ntimeout = \"500ms\"",
        seeds.join(", ")
    );
    let members = start_fleet(&fleet, &promo("10/h", 10));
    let mut admitted = 0;
    for m in &members {
        admitted += send(m, "/redeem?code=C", 6).admitted;
    }
    assert_eq!(admitted, 10, "one limit of 10 across three members");
    assert_eq!(cluster.keys("{t}:rl:promo:*"), 1);
    assert!(
        ping_until_heard(&members[1], &members, "over-the-cluster"),
        "{}",
        members[2].levee.stderr()
    );
}
