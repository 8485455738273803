//! The mail front end against real peers: Dovecot instances as IMAP, POP3
//! and submission backends (two of them, holding different users, to prove
//! routing), nginx as the `auth_http` service, and Python's
//! imaplib/poplib/smtplib as clients (`mail/clients.py`).

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// nginx as an `auth_http` service: alice lives on the first Dovecot, bob
/// on the second, ghost on a port nothing listens on; a wrong password is
/// refused with nginx's usual text.
fn auth_service(alice: u16, bob: u16, down: u16) -> Nginx {
    let maps = format!(
        r#"
    map $http_auth_user $mail_port {{
        alice {alice};
        bob {bob};
        default {down};
    }}
    map "$http_auth_user:$http_auth_pass" $mail_status {{
        "alice:secret" OK;
        "bob:hunter2" OK;
        "ghost:x" OK;
        "alice:backend-says-no" OK;
        default "Invalid login or password";
    }}
"#
    );
    let location = r#"
        location = /auth {
            add_header Auth-Status $mail_status;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port $mail_port;
            add_header Auth-Wait 0;
            return 200 "";
        }
"#;
    Nginx::start_http(&maps, location)
}

struct Env {
    _alice: Dovecot,
    _bob: Dovecot,
    _auth: [Nginx; 2],
    levee: Levee,
    imap: u16,
    pop3: u16,
    submission: u16,
}

fn start() -> Env {
    let alice = Dovecot::start(&[("alice", "secret")]);
    let bob = Dovecot::start(&[("bob", "hunter2")]);
    let down = free_port();
    let imap_auth = auth_service(alice.imap_port, bob.imap_port, down);
    let setup = LeveeSetup::new();
    let imap = setup.port;
    let (pop3, submission) = (free_port(), free_port());
    // POP3 and submission ask the same service with the POP3 ports.
    let pop3_auth = auth_service(alice.pop3_port, bob.pop3_port, down);
    // The IMAP listener pools its auth connections; POP3 and submission
    // send nginx's exact one-request-per-connection form.
    let mail = |auth: &Nginx, keepalive: u32| {
        format!(
            "auth_http = \"http://127.0.0.1:{}/auth\"\nauth_http_keepalive = {keepalive}\nauth_fail_delay = \"0s\"\npreauth_timeout = \"2s\"\n",
            auth.port()
        )
    };
    let config = format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{imap}"
protocol = "imap"
[listener.mail]
{imap_mail}
[[listener]]
address = "127.0.0.1:{pop3}"
protocol = "pop3"
[listener.mail]
{pop3_mail}
[[listener]]
address = "127.0.0.1:{submission}"
protocol = "submission"
[listener.mail]
{pop3_mail}
"#,
        pid = setup.pid_file().display(),
        imap_mail = mail(&imap_auth, 4),
        pop3_mail = mail(&pop3_auth, 0),
    );
    let levee = setup.start(&config);
    Env {
        _alice: alice,
        _bob: bob,
        _auth: [imap_auth, pop3_auth],
        levee,
        imap,
        pop3,
        submission,
    }
}

/// Runs a case of `mail/clients.py` against `port`; its `key=value` lines.
fn client(case: &str, port: u16) -> HashMap<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/clients.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(case)
        .arg(port.to_string())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "clients.py {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn ms(v: &str) -> u64 {
    v.parse().expect("milliseconds")
}

