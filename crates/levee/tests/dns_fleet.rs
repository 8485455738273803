//! levee as the fleet's authoritative DNS, end to end: three members on
//! 127.0.0.2, .3 and .4 share a real redis-server and each serves the zone
//! (several levees agree because they read the same membership); `dig` is
//! the client. A killed member leaves the answers within its heartbeat
//! TTL and is back after its restart and probe; a drained one leaves at
//! once and keeps serving; with every member down all are answered.

#[path = "dns/common.rs"]
mod common;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Extra, Member, ZONE, addresses, dig, status, wait_answers};
use support::{LeveeSetup, Redis, curl_ok, poll};

fn fleet(redis: &Redis) -> String {
    format!("name = \"t\"\nredis = \"{}\"", redis.url())
}

const ALL: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

fn start(redis: &Redis, fleet_extra: &str) -> Vec<Member> {
    let members: Vec<Member> = (0..3)
        .map(|n| Member::start(n, &fleet(redis), "", fleet_extra))
        .collect();
    let refs: Vec<&Member> = members.iter().collect();
    wait_answers(&refs, &ALL, Duration::from_secs(20)).unwrap_or_else(|e| {
        panic!(
            "the three members never agreed: {e}\n{}",
            members[0].levee.stderr()
        )
    });
    members
}

