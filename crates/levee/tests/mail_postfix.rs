//! Postfix as the SMTP submission backend: `swaks` submits a message to
//! levee over STARTTLS (required before AUTH), levee logs in to Postfix with
//! XCLIENT and AUTH PLAIN (Postfix asks a Dovecot's SASL service), and
//! Postfix relays the message to an in-test SMTP sink.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;
#[path = "mail/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::process::Command;
use std::time::Duration;

use support::*;

#[test]
fn swaks_submits_through_levee_to_postfix() {
    let (sink, delivered) = fixtures::smtp_sink();
    let sasl = free_port();
    let dovecot = Dovecot::start_with(
        &[("alice", "secret")],
        &format!("service auth {{\n  inet_listener sasl {{\n    port = {sasl}\n  }}\n}}\n"),
    );
    let postfix = Postfix::start(sasl, sink);
    let setup = common::setup();
    let users = setup.dir.join("users");
    std::fs::write(&users, format!("alice 127.0.0.1:{}\n", postfix.port)).expect("user map");
    let config = format!(
        r#"[[listener]]
address = "127.0.0.1:{port}"
protocol = "submission"
[[listener.tls.certs]]
cert = "a.pem"
key = "a.key"
[listener.mail]
user_map = "{users}"
forward_client_address = true
starttls = "required"
"#,
        port = setup.port,
        users = users.display(),
    );
    let levee = setup.start(&config);
    let swaks = |extra: &[&str]| {
        let out = Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port", &levee.port.to_string()])
            .args(["--ehlo", "client.example", "--from", "alice@example.org"])
            .args(["--to", "bob@example.org", "--auth", "PLAIN"])
            .args(["--auth-user", "alice", "--auth-password", "secret"])
            .args(["--header", "Subject: swaks through levee to postfix"])
            .args(extra)
            .output()
            .expect("swaks installed (scripts/test)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    // Without TLS the AUTH is refused (swaks may not even try: no AUTH offered).
    let (ok, text) = swaks(&["--auth-optional-strict"]);
    assert!(!ok || !text.contains("235 "), "{text}");
    let (ok, text) = swaks(&["--tls"]);
    assert!(
        ok,
        "{text}\npostfix:\n{}\ndovecot:\n{}",
        postfix.log(),
        dovecot.log()
    );
    assert!(text.contains("220 2.0.0 Ready to start TLS"), "{text}");
    let message = delivered
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("nothing relayed; postfix:\n{}", postfix.log()));
    assert!(
        message.contains("Subject: swaks through levee to postfix"),
        "{message}"
    );
    let log = postfix.log();
    assert!(log.contains("sasl_username=alice"), "{log}");
    // XCLIENT: the message is logged for the client's port, not levee's.
    let port_after = |marker: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.split_once(marker))
            .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect())
            .collect()
    };
    let client = port_after("client=localhost[127.0.0.1]:");
    let connected = port_after(": connect from localhost[127.0.0.1]:");
    assert!(
        client.len() == 1 && !connected.contains(&client[0]),
        "XCLIENT not applied:\n{log}"
    );
}