#[test]
fn imap_logins_route_and_refuse() {
    let env = start();
    let r = client("imap_logins", env.imap);
    assert!(
        r["greeting"].starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{r:?}"
    );
    assert!(
        !r["greeting"].contains("STARTTLS"),
        "no STARTTLS without TLS"
    );
    // The backend's tagged OK (with its post-login capabilities) is relayed.
    assert!(r["quoted"].starts_with("OK [CAPABILITY"), "{r:?}");
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
    let env = start();
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
fn pop3_and_submission() {
    let env = start();
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

/// Sends `commands` on a new IMAP connection to `port` (after the greeting)
/// and reads until the last command's tagged reply or the connection closes.
/// A refusal under `max_connections_per_ip` while earlier sessions are
/// still closing is retried (with no commands, it is what the caller wants).
fn imap(port: u16, commands: &[&str]) -> String {
    let connect = || TcpStream::connect(("127.0.0.1", port)).expect("connect");
    if commands.is_empty() {
        return imap_on(connect(), commands);
    }
    poll(Duration::from_secs(10), || {
        let got = imap_on(connect(), commands);
        (!got.starts_with("* BYE [UNAVAILABLE] Too many connections")).then_some(got)
    })
    .expect("admitted within 10 s")
}

fn imap_on(mut s: TcpStream, commands: &[&str]) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"\r\n") {
        let n = s.read(&mut buf).expect("greeting");
        assert!(n > 0, "closed before greeting");
        got.extend_from_slice(&buf[..n]);
    }
    let last_tag = commands
        .last()
        .and_then(|c| c.split(' ').next())
        .map(|t| format!("\n{t} "));
    for c in commands {
        s.write_all(format!("{c}\r\n").as_bytes()).expect("send");
    }
    let text = |got: &[u8]| String::from_utf8_lossy(got).into_owned();
    loop {
        let t = text(&got);
        // Done once the last tag's reply line is complete.
        if let Some(tag) = &last_tag
            && let Some(at) = t.find(tag.as_str())
            && t[at + 1..].contains("\r\n")
        {
            return t;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return t,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// bcrypt of "hunter2".
const HUNTER2: &str = "$2b$04$WDCfrgBv9Slipl8I8p8zEu2P.wN38MQ7EpFQ.u8vA0txdYznjk5d.";

#[test]
fn user_map_routes_checks_hashes_and_reloads() {
    let one = Dovecot::start(&[("alice", "secret"), ("bob", "hunter2")]);
    let two = Dovecot::start(&[("alice", "secret"), ("bob", "hunter2")]);
    let setup = LeveeSetup::new();
    let port = setup.port;
    let admin = free_port();
    let users = setup.dir.join("users");
    std::fs::write(
        &users,
        format!(
            "alice 127.0.0.1:{}\nbob 127.0.0.1:{} {HUNTER2}\n",
            one.imap_port, one.imap_port
        ),
    )
    .expect("write user map");
    let config = format!(
        r#"pid_file = "{pid}"
[[listener]]
address = "127.0.0.1:{port}"
protocol = "imap"
max_connections_per_ip = 2
[listener.mail]
user_map = "{users}"
auth_fail_delay = "0s"
max_sessions_per_user = 1
max_auth_failures = 4

[admin]
address = "127.0.0.1:{admin}"
"#,
        pid = setup.pid_file().display(),
        users = users.display(),
    );
    let levee = setup.start(&config);
    let fetch = "f FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-INSTANCE)])";
    let got = imap(port, &["a LOGIN alice secret", "s SELECT INBOX", fetch]);
    assert!(
        got.contains(&format!("X-Instance: {}", one.imap_port)),
        "{got}"
    );
    // The hash is checked by levee: a wrong password never reaches Dovecot.
    let got = imap(port, &["a LOGIN bob wrong"]);
    assert!(got.contains("a NO [AUTHENTICATIONFAILED]"), "{got}");
    assert!(!one.log().contains("bob"), "levee refused bob itself");
    let got = imap(port, &["a LOGIN bob hunter2"]);
    assert!(got.contains("a OK"), "{got}");
    let got = imap(port, &["a LOGIN carol x"]);
    assert!(got.contains("a NO [AUTHENTICATIONFAILED]"), "{got}");

    // alice moves to the second Dovecot; reload reads the map again.
    std::fs::write(&users, format!("alice 127.0.0.1:{}\n", two.imap_port)).expect("rewrite");
    levee.reload();
    let moved = poll(Duration::from_secs(10), || {
        let got = imap(port, &["a LOGIN alice secret", "s SELECT INBOX", fetch]);
        got.contains(&format!("X-Instance: {}", two.imap_port))
            .then_some(())
    });
    assert!(moved.is_some(), "alice was not routed to the new backend");

    // A broken map refuses the reload; the running one stays.
    std::fs::write(&users, "alice\n").expect("break");
    levee.reload();
    assert!(
        levee.wait_stderr("reload refused", Duration::from_secs(10))
            || levee.stdout().contains("reload refused")
    );
    let got = imap(port, &["a LOGIN alice secret"]);
    assert!(got.contains("a OK"), "{got}");

    // One session per user: a second login of alice is refused while the
    // first lasts. Her earlier sessions may still be closing: retry until in.
    let first = poll(Duration::from_secs(10), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"a LOGIN alice secret\r\n").expect("login");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut seen = Vec::new();
        let mut b = [0u8; 512];
        loop {
            let text = String::from_utf8_lossy(&seen).into_owned();
            if text.contains("a OK") {
                return Some(s);
            }
            if text.contains("a NO") {
                return None;
            }
            match s.read(&mut b) {
                Ok(n) if n > 0 => seen.extend_from_slice(&b[..n]),
                _ => return None,
            }
        }
    })
    .expect("alice logs in once her old sessions are gone");
    let got = imap(port, &["b LOGIN alice secret"]);
    assert!(got.contains("b NO [LIMIT]"), "{got}");
    drop(first);

    // Two failures so far from this IP; two more reach max_auth_failures,
    // after which even a right password is refused without asking.
    for _ in 0..2 {
        let got = imap(port, &["a LOGIN mallory guess"]);
        assert!(got.contains("a NO [AUTHENTICATIONFAILED]"), "{got}");
    }
    let got = imap(port, &["a LOGIN alice secret"]);
    assert!(got.contains("a NO [AUTHENTICATIONFAILED]"), "{got}");
    assert!(
        levee.wait_stderr("too many failures", Duration::from_secs(5))
            || levee.stdout().contains("too many failures")
    );
    let logins = |result: &str| {
        metric(
            admin,
            &format!("levee_mail_logins_total{{protocol=\"imap\",result=\"{result}\"}}"),
        )
        .unwrap_or(-1.0)
    };
    // bob, carol and mallory twice were refused; alice once blocked, and at
    // least once over her cap (more if an old session was still closing).
    assert_eq!(logins("refused"), 4.0);
    assert_eq!(logins("blocked"), 1.0);
    assert!(logins("too_many") >= 1.0);
    assert!(logins("ok") >= 4.0);
    let proxying = metric(
        admin,
        "levee_mail_sessions{protocol=\"imap\",stage=\"proxying\"}",
    );
    assert!(proxying.is_some_and(|n| n >= 0.0), "{proxying:?}");

    // The listener's connection limit applies, answered in IMAP. Earlier
    // sessions may still be closing, so wait until two are greeted.
    let greeted = |s: &mut TcpStream| {
        let mut b = [0u8; 64];
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        matches!(s.read(&mut b), Ok(n) if b[..n].starts_with(b"* OK"))
    };
    let _held = poll(Duration::from_secs(10), || {
        let mut two: Vec<TcpStream> = (0..2)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        two.iter_mut().all(greeted).then_some(two)
    })
    .expect("two sessions admitted");
    let got = imap(port, &[]);
    assert!(got.starts_with("* BYE [UNAVAILABLE]"), "{got}");
}

#[test]
fn master_user_and_client_address_reach_dovecot() {
    let dir = TempDir::new("master");
    let master = dir.join("master");
    std::fs::write(&master, "levee:{PLAIN}m4ster\n").expect("write master passdb");
    // bob's Dovecot password is not the one he gives levee: only the master login works.
    let dovecot = Dovecot::start_with(
        &[("bob", "not-hunter2")],
        &format!(
            r#"
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  args = {}
  master = yes
}}
login_trusted_networks = 127.0.0.0/8
login_log_format_elements = user=<%u> rip=%r rport=%b
"#,
            master.display()
        ),
    );
    let setup = LeveeSetup::new();
    let port = setup.port;
    let users = setup.dir.join("users");
    std::fs::write(
        &users,
        format!("bob 127.0.0.1:{} {HUNTER2}\n", dovecot.imap_port),
    )
    .expect("write user map");
    let config = format!(
        r#"[[listener]]
address = "127.0.0.1:{port}"
protocol = "imap"
[listener.mail]
user_map = "{users}"
auth_fail_delay = "0s"
forward_client_address = true
master_user = "levee"
master_password = "m4ster"
"#,
        users = users.display(),
    );
    let _levee = setup.start(&config);
    let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let client_port = client.local_addr().expect("local addr").port();
    let got = imap_on(client, &["a LOGIN bob hunter2", "s SELECT INBOX"]);
    assert!(got.contains("a OK") && got.contains("s OK"), "{got}");
    let logged = poll(Duration::from_secs(5), || {
        let log = dovecot.log();
        log.contains("user=<bob>").then_some(log)
    })
    .expect("Dovecot logged the login");
    // Dovecot saw the client's own port (from ID), not levee's.
    assert!(
        logged.contains(&format!("rport={client_port}")),
        "client port {client_port} not forwarded:\n{logged}"
    );
}

