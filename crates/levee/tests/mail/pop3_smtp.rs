//! POP3 and SMTP submission through levee: logins, refusals, and a message
//! sent through Dovecot's submission service.

use std::time::Duration;

use super::fixtures::*;
use crate::support::*;

#[test]
fn pop3_and_submission() {
    let env = start_mail();
    let r = client("pop3", env.pop3);
    assert!(
        r["capa"].contains("RESP-CODES") && r["capa"].contains("AUTH-RESP-CODE"),
        "{r:?}"
    );
    assert!(r["pass"].starts_with("+OK"), "{r:?}");
    assert!(r["retr"].contains("Subject: hello alice"), "{r:?}");
    assert!(r["bad_password"].contains("-ERR [AUTH]"), "{r:?}");
    assert!(r["down"].contains("-ERR [SYS/TEMP]"), "{r:?}");
    assert_eq!(r["long_line"], "True", "{r:?}");

    let r = client("submission", env.submission);
    assert!(
        r["ehlo"].starts_with("250") && r["ehlo"].contains("auth"),
        "{r:?}"
    );
    assert!(r["mail"].starts_with("530 5.7.0"), "{r:?}");
    assert_eq!(r["bad_password"], "535", "{r:?}");
    assert_eq!(r["down"], "454", "{r:?}");
}

#[test]
fn submission_relays_a_message_through_dovecot() {
    let (sink, delivered) = smtp_sink();
    let submission = free_port();
    let dovecot = dovecot_with_submission(&[("alice", "secret")], submission, sink);
    let setup = LeveeSetup::new();
    let port = setup.port;
    let users = setup.dir.join("users");
    std::fs::write(&users, format!("alice 127.0.0.1:{submission}\n")).expect("write user map");
    let config = format!(
        r#"[[listener]]
address = "127.0.0.1:{port}"
protocol = "submission"
[listener.mail]
user_map = "{users}"
forward_client_address = true
"#,
        users = users.display(),
    );
    let _levee = setup.start(&config);
    let r = client("submission_send", port);
    assert_eq!(r["refused"], "0", "{r:?}");
    let message = delivered
        .recv_timeout(Duration::from_secs(10))
        .expect("the message reached the relay host");
    assert!(
        message.contains("Subject: relayed through levee"),
        "{message}"
    );
    // Dovecot saw the client's port through XCLIENT, not levee's.
    let log = dovecot.log();
    assert!(
        log.contains(&format!("rport={}", r["client_port"])),
        "client port not forwarded:\n{log}"
    );
}