#[test]
fn a_killed_member_leaves_within_its_ttl_and_comes_back() {
    let redis = Redis::start();
    let mut members = start(&redis, "");
    // Static records are served beside the fleet record.
    assert_eq!(
        addresses("127.0.0.2", members[0].dns, &format!("mail.{ZONE}"), "A"),
        ["192.0.2.25"]
    );
    let before = members[1].metric("levee_dns_member_changes_total{direction=\"out\"}");
    let status = Command::new("kill")
        .args(["-KILL", &members[2].levee.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let killed = Instant::now();
    let rest: Vec<&Member> = members[..2].iter().collect();
    wait_answers(&rest, &ALL[..2], Duration::from_secs(10)).expect("m2 leaves");
    // The heartbeat TTL is 1 s, the probe 200 ms: well within a few
    // seconds even on a loaded machine (the bound is generous, not tight).
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "{:?}",
        killed.elapsed()
    );
    assert!(members[1].metric("levee_dns_member_changes_total{direction=\"out\"}") > before);
    // Restarted on the same addresses: back after its heartbeat and probe.
    let (dns, port) = (members[2].dns, members[2].port);
    let setup = LeveeSetup {
        dir: support::TempDir::new("levee"),
        port,
    };
    members[2] = Member::start_on(2, setup, dns, &fleet(&redis), &Extra::default());
    let refs: Vec<&Member> = members.iter().collect();
    wait_answers(&refs, &ALL, Duration::from_secs(15)).expect("m2 is back");
}

#[test]
fn a_drained_member_leaves_at_once_and_keeps_serving() {
    let redis = Redis::start();
    let members = start(&redis, "");
    let out = members[0].ctl_fleet(&["drain", "m1"]);
    assert!(
        out.contains("\"drained\":true") || out.contains("\"drained\": true"),
        "{out}"
    );
    let drained = Instant::now();
    let refs: Vec<&Member> = members.iter().collect();
    wait_answers(&refs, &["127.0.0.2", "127.0.0.4"], Duration::from_secs(5))
        .expect("m1 drained everywhere");
    // At once: the bus, not the next heartbeat or TTL, carried it.
    assert!(
        drained.elapsed() < Duration::from_secs(3),
        "{:?}",
        drained.elapsed()
    );
    // It still serves the clients that have its address.
    let body = curl_ok(&["-s", &format!("http://127.0.0.3:{}/", members[1].port)]);
    assert!(body.contains("hello from m1"), "{body}");
    assert!(members[2].ctl_fleet(&[]).contains("fresh, drained"));
    members[2].ctl_fleet(&["undrain", "m1"]);
    wait_answers(&refs, &ALL, Duration::from_secs(5)).expect("m1 back");
    // An unknown member is refused.
    let admin = format!("127.0.0.1:{}", members[0].admin);
    let out = support::levee_cmd(&["ctl", "--admin", &admin, "fleet", "drain", "nobody"]);
    assert!(!out.status.success());
}

#[test]
fn with_every_member_down_all_are_answered() {
    let redis = Redis::start();
    // Every probe goes to a port nobody listens on: no member is healthy.
    let closed = support::free_port();
    let members: Vec<Member> = (0..3)
        .map(|n| Member::start(n, &fleet(&redis), "", &format!("probe_port = {closed}")))
        .collect();
    let refs: Vec<&Member> = members.iter().collect();
    wait_answers(&refs, &ALL, Duration::from_secs(20)).expect("all answered");
    let logged = poll(Duration::from_secs(10), || {
        members[0]
            .levee
            .stderr()
            .contains("no member is in")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", members[0].levee.stderr());
    assert!(members[0].metric("levee_dns_panic_total") >= 1.0);
    assert_eq!(
        members[0].metric("levee_dns_answer_members{record=\"www.example.test\",mode=\"panic\"}"),
        3.0
    );
    // The answer is still marked authoritative and rotates.
    let out = dig(
        "127.0.0.2",
        members[0].dns,
        &["+norec", &format!("www.{ZONE}"), "A"],
    );
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(out.contains(" aa"), "{out}");
}

/// Geo answers with the GeoIP database the mirror tests build (127.0.1.0/24
/// in Germany, 127.0.2.0/24 France, 127.0.3.0/24 the United States): the
/// EDNS Client Subnet places the client, else the resolver's address.
#[test]
fn geo_answers_the_members_nearest_the_client() {
    let redis = Redis::start();
    let dir = support::TempDir::new("geo");
    let db = dir.join("geo.mmdb");
    support::geoip(&db);
    let dns_extra = format!("geoip = \"{}\"", db.display());
    let ips = ["127.0.1.2", "127.0.2.2", "127.0.3.2"];
    let members: Vec<Member> = ips
        .iter()
        .enumerate()
        .map(|(n, ip)| {
            let extra = Extra {
                ip: Some(ip),
                dns: &dns_extra,
                zone: "",
                fleet: "geo = true",
            };
            Member::start_on(
                n,
                LeveeSetup::new(),
                support::free_port(),
                &fleet(&redis),
                &extra,
            )
        })
        .collect();
    let m = &members[0];
    let ask = |args: &[&str]| {
        let mut all = vec!["+short", "+norec"];
        all.extend_from_slice(args);
        let www = format!("www.{ZONE}");
        all.push(&www);
        all.push("A");
        let mut v: Vec<String> = dig(&m.ip, m.dns, &all).lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    let all: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
    let ready = poll(Duration::from_secs(20), || (ask(&[]) == all).then_some(()));
    assert!(ready.is_some(), "{:?}\n{}", ask(&[]), m.levee.stderr());
    assert_eq!(ask(&["+subnet=127.0.1.0/24"]), ["127.0.1.2"]);
    assert_eq!(ask(&["+subnet=127.0.2.0/24"]), ["127.0.2.2"]);
    // Egypt: no member in the country or on the continent: all of them.
    assert_eq!(ask(&["+subnet=127.0.5.0/24"]), all);
    // No subnet: the resolver's own address.
    assert_eq!(ask(&["-b", "127.0.3.9"]), ["127.0.3.2"]);
    // The scope says the answer depended on the subnet.
    let out = dig(
        &m.ip,
        m.dns,
        &["+subnet=127.0.1.0/24", &format!("www.{ZONE}"), "A"],
    );
    assert!(out.contains("CLIENT-SUBNET: 127.0.1.0/24/24"), "{out}");
}
