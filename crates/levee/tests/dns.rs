//! Upstream names resolved through a real DNS server (dnsmasq) given in
//! `[resolver]`: found at start, followed on their TTL without a reload.

mod support;

use std::time::Duration;

use support::*;

fn config(setup: &LeveeSetup, admin: u16, dns: &Dnsmasq, server: &str) -> String {
    format!(
        r#"pid_file = "{pid}"
workers = 1

[log]
access = "off"

[admin]
address = "127.0.0.1:{admin}"

[resolver]
servers = ["{dns}"]

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
proxy = "app"

[upstream.app]
servers = ["{server}"]
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        dns = dns.addr(),
    )
}

fn who(levee: &Levee) -> String {
    curl_ok(&["-s", &levee.url("/who")]).trim().to_owned()
}

fn server_addresses(admin: u16) -> Vec<String> {
    let (_, body) = admin_request(admin, "GET", "/upstreams/app", "");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let mut out: Vec<String> = v["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s["address"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

/// nginx answering `/who` with `me` on `ip:port`.
fn app(ip: [u8; 4], port: u16, me: &str) -> Nginx {
    let body = format!("location = /who {{ return 200 \"{me}\\n\"; }}");
    Nginx::start_at(ip, port, &body)
}

/// dnsmasq with `name` → 127.0.0.1, and levee in front of `name:port`
/// resolved through it; returns them with the admin port.
fn start(name: &str, port: u16) -> (Dnsmasq, Levee, u16) {
    let dns = Dnsmasq::start(&[(name, "127.0.0.1")]);
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &dns, &format!("{name}:{port}"));
    let levee = setup.start(&cfg);
    (dns, levee, admin)
}

#[test]
fn records_are_followed_on_their_ttl_without_reload() {
    let port = free_port();
    let _a = app([127, 0, 0, 1], port, "A");
    let _b = app([127, 0, 0, 2], port, "B");
    // The name exists only in this DNS server, not in /etc/hosts: levee
    // starting at all shows the start-time lookup used `[resolver]`.
    let name = "app.levee.test";
    let (dns, levee, admin) = start(name, port);
    assert_eq!(who(&levee), "A");
    assert_eq!(server_addresses(admin), [format!("127.0.0.1:{port}")]);

    // The record moves: within a few TTLs (1 s) every request goes to B.
    dns.set(&[(name, "127.0.0.2")]);
    let moved = poll(Duration::from_secs(10), || {
        (who(&levee) == "B").then_some(())
    });
    assert!(
        moved.is_some(),
        "still answered by A after the record moved"
    );
    for i in 0..20 {
        assert_eq!(who(&levee), "B", "request {i} after the move");
    }
    assert_eq!(server_addresses(admin), [format!("127.0.0.2:{port}")]);

    // Two records: two servers, both used.
    dns.set(&[(name, "127.0.0.1"), (name, "127.0.0.2")]);
    let both = poll(Duration::from_secs(10), || {
        (server_addresses(admin).len() == 2).then_some(())
    });
    assert!(both.is_some(), "{:?}", server_addresses(admin));
    let answers: Vec<String> = (0..20).map(|_| who(&levee)).collect();
    assert!(answers.iter().any(|w| w == "A"), "{answers:?}");
    assert!(answers.iter().any(|w| w == "B"), "{answers:?}");
}

/// A failing DNS server keeps the last good records.
#[test]
fn a_failed_lookup_keeps_the_last_records() {
    let port = free_port();
    let _a = app([127, 0, 0, 1], port, "A");
    let (dns, levee, admin) = start("kept.levee.test", port);
    assert_eq!(who(&levee), "A");
    drop(dns);
    // Several TTLs pass with the DNS server gone.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(who(&levee), "A");
    assert_eq!(server_addresses(admin), [format!("127.0.0.1:{port}")]);
}

/// Regression: a name that did not resolve stopped levee from starting.
/// Now levee starts (as nginx with a `resolver` does), the server takes no
/// requests until its name resolves (503), and then it does, without a reload.
#[test]
fn a_name_that_resolves_only_later_is_served_once_it_does() {
    let port = free_port();
    let _a = app([127, 0, 0, 1], port, "A");
    let name = "late.levee.test";
    let dns = Dnsmasq::start(&[("other.levee.test", "127.0.0.1")]);
    let setup = LeveeSetup::new();
    let admin = free_port();
    let cfg = config(&setup, admin, &dns, &format!("{name}:{port}"));
    let levee = setup.start(&cfg);
    let status = curl_ok(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &levee.url("/who"),
    ]);
    assert_eq!(status, "503");
    assert!(server_addresses(admin).is_empty());
    dns.set(&[(name, "127.0.0.1")]);
    let served = poll(Duration::from_secs(15), || {
        (who(&levee) == "A").then_some(())
    });
    assert!(
        served.is_some(),
        "the name resolved but levee did not use it; stderr:\n{}",
        levee.stderr()
    );
    assert_eq!(server_addresses(admin), [format!("127.0.0.1:{port}")]);
}
