//! A real BIND 9 secondary carries levee's zone: it transfers it over AXFR
//! with TSIG, is told of each change with NOTIFY and follows it over IXFR
//! (the serial grows), and keeps answering while levee is stopped. Two
//! members serve the zone; transfers are refused to an address that is
//! not a secondary, and without the key.

#[path = "dns/common.rs"]
mod common;
mod support;

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Extra, Member, ZONE, addresses, dig, status, wait_answers};
use support::{LeveeSetup, Redis, TempDir, free_port, kill_group, poll};

const SECRET: &str = "c2VjcmV0LWtleS1mb3ItbGV2ZWUtdHNpZy10ZXN0cyE=";

/// `named` as a secondary of the zone, on 127.0.0.1:`port`, transferring
/// from `primary`:`primary_port` with the key `xfer`.
struct Named {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Named {
    fn start(primary: &str, primary_port: u16, port: u16) -> Named {
        let dir = TempDir::new("named");
        let conf = format!(
            r#"options {{
    directory "{dir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file none;
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "xfer" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "{ZONE}" {{
    type secondary;
    primaries port {primary_port} {{ {primary} key xfer; }};
    file "zone.db";
    allow-notify {{ 127.0.0.0/8; }};
}};
"#,
            dir = dir.path().display(),
        );
        fs::write(dir.join("named.conf"), conf).expect("write named.conf");
        let child = Command::new("named")
            .args(["-g", "-4", "-c"])
            .arg(dir.join("named.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("named.log")).expect("log"))
            .process_group(0)
            .spawn()
            .expect("run named (bind9)");
        Named { child, dir, port }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }

    fn serial(&self) -> Option<u32> {
        dig("127.0.0.1", self.port, &["+short", ZONE, "SOA"])
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

#[test]
fn bind_transfers_follows_changes_and_answers_while_levee_is_stopped() {
    let redis = Redis::start();
    let keys = TempDir::new("tsig");
    let key_file = keys.join("tsig.key");
    fs::write(
        &key_file,
        format!("key \"xfer\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    )
    .expect("write key");
    // The secondary's port goes into levee's config: reserve it first.
    let named_port = free_port();
    let dns_extra = format!("tsig_keys = \"{}\"", key_file.display());
    let zone_extra = format!("secondaries = \"127.0.0.1:{named_port}\"\ntsig_key = \"xfer\"");
    let fleet_section = format!("name = \"t\"\nredis = \"{}\"", redis.url());
    let extra = Extra {
        ip: None,
        dns: &dns_extra,
        zone: &zone_extra,
        fleet: "",
    };
    let members: Vec<Member> = (0..2)
        .map(|n| Member::start_on(n, LeveeSetup::new(), free_port(), &fleet_section, &extra))
        .collect();
    let refs: Vec<&Member> = members.iter().collect();
    wait_answers(&refs, &["127.0.0.2", "127.0.0.3"], Duration::from_secs(20)).expect("both in");
    let named = Named::start("127.0.0.2", members[0].dns, named_port);
    let carried = poll(Duration::from_secs(30), || {
        let got = addresses("127.0.0.1", named.port, &format!("www.{ZONE}"), "A");
        (got == ["127.0.0.2", "127.0.0.3"]).then_some(())
    });
    assert!(
        carried.is_some(),
        "named never carried the zone:\n{}\nlevee:\n{}",
        named.log(),
        members[0].levee.stderr()
    );
    let first = named.serial().expect("a serial");
    // Transfers: refused to another address, and without the key.
    let out = dig(
        "127.0.0.2",
        members[0].dns,
        &["-b", "127.0.0.9", ZONE, "AXFR"],
    );
    assert!(out.contains("Transfer failed"), "{out}");
    let out = dig("127.0.0.2", members[0].dns, &[ZONE, "AXFR"]);
    assert!(
        out.contains("Transfer failed") || status(&out) == "NOTAUTH",
        "{out}"
    );
    let out = dig(
        "127.0.0.2",
        members[0].dns,
        &["-y", &format!("hmac-sha256:xfer:{SECRET}"), ZONE, "AXFR"],
    );
    assert_eq!(out.matches("\tSOA\t").count(), 2, "{out}");
    // A drain changes the zone: NOTIFY, then IXFR, and a later serial.
    members[1].ctl_fleet(&["drain", "m1"]);
    let followed = poll(Duration::from_secs(30), || {
        let got = addresses("127.0.0.1", named.port, &format!("www.{ZONE}"), "A");
        (got == ["127.0.0.2"]).then_some(())
    });
    assert!(
        followed.is_some(),
        "named did not follow the drain:\n{}",
        named.log()
    );
    let second = named.serial().expect("a serial");
    assert!(second > first, "{second} after {first}");
    // The change went over IXFR: the journal's difference, 5 records.
    let log = members[0].levee.stderr();
    assert!(log.contains("kind=\"IXFR\""), "{log}");
    assert!(
        named
            .log()
            .contains("Transfer completed: 1 messages, 5 records"),
        "{}",
        named.log()
    );
    assert!(members[0].metric("levee_dns_notifies_total{result=\"answered\"}") >= 1.0);
    // levee stopped: the secondary keeps answering.
    for m in &members {
        m.levee.stop();
    }
    let stopped = poll(Duration::from_secs(15), || {
        addresses("127.0.0.2", members[0].dns, &format!("www.{ZONE}"), "A")
            .iter()
            .all(|l| !l.starts_with("127."))
            .then_some(())
    });
    assert!(stopped.is_some(), "levee still answers");
    assert_eq!(
        addresses("127.0.0.1", named.port, &format!("www.{ZONE}"), "A"),
        ["127.0.0.2"]
    );
    assert_eq!(
        addresses("127.0.0.1", named.port, &format!("mail.{ZONE}"), "A"),
        ["192.0.2.25"]
    );
}
