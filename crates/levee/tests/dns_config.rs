//! `[dns]` in levee's life: `levee check` refuses what `levee run` would
//! (record data, the TSIG key file, an address in use by another program),
//! each at its file:line:column; a reload that changes a record gives the
//! zone a later serial and answers the new record; a broken reload keeps
//! the running zone.

#[path = "dns/common.rs"]
mod common;
mod support;

use std::fs;
use std::time::Duration;

use common::{addresses, dig};
use support::{LeveeSetup, TempDir, free_port, levee_cmd, poll};

fn config(pid: &str, http: u16, dns: u16, records: &str, extra: &str) -> String {
    format!(
        r#"pid_file = "{pid}"
[log]
access = "off"

[[listener]]
address = "127.0.0.1:{http}"

[[route]]
respond = "x"

[dns]
listen = "127.0.0.1:{dns}"
{extra}

[[dns.zone]]
name = "example.test"
ns = "ns1.example.test"
records = [{records}]
"#
    )
}

fn serial(dns: u16) -> u32 {
    dig("127.0.0.1", dns, &["+short", "example.test", "SOA"])
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn check_refuses_bad_records_keys_and_addresses_at_their_keys() {
    let dir = TempDir::new("dnscheck");
    let keys = dir.join("tsig.key");
    fs::write(
        &keys,
        "key \"xfer\" { algorithm hmac-md5; secret \"AAAA\"; };\n",
    )
    .expect("write");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let text = config(
        "/tmp/x.pid",
        free_port(),
        port,
        "\"www A 192.0.2.300\",\n  \"mail MX ten mail\"",
        &format!("tsig_keys = \"{}\"", keys.display()),
    );
    let file = dir.join("levee.toml");
    fs::write(&file, &text).expect("write");
    let out = levee_cmd(&["check", "-c", &file.display().to_string()]);
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    let at = |key: &str| {
        err.lines()
            .find(|l| l.contains(&format!(": {key}: ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        at("dns.zone[0].records[0]").contains("levee.toml:18:12:"),
        "{err}"
    );
    assert!(
        at("dns.zone[0].records[1]").contains("levee.toml:19:3:"),
        "{err}"
    );
    assert!(at("dns.tsig_keys").contains("hmac-md5"), "{err}");
    assert!(at("dns.listen[0]").contains("in use"), "{err}");
    // `levee run` refuses the same file, with the same lines.
    let run = levee_cmd(&["run", "-c", &file.display().to_string()]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("dns.zone[0].records[0]"));
}

#[test]
fn a_reload_changes_the_zone_with_a_later_serial_and_a_broken_one_keeps_it() {
    let setup = LeveeSetup::new();
    let dns = free_port();
    let pid = setup.pid_file().display().to_string();
    let http = setup.port;
    let mut levee = setup.spawn(&config(&pid, http, dns, "\"www A 192.0.2.1\"", ""));
    levee.wait_port(http);
    let ok = poll(Duration::from_secs(10), || {
        (addresses("127.0.0.1", dns, "www.example.test", "A") == ["192.0.2.1"]).then_some(())
    });
    assert!(ok.is_some(), "{}", levee.stderr());
    let first = serial(dns);
    levee.write_config(&config(
        &pid,
        http,
        dns,
        "\"www A 192.0.2.2\", \"new TXT hi\"",
        "",
    ));
    levee.reload();
    let changed = poll(Duration::from_secs(10), || {
        (addresses("127.0.0.1", dns, "www.example.test", "A") == ["192.0.2.2"]).then_some(())
    });
    assert!(changed.is_some(), "{}", levee.stderr());
    assert!(serial(dns) > first);
    assert_eq!(
        addresses("127.0.0.1", dns, "new.example.test", "TXT"),
        ["\"hi\""]
    );
    levee.write_config(&config(&pid, http, dns, "\"www A nowhere\"", ""));
    levee.reload();
    let refused = poll(Duration::from_secs(10), || {
        levee.stderr().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "{}", levee.stderr());
    assert_eq!(
        addresses("127.0.0.1", dns, "www.example.test", "A"),
        ["192.0.2.2"]
    );
}
