//! The mail front end against real peers: Dovecot instances as IMAP, POP3
//! and submission backends (two of them, holding different users, to prove
//! routing), nginx as the `auth_http` service, and Python's
//! imaplib/poplib/smtplib as clients (`mail/clients.py`).

mod support;

#[path = "mail/fixtures.rs"]
mod fixtures;
#[path = "mail/lockout.rs"]
mod lockout;
#[path = "mail/pop3_smtp.rs"]
mod pop3_smtp;
#[path = "mail/routing.rs"]
mod routing;

use std::net::TcpStream;
use std::time::Duration;

use fixtures::*;
use support::*;

#[test]
fn imap_logins_route_and_refuse() {
    let env = start_mail();
    let r = client("imap_logins", env.imap);
    assert!(
        r["greeting"].starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{r:?}"
    );
    assert!(
        !r["greeting"].contains("STARTTLS"),
        "no STARTTLS without TLS"
    );
    // The backend's tagged OK is relayed. imaplib asked CAPABILITY before
    // logging in, so, as Dovecot does for such clients, the post-login
    // capabilities came in an untagged CAPABILITY (levee asked it too).
    assert_eq!(r["quoted"], "OK Logged in", "{r:?}");
    assert!(r["post_login_caps"].contains(" MOVE "), "{r:?}");
    assert_eq!(r["quoted_subject"], "Subject: hello alice");
    assert_eq!(r["literal"], "OK");
    // bob lives on the other Dovecot.
    assert_eq!(r["literal_subject"], "Subject: hello bob");
    assert_eq!(r["authenticate"], "OK");
    assert_eq!(r["authenticate_subject"], "Subject: hello alice");
    assert_eq!(r["sasl_ir"], "True");
    assert!(
        r["bad_password"].contains("[AUTHENTICATIONFAILED] Invalid login or password"),
        "{r:?}"
    );
    assert!(r["down"].contains("[UNAVAILABLE]"), "{r:?}");
    // Accepted by the auth service, refused by Dovecot: one response code, Dovecot's text.
    let backend_no = &r["backend_no"];
    assert_eq!(
        backend_no.matches("[AUTHENTICATIONFAILED]").count(),
        1,
        "{r:?}"
    );
    assert!(backend_no.contains("Authentication failed"), "{r:?}");
    // Refused connect: answered at once, not after the 3 s connect timeout.
    assert!(ms(&r["down_ms"]) < 2000, "{r:?}");
    // Pooled: the auth requests shared connections, which nginx kept open.
    let asked = env._auth[0].wait_entries("/auth", 7);
    let mut conns: Vec<String> = asked.iter().map(|e| e.get("conn")).collect();
    conns.sort();
    conns.dedup();
    assert!(conns.len() < asked.len(), "no auth connection was reused");
    assert!(asked.iter().all(|e| e.get("connection") == "keep-alive"));
    let log = env.levee.stdout() + &env.levee.stderr();
    assert!(
        !log.contains("secret") && !log.contains("hunter2"),
        "a password was logged"
    );
}

#[test]
fn imap_pipelining_literals_and_limits() {
    let env = start_mail();
    let r = client_on("no_tls_yet", &[env.imap, env.pop3, env.submission]);
    assert_eq!(r["imap"], "True", "STARTTLS offered or accepted: {r:?}");
    assert_eq!(r["pop3"], "True", "STLS offered or accepted: {r:?}");
    assert_eq!(r["smtp"], "True", "STARTTLS offered or accepted: {r:?}");
    let r = client("imap_raw", env.imap);
    assert_eq!(r["pipelined"], "True", "{r:?}");
    assert_eq!(r["split"], "True", "{r:?}");
    assert_eq!(r["injection"], "True", "{r:?}");
    assert_eq!(r["errors"], "True", "{r:?}");
    assert_eq!(r["timeout"], "True", "{r:?}");
    assert!(
        ms(&r["timeout_ms"]) >= 1500,
        "closed before the pre-auth timeout: {r:?}"
    );
}

#[test]
fn curl_fetches_over_imap_and_pop3() {
    let env = start_mail();
    // curl logs in with AUTHENTICATE PLAIN and SASL-IR (both offered).
    let imap = curl(&[
        "-s",
        "-u",
        "bob:hunter2",
        &format!("imap://127.0.0.1:{}/INBOX;MAILINDEX=1", env.imap),
    ]);
    let text = String::from_utf8_lossy(&imap.stdout);
    assert!(imap.status.success(), "curl imap: {imap:?}");
    assert!(text.contains("Subject: hello bob"), "{text}");
    let pop3 = curl(&[
        "-s",
        "-u",
        "alice:secret",
        &format!("pop3://127.0.0.1:{}/1", env.pop3),
    ]);
    let text = String::from_utf8_lossy(&pop3.stdout);
    assert!(pop3.status.success(), "curl pop3: {pop3:?}");
    assert!(text.contains("Subject: hello alice"), "{text}");
    let refused = curl(&[
        "-s",
        "-u",
        "alice:nope",
        &format!("imap://127.0.0.1:{}/INBOX;MAILINDEX=1", env.imap),
    ]);
    // 67: "the user name, password, or similar was not accepted".
    assert_eq!(refused.status.code(), Some(67), "{refused:?}");
}

#[test]
fn stop_says_bye_to_sessions_before_login() {
    let setup = LeveeSetup::new();
    let port = setup.port;
    let users = setup.dir.join("users");
    std::fs::write(&users, "alice 127.0.0.1:1\n").expect("write user map");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"{}\"\n",
        users.display()
    );
    let mut levee = setup.start(&config);
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    read_greeting(&mut client);
    levee.stop();
    assert_eq!(read_to_close(&mut client), "* BYE Server shutting down\r\n");
    assert!(levee.wait_exit(Duration::from_secs(10)).success());
}
