//! Automatic certificates in a fleet and under attack, against Pebble:
//! three levees sharing one Redis order a new name once and all serve it;
//! a flood of random SNI names with on-demand TLS gated by an ask service
//! orders nothing the service refused, while a name it allows is obtained
//! at its first handshake.
//!
//! Neither test is about validation, so Pebble takes every challenge as
//! valid (`PEBBLE_VA_ALWAYS_VALID`): in the fleet test only one levee could
//! own the port Pebble validates on.

#[path = "acme/common.rs"]
mod common;
mod support;

use std::process::Command;
use std::time::Duration;

use common::*;
use support::*;

#[test]
fn a_fleet_orders_a_new_name_once_and_every_member_serves_it() {
    let redis = Redis::start();
    let first = LeveeSetup::new();
    let acme = Acme::start(&first, &[("PEBBLE_VA_ALWAYS_VALID", "1")], None);
    let key = first.dir.join("fleet.key");
    std::fs::write(&key, "a secret shared by the fleet\n").expect("key");
    let root = acme.pebble.issuing_root();
    let mut setups = vec![first];
    setups.extend((1..3).map(|_| LeveeSetup::new()));
    // Each member its own listeners and storage; the same [acme] and Redis.
    let mut members = Vec::new();
    for (i, setup) in setups.into_iter().enumerate() {
        let (tls, admin) = (free_port(), free_port());
        let config = acme.config_at(
            setup.dir.path(),
            (setup.port, tls, admin),
            &format!("fleet_key_file = \"{}\"", key.display()),
            "[[route]]\nhost = \"c.test\"\nrespond = \"hello from c\"\n",
        ) + &format!(
            "\n[fleet]\nname = \"acmefleet\"\ninstance = \"m{i}\"\nredis = \"{}\"\n",
            redis.url()
        );
        let port = setup.port;
        members.push((setup.spawn(&config), port, tls, admin));
    }
    for (levee, port, _, _) in &mut members {
        levee.wait_port(*port);
    }
    for (levee, _, tls, _) in &members {
        let served = poll(Duration::from_secs(90), || {
            let out = get_at(*tls, "c.test", &root);
            (out.status.success() && out.stdout == b"hello from c").then_some(())
        });
        assert!(
            served.is_some(),
            "member not serving c.test:\n{}",
            levee.stderr()
        );
    }
    assert_eq!(
        acme.pebble.orders(),
        1,
        "orders reaching the CA:\n{}",
        acme.pebble.log()
    );
    let serials: Vec<Option<String>> = members
        .iter()
        .map(|(_, _, tls, _)| served_serial(*tls, "c.test", &root))
        .collect();
    assert!(serials[0].is_some());
    assert!(serials.iter().all(|s| *s == serials[0]), "{serials:?}");
    // The two that did not order took it from the fleet (logged once the
    // certificate is in use and saved on disk: after it is served).
    let took = |n: usize| {
        members
            .iter()
            .filter(|(l, _, _, _)| l.stderr().contains("certificate taken from the fleet"))
            .count()
            == n
    };
    assert!(
        poll(Duration::from_secs(10), || took(2).then_some(())).is_some(),
        "two members took the fleet's certificate"
    );

    // In Redis: the chain in the clear, its key and the account sealed.
    let shared = redis.cli(&["get", "{acmefleet}:acme:cert:c.test"]);
    assert!(shared.contains("BEGIN CERTIFICATE"), "{shared}");
    assert!(
        !shared.contains("PRIVATE KEY"),
        "a key in the clear: {shared}"
    );
    let accounts = redis.cli(&["keys", "{acmefleet}:acme:account:*"]);
    assert_eq!(accounts.lines().count(), 1, "{accounts}");

    // Redis gone: a member keeps serving its copy, and a renewal asked of
    // it does not go to the CA without the fleet's lock.
    let mut redis = redis;
    redis.kill();
    let (_, _, tls, admin) = &members[1];
    let out = levee_cmd(&[
        "ctl",
        "--admin",
        &format!("127.0.0.1:{admin}"),
        "certs",
        "renew",
        "c.test",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "renewed without Redis");
    assert!(
        said.contains("not ordering without the fleet's lock"),
        "{said}"
    );
    assert_eq!(served_serial(*tls, "c.test", &root), serials[0]);
    assert_eq!(acme.pebble.orders(), 1);
}

/// The ask service's process, killed when the test ends however it ends
/// (a failed assertion left it running, holding the test's stdout open).
struct Asker(std::process::Child);

impl Drop for Asker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An ask service: 200 for `ok.test`, 403 for anything else; it counts
/// the questions in a file.
fn ask_service(dir: &std::path::Path) -> (Asker, u16) {
    let port = free_port();
    let script = format!(
        r#"
import http.server, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        with open({count:?}, "a") as f:
            f.write(q.get("domain", ["?"])[0] + "\n")
        self.send_response(200 if q.get("domain") == ["ok.test"] else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", {port}), H).serve_forever()
"#,
        count = dir.join("asked").display().to_string(),
    );
    let child = Asker(
        Command::new("python3")
            .args(["-c", &script])
            .spawn()
            .expect("python3"),
    );
    poll(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("ask service up");
    (child, port)
}

#[test]
fn an_sni_flood_with_on_demand_tls_orders_nothing_the_ask_service_refuses() {
    let setup = LeveeSetup::new();
    let acme = Acme::start(&setup, &[("PEBBLE_VA_ALWAYS_VALID", "1")], None);
    let (_asker, ask_port) = ask_service(setup.dir.path());
    let on_demand =
        format!("[acme.on_demand]\nask = \"http://127.0.0.1:{ask_port}/ask\"\nmax_per_hour = 5\n");
    let config = acme.config(
        setup.dir.path(),
        &on_demand,
        "[[route]]\nrespond = \"on demand\"\n",
    );
    let asked_file = setup.dir.join("asked");
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    // 1,000 handshakes, each naming a new random host, and meanwhile an
    // allowed name gets its certificate at its first handshake.
    let flood = Command::new("python3")
        .arg(script())
        .args(["flood", &acme.tls.to_string(), "1000"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("flood");
    acme.wait_served("ok.test", "on demand", &root, &levee);
    let out = flood.wait_with_output().expect("flood");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
    // Only the allowed name's orders reached the CA: levee is Pebble's
    // one client, and each order it begins is logged with its name. One,
    // or more when an attempt failed and was retried (at a load of 18 the
    // count was once not 1), never one for a flooding name.
    let log = levee.stderr();
    let begun: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ordering a certificate"))
        .collect();
    assert!(!begun.is_empty(), "{log}");
    assert!(begun.iter().all(|l| l.contains("ok.test")), "{begun:?}");
    let orders = acme.pebble.orders();
    assert!(
        (1..=begun.len()).contains(&orders),
        "{orders} orders at the CA, {} begun:\n{}",
        begun.len(),
        acme.pebble.log()
    );
    assert!(acme.metric("levee_acme_on_demand_refused_total") >= 1000.0);
    // One question per name: refusals are remembered.
    let asked = std::fs::read_to_string(&asked_file).unwrap_or_default();
    assert_eq!(
        asked.lines().filter(|l| l.ends_with(".flood.test")).count(),
        1000
    );
    assert_eq!(asked.lines().filter(|l| *l == "ok.test").count(), 1);
}