/// Where Dovecot's submission service relays mail: an in-test SMTP sink,
/// since the test only needs to see the message arrive (the proxy under
/// test talks to Dovecot, a real server). Sends each message's data.
fn smtp_sink() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind sink");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut w = stream.try_clone().expect("clone");
                let mut r = std::io::BufReader::new(stream);
                let _ = w.write_all(b"220 sink ESMTP\r\n");
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "DATA" => {
                            let _ = w.write_all(b"354 go\r\n");
                            let mut data = String::new();
                            let mut l = String::new();
                            while r.read_line(&mut l).unwrap_or(0) > 0 && l != ".\r\n" {
                                data.push_str(&l);
                                l.clear();
                            }
                            let _ = tx.send(data);
                            b"250 2.0.0 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply);
                    line.clear();
                }
            });
        }
    });
    (port, rx)
}

#[test]
fn submission_relays_a_message_through_dovecot() {
    let (sink, delivered) = smtp_sink();
    let submission = free_port();
    let dovecot = Dovecot::start_with(
        &[("alice", "secret")],
        &format!(
            r#"
protocols = imap pop3 submission
hostname = levee-test.example
submission_relay_host = 127.0.0.1
submission_relay_port = {sink}
submission_relay_trusted = yes
login_trusted_networks = 127.0.0.0/8
login_log_format_elements = user=<%u> rip=%r rport=%b
service submission-login {{
  inet_listener submission {{
    port = {submission}
  }}
}}
"#
        ),
    );
    let up = poll(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", submission)).ok()
    });
    assert!(
        up.is_some(),
        "Dovecot submission did not start:\n{}",
        dovecot.log()
    );
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

#[test]
fn curl_fetches_over_imap_and_pop3() {
    let env = start();
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
