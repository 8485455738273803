//! The mail front end against a faulty `auth_http` service: a fake one
//! written here (a thread with a canned reply), since nginx cannot be made
//! to answer wrongly on purpose. Each fault must end in a clear answer to
//! the client, within the session's bounds, and a log line that names the
//! auth service.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use support::*;

/// A fake auth service on a free port: reads each request head, answers
/// `reply` (nothing, if empty) and holds the connection open.
fn fake_auth(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake auth");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream, reply));
        }
    });
    port
}

fn answer(mut stream: TcpStream, reply: &[u8]) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.write_all(reply);
    // Whatever it said (or if nothing), holds the connection until levee
    // drops it.
    let _ = stream.read(&mut buf);
}

/// levee with one IMAP listener asking the auth service on `auth`.
fn imap_levee(auth: u16, extra: &str) -> Levee {
    let setup = LeveeSetup::new();
    let config = format!(
        "pid_file = \"{pid}\"\n\n[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"imap\"\n\
         [listener.mail]\nauth_http = \"http://127.0.0.1:{auth}/auth\"\nauth_fail_delay = \"0s\"\n{extra}",
        pid = setup.pid_file().display(),
        port = setup.port,
    );
    setup.start(&config)
}

/// Logs in as alice; what levee says until its reply to the LOGIN (or,
/// with `to_close`, until it closes). A session that says nothing more for
/// a minute fails the test.
fn login(port: u16, to_close: bool) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(b"a LOGIN alice secret\r\n").expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if !to_close && text.contains("\r\na ") && text.ends_with("\r\n") {
            return text;
        }
        match s.read(&mut buf) {
            Ok(0) => return text,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("session still open: {e}; got {text:?}"),
        }
    }
}

#[test]
fn an_auth_wait_of_years_ends_at_the_preauth_deadline() {
    let auth = fake_auth(
        b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 4000000000\r\n\r\n",
    );
    let levee = imap_levee(auth, "preauth_timeout = \"2s\"\n");
    let got = login(levee.port, true);
    assert!(
        got.contains("a NO [AUTHENTICATIONFAILED] Invalid login or password\r\n"),
        "{got:?}"
    );
    assert!(
        got.ends_with("* BYE Autologout; idle for too long\r\n"),
        "{got:?}"
    );
}

#[test]
fn a_faulty_auth_service_is_unavailable_and_named_in_the_log() {
    let huge: &'static [u8] = format!("HTTP/1.0 200 OK\r\nX-Pad: {}\r\n\r\n", "a".repeat(100_000))
        .into_bytes()
        .leak();
    for (fault, reply, reason) in [
        ("silent", &b""[..], "timed out"),
        ("garbage", b"\x00\xffnot http\r\n\r\n", "malformed reply"),
        ("huge head", huge, "too large"),
        (
            "OK without Auth-Server",
            b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n\r\n",
            "without a valid Auth-Server",
        ),
        (
            "a host name for Auth-Server",
            b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: imap.invalid\r\nAuth-Port: 143\r\n\r\n",
            "without a valid Auth-Server",
        ),
    ] {
        let auth = fake_auth(reply);
        let levee = imap_levee(auth, "auth_http_timeout = \"1s\"\n");
        let got = login(levee.port, false);
        assert!(got.contains("a NO [UNAVAILABLE] "), "{fault}: {got:?}");
        let named = format!("auth service 127.0.0.1:{auth}: ");
        let line = poll(Duration::from_secs(10), || {
            levee
                .stderr()
                .lines()
                .find(|l| l.contains("mail auth unavailable") && l.contains(&named))
                .map(str::to_owned)
        });
        let line = line
            .unwrap_or_else(|| panic!("{fault}: no log line naming {named}: {}", levee.stderr()));
        assert!(line.contains(reason), "{fault}: {line}");
    }
}

/// The issue: a kept-alive reply whose body never came was thrown away
/// at the timeout, verdict and all: a wrong password was answered as
/// "unavailable" (and not counted as a failure).
#[test]
fn a_verdict_stands_when_the_body_promised_never_comes() {
    let auth = fake_auth(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 100\r\n\
          Auth-Status: Invalid login or password\r\n\r\n",
    );
    let extra = "auth_http_keepalive = 2\nauth_http_timeout = \"1s\"\n";
    let levee = imap_levee(auth, extra);
    let got = login(levee.port, false);
    assert!(
        got.contains("a NO [AUTHENTICATIONFAILED] Invalid login or password\r\n"),
        "{got:?}"
    );
}

/// AUTH before EHLO (RFC 4954 §4) is refused as Postfix refuses it, and the
/// auth service is not asked with an empty HELO name; after EHLO the same
/// AUTH reaches the auth service (whose refusal is the 535).
#[test]
fn smtp_auth_before_ehlo_is_a_503() {
    let auth = fake_auth(
        b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 0\r\n\r\n",
    );
    let setup = LeveeSetup::new();
    let config = format!(
        "pid_file = \"{pid}\"\n\n[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"submission\"\n\
         [listener.mail]\nauth_http = \"http://127.0.0.1:{auth}/auth\"\nauth_fail_delay = \"0s\"\n",
        pid = setup.pid_file().display(),
        port = setup.port,
    );
    let levee = setup.start(&config);
    let mut s = TcpStream::connect(("127.0.0.1", levee.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut said = String::new();
    let mut reply = |s: &mut TcpStream, send: &[u8], code: &str| {
        s.write_all(send).expect("send");
        let mut buf = [0u8; 4096];
        // A multi-line reply ends with `CODE ` at the start of its last line.
        while !said.lines().any(|l| l.starts_with(&format!("{code} "))) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => panic!("closed before {code}: {said:?}"),
                Ok(n) => said.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        std::mem::take(&mut said)
    };
    reply(&mut s, b"", "220");
    let early = reply(&mut s, b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "503");
    assert!(early.contains("503 5.5.1"), "{early:?}");
    reply(&mut s, b"EHLO client.test\r\n", "250");
    let later = reply(&mut s, b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "535");
    assert!(later.starts_with("535 "), "{later:?}");
}
