//! Postfix as the SMTP submission backend: `swaks` submits a message to
//! levee over STARTTLS (required before AUTH), levee logs in to Postfix with
//! XCLIENT and AUTH PLAIN (Postfix asks a Dovecot's SASL service), and
//! Postfix relays the message to an in-test SMTP sink. levee's EHLO before
//! AUTH offers what Postfix offers, once a login has shown it. After AUTH
//! a client cannot speak as levee (`mail/xclient.rs`).

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;
#[path = "mail/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "mail/xclient.rs"]
mod xclient;

use std::process::Command;
use std::time::Duration;

use support::*;

/// Postfix checking alice:secret with a Dovecot's SASL service, relaying
/// to an SMTP sink whose messages arrive on the receiver; `extra` is added
/// to its `main.cf`.
fn postfix_for_alice(extra: &str) -> (Dovecot, Postfix, std::sync::mpsc::Receiver<String>) {
    let (sink, delivered) = fixtures::smtp_sink();
    let sasl = free_port();
    let dovecot = Dovecot::start_with(
        &[("alice", "secret")],
        &format!("service auth {{\n  inet_listener sasl {{\n    port = {sasl}\n  }}\n}}\n"),
    );
    let postfix = Postfix::start_with(sasl, sink, extra);
    (dovecot, postfix, delivered)
}

#[test]
fn swaks_submits_through_levee_to_postfix() {
    let (dovecot, postfix, delivered) = postfix_for_alice("");
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

/// The safe extensions in an EHLO reply, one per line, sorted.
fn safe_lines(reply: &str) -> Vec<String> {
    let safe = levee_config::model::SMTP_EXTENSIONS;
    reply
        .split(['|', '\n'])
        // swaks prints "<-  250-SIZE 10240000"; smtplib's text has no code.
        .map(|l| match l.find("250") {
            Some(at) if l[at + 3..].starts_with(['-', ' ']) => l[at + 4..].trim(),
            _ => l.trim(),
        })
        .filter(|l| safe.contains(&l.split(' ').next().unwrap_or("")))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The issue: levee's EHLO before AUTH offered neither SIZE nor the
/// backend's extensions. Now it offers the safe ones Postfix offers, once a
/// login has shown them (as nginx's `smtp_capabilities`, learned), and
/// after AUTH an EHLO is Postfix's own reply, relayed.
#[test]
fn ehlo_offers_what_postfix_offers_before_auth_and_relays_it_after() {
    let (_dovecot, postfix, delivered) = postfix_for_alice("");
    let direct = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &postfix.port.to_string()])
        .args(["--ehlo", "client.example", "--quit-after", "EHLO"])
        .output()
        .expect("swaks installed (scripts/test)");
    let postfix_offers = safe_lines(&String::from_utf8_lossy(&direct.stdout));
    assert!(
        postfix_offers.iter().any(|l| l.starts_with("SIZE ")),
        "{postfix_offers:?}"
    );
    let setup = LeveeSetup::new();
    let port = setup.port;
    let users = setup.dir.join("users");
    std::fs::write(&users, format!("alice 127.0.0.1:{}\n", postfix.port)).expect("user map");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"submission\"\n[listener.mail]\nuser_map = \"{}\"\nforward_client_address = true\n",
        users.display(),
    );
    let _levee = setup.start(&config);
    let swaks = |extra: &[&str]| {
        let out = Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port", &port.to_string()])
            .args(["--ehlo", "client.example", "--from", "alice@example.org"])
            .args(["--to", "bob@example.org"])
            .args(extra)
            .output()
            .expect("swaks installed (scripts/test)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Before any login levee knows no backend: its conservative pair.
    let first = swaks(&["--quit-after", "EHLO"]);
    assert_eq!(safe_lines(&first), ["8BITMIME", "PIPELINING"], "{first}");
    // A submission logs in to Postfix...
    let sent = swaks(&[
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        "secret",
        "--header",
        "Subject: taught levee",
    ]);
    assert!(sent.contains("235 "), "{sent}");
    let message = delivered
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("nothing relayed; postfix:\n{}", postfix.log()));
    assert!(message.contains("Subject: taught levee"), "{message}");
    // ...and from then on every client hears, before AUTH, what Postfix
    // offers among the extensions levee can offer for it: SIZE with
    // Postfix's limit, SMTPUTF8, CHUNKING; never its VRFY, ETRN or XCLIENT.
    let second = swaks(&["--quit-after", "EHLO"]);
    assert_eq!(safe_lines(&second), postfix_offers, "{second}");
    for never in ["VRFY", "ETRN", "XCLIENT"] {
        assert!(!second.contains(never), "{second}");
    }
    assert!(second.contains("250 AUTH PLAIN LOGIN"), "{second}");
    // After AUTH the session is Postfix's: an EHLO gets its reply.
    let r = fixtures::client("ehlo_after_auth", port);
    assert!(r["before"].starts_with("levee"), "{r:?}");
    assert_eq!(r["after_code"], "250", "{r:?}");
    assert!(r["after"].starts_with("postfix-test.example"), "{r:?}");
    assert_eq!(safe_lines(&r["after"]), postfix_offers, "{r:?}");
}
