//! What the mail tests share: the nginx `auth_http` service, the standard
//! environment (two Dovecots, levee with IMAP, POP3 and submission
//! listeners), the Python clients, a raw IMAP client and an SMTP sink.
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// nginx as an `auth_http` service: alice lives on the first Dovecot, bob
/// on the second, ghost on a port nothing listens on; a wrong password is
/// refused with nginx's usual text.
pub fn auth_service(alice: u16, bob: u16, down: u16) -> Nginx {
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
    Nginx::start_http(&maps, AUTH_LOCATION)
}

/// The `auth_http` answer, from the `$mail_status` and `$mail_port` maps.
pub const AUTH_LOCATION: &str = r#"
        location = /auth {
            add_header Auth-Status $mail_status;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port $mail_port;
            add_header Auth-Wait 0;
            return 200 "";
        }
"#;

/// Dovecot serving `users` over IMAP and POP3, and submission on
/// `submission`, relaying what it accepts to the SMTP sink on port `sink`.
pub fn dovecot_with_submission(users: &[(&str, &str)], submission: u16, sink: u16) -> Dovecot {
    let dovecot = Dovecot::start_with(
        users,
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
    dovecot
}

pub struct Env {
    pub _alice: Dovecot,
    pub _bob: Dovecot,
    pub _auth: [Nginx; 2],
    pub levee: Levee,
    pub imap: u16,
    pub pop3: u16,
    pub submission: u16,
}

pub fn start_mail() -> Env {
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
pub fn client(case: &str, port: u16) -> HashMap<String, String> {
    client_on(case, &[port])
}

/// Like [`client`], for a case that takes several ports.
pub fn client_on(case: &str, ports: &[u16]) -> HashMap<String, String> {
    let args: Vec<String> = ports.iter().map(u16::to_string).collect();
    run_script("clients.py", case, &args)
}

/// Runs `tests/mail/SCRIPT CASE ARGS…`; its `key=value` output lines.
pub fn run_script(script: &str, case: &str, args: &[String]) -> HashMap<String, String> {
    script_output(script, case, args)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What `tests/mail/SCRIPT CASE ARGS…` prints; it must succeed.
pub fn script_output(script: &str, case: &str, args: &[String]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mail")
        .join(script);
    let output = Command::new("python3")
        .arg(path)
        .arg(case)
        .args(args)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub fn ms(v: &str) -> u64 {
    v.parse().expect("milliseconds")
}

/// Sends `commands` on a new IMAP connection to `port` (after the greeting)
/// and reads until the last command's tagged reply or the connection closes.
/// A refusal under `max_connections_per_ip` while earlier sessions are
/// still closing is retried (with no commands, it is what the caller wants).
pub fn imap(port: u16, commands: &[&str]) -> String {
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

/// Sets a 10 s read timeout on `s` and reads the server's greeting line.
pub fn read_greeting(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"\r\n") {
        let n = s.read(&mut buf).expect("greeting");
        assert!(n > 0, "closed before greeting");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Everything `s` sends until it closes (or its read timeout passes).
pub fn read_to_close(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while let Ok(n) = s.read(&mut b) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

pub fn imap_on(mut s: TcpStream, commands: &[&str]) -> String {
    let mut got = read_greeting(&mut s);
    let mut buf = [0u8; 4096];
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

/// A session of alice's through levee on `port`, logged in with INBOX selected.
pub fn alice_selected(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    read_greeting(&mut s);
    s.write_all(b"a LOGIN alice secret\r\ns SELECT INBOX\r\n")
        .expect("login");
    let mut seen = Vec::new();
    let mut b = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("s OK") {
        let n = s.read(&mut b).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&b[..n]);
    }
    s
}

/// bcrypt of "hunter2".
pub const HUNTER2: &str = "$2b$04$WDCfrgBv9Slipl8I8p8zEu2P.wN38MQ7EpFQ.u8vA0txdYznjk5d.";

/// Where Dovecot's submission service relays mail: an in-test SMTP sink,
/// since the test only needs to see the message arrive (the proxy under
/// test talks to Dovecot, a real server). Sends each message's data.
pub fn smtp_sink() -> (u16, std::sync::mpsc::Receiver<String>) {
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
