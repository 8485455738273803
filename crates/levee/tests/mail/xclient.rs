//! After AUTH a submission client cannot speak as levee: Postfix trusts
//! levee's address for XCLIENT (as `forward_client_address` needs), so a
//! client's own `XCLIENT LOGIN=bob` relayed raw made Postfix take alice for
//! bob. levee now reads the client's commands at their boundaries and
//! answers XCLIENT, XFORWARD, STARTTLS and a second AUTH itself, in their
//! place among Postfix's replies, and never reads message content or a
//! BDAT chunk as commands.
//!
//! The client is a raw socket: no SMTP library sends a lower-case,
//! tab-separated XCLIENT, a bare-LF end of data or a BDAT with a tab.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

/// Postfix writes who logged in into the Received header, and trusts
/// levee's address for XFORWARD too, so a relayed XFORWARD would be taken.
const TRUSTING: &str =
    "smtpd_sasl_authenticated_header = yes\nsmtpd_authorized_xforward_hosts = 127.0.0.0/8\n";

/// alice's base64 `AUTH PLAIN` response ("\0alice\0secret").
const ALICE: &str = "AGFsaWNlAHNlY3JldA==";

const REFUSED: &str = "550 5.7.0 Command not permitted\r\n";

/// A submission client that sends bytes exactly as written.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connected to levee on `port`, logged in as alice.
    fn alice(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut c = Raw {
            stream,
            buf: Vec::new(),
        };
        assert!(c.reply().starts_with("220 "));
        assert!(c.ask("EHLO client.example\r\n").starts_with("250"));
        let auth = c.ask(&format!("AUTH PLAIN {ALICE}\r\n"));
        assert!(auth.starts_with("235 "), "{auth}");
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends `line` and reads one reply.
    fn ask(&mut self, line: &str) -> String {
        self.send(line.as_bytes());
        self.reply()
    }

    /// The next whole reply, every line of it.
    fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let line = self.line();
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=lf).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            let mut chunk = [0; 4096];
            let n = self.stream.read(&mut chunk).expect("a reply in time");
            assert!(
                n > 0,
                "closed after {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// levee on a plain submission listener in front of `postfix`, for alice,
/// with XCLIENT before the login.
fn levee_for(postfix: &Postfix) -> Levee {
    let setup = LeveeSetup::new();
    let users = setup.dir.join("users");
    std::fs::write(&users, format!("alice 127.0.0.1:{}\n", postfix.port)).expect("user map");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{}\"\nprotocol = \"submission\"\n[listener.mail]\nuser_map = \"{}\"\nforward_client_address = true\n",
        setup.port,
        users.display(),
    );
    setup.start(&config)
}

/// Postfix's log once it has logged `n` queued messages' logins.
fn logins_logged(postfix: &Postfix, n: usize) -> String {
    poll(Duration::from_secs(20), || {
        let log = postfix.log();
        (log.matches("sasl_username=").count() >= n).then_some(log)
    })
    .unwrap_or_else(|| panic!("{n} logins not logged:\n{}", postfix.log()))
}

/// The issue: alice logs in through levee, sends `XCLIENT LOGIN=bob`, and
/// submits a message. Relayed raw, Postfix answered with a new greeting
/// and logged and stamped the message as bob's.
#[test]
fn an_authenticated_client_cannot_become_another_user() {
    let (_dovecot, postfix, delivered) = super::postfix_for_alice(TRUSTING);
    let levee = levee_for(&postfix);
    let mut c = Raw::alice(levee.port);
    let xclient = c.ask("XCLIENT LOGIN=bob\r\n");
    let ehlo = c.ask("EHLO client.example\r\n");
    assert!(
        c.ask("MAIL FROM:<alice@example.org>\r\n")
            .starts_with("250")
    );
    assert!(c.ask("RCPT TO:<bob@example.org>\r\n").starts_with("250"));
    assert!(c.ask("DATA\r\n").starts_with("354"));
    let queued = c.ask("Subject: who sent this\r\n\r\nhello\r\n.\r\n");
    assert!(queued.starts_with("250"), "{queued}");
    c.ask("QUIT\r\n");
    let message = delivered
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("nothing relayed; postfix:\n{}", postfix.log()));
    let log = logins_logged(&postfix, 1);
    assert!(
        log.contains("sasl_username=alice") && !log.contains("sasl_username=bob"),
        "Postfix took alice for bob:\n{log}"
    );
    assert!(
        message.contains("(Authenticated sender: alice)"),
        "{message}"
    );
    assert_eq!(xclient, REFUSED);
    // Nor does the EHLO after AUTH offer it: Postfix offers XCLIENT and
    // XFORWARD to levee's address, not to levee's clients.
    assert!(ehlo.starts_with("250-postfix-test.example\r\n"), "{ehlo}");
    for hidden in ["XCLIENT", "XFORWARD", "STARTTLS"] {
        assert!(!ehlo.contains(hidden), "{ehlo}");
    }
    assert!(ehlo.contains("250-PIPELINING\r\n") && ehlo.ends_with("250 CHUNKING\r\n"));
}

/// Every spelling Postfix takes, pipelined commands, message content, a
/// refused DATA, Postfix's bare-LF end of data and BDAT chunks, against
/// the real Postfix: nothing ever makes alice someone else, and every
/// byte of content arrives as sent.
#[test]
fn commands_are_read_at_their_boundaries_as_postfix_reads_them() {
    let (_dovecot, postfix, delivered) = super::postfix_for_alice(TRUSTING);
    let levee = levee_for(&postfix);
    let mut c = Raw::alice(levee.port);
    // Postfix skips white space and control bytes before a verb, and takes
    // any case and a tab between arguments.
    for line in [
        "xclient LOGIN=bob\r\n",
        "  XCLIENT\tLOGIN=bob\r\n",
        "\x0b\rXcLiEnT LOGIN=bob\n",
        "XFORWARD ADDR=192.0.2.66 NAME=spoofed.example\r\n",
    ] {
        assert_eq!(c.ask(line), REFUSED, "{line:?}");
    }
    assert_eq!(
        c.ask("STARTTLS\r\n"),
        "503 5.5.1 STARTTLS not available after AUTH\r\n"
    );
    assert_eq!(
        c.ask(&format!("AUTH PLAIN {ALICE}\r\n")),
        "503 5.5.1 Already authenticated\r\n"
    );
    // Pipelined (Postfix offers PIPELINING): the refusal in its place.
    c.send(b"MAIL FROM:<alice@example.org>\r\nXCLIENT LOGIN=bob\r\nRCPT TO:<bob@example.org>\r\n");
    let replies = [c.reply(), c.reply(), c.reply()];
    assert!(replies[0].starts_with("250 2.1.0"), "{replies:?}");
    assert_eq!(replies[1], REFUSED);
    assert!(replies[2].starts_with("250 2.1.5"), "{replies:?}");
    // Content that reads like commands is content.
    assert!(c.ask("DATA\r\n").starts_with("354"));
    let queued =
        c.ask("Subject: content\r\n\r\nXCLIENT LOGIN=bob\r\nAUTH PLAIN x\r\n..dot\r\n.\r\n");
    assert!(queued.starts_with("250"), "{queued}");
    // DATA refused (no recipient yet) with a line pipelined behind it: to
    // Postfix that line is a command, so to levee too.
    c.send(b"DATA\r\nXCLIENT LOGIN=bob\r\n");
    let replies = [c.reply(), c.reply()];
    assert!(replies[0].starts_with("503"), "{replies:?}");
    assert_eq!(replies[1], REFUSED);
    // Postfix 3.7 ends content at a bare-LF dot line: so does levee.
    c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    let replies = [c.reply(), c.reply(), c.reply()];
    assert!(replies[2].starts_with("354"), "{replies:?}");
    c.send(b"Subject: bare\r\n\r\nhi\n.\nXCLIENT LOGIN=bob\r\n");
    let replies = [c.reply(), c.reply()];
    assert!(replies[0].starts_with("250"), "{replies:?}");
    assert_eq!(replies[1], REFUSED);
    // A BDAT chunk is its bytes, whatever they read like.
    let chunk = "Subject: chunked\r\n\r\nXCLIENT LOGIN=bob\r\n";
    c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n");
    c.send(format!("BDAT {} LAST\r\n{chunk}", chunk.len()).as_bytes());
    let replies = [c.reply(), c.reply(), c.reply()];
    assert!(replies[2].starts_with("250 2.0.0 Ok"), "{replies:?}");
    // A BDAT line Postfix and Dovecot would read differently is levee's to
    // refuse; what follows it is a command.
    c.send(b"BDAT\t19\r\nXCLIENT LOGIN=bob\r\n");
    let replies = [c.reply(), c.reply()];
    assert_eq!(replies[0], "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
    assert_eq!(replies[1], REFUSED);
    assert!(c.ask("QUIT\r\n").starts_with("221"));
    drop(c);
    let mut messages: Vec<String> = (0..3)
        .map(|_| {
            delivered
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("not relayed; postfix:\n{}", postfix.log()))
        })
        .collect();
    messages.sort_by_key(|m| m.find("Subject: ").map(|at| m[at..].to_owned()));
    for m in &messages {
        assert!(m.contains("(Authenticated sender: alice)"), "{m}");
    }
    // Postfix adds headers after the Subject; the bodies are as sent.
    assert!(messages[0].contains("Subject: bare"));
    assert!(
        messages[1].ends_with("\r\n\r\nXCLIENT LOGIN=bob\r\n"),
        "{:?}",
        messages[1]
    );
    assert!(
        messages[2].ends_with("\r\n\r\nXCLIENT LOGIN=bob\r\nAUTH PLAIN x\r\n..dot\r\n"),
        "{:?}",
        messages[2]
    );
    let log = logins_logged(&postfix, 3);
    assert!(!log.contains("sasl_username=bob"), "{log}");
    assert!(!log.contains("spoofed.example"), "{log}");
    // The session's end is logged with what was refused.
    let logged = poll(Duration::from_secs(10), || {
        let out = levee.stdout() + &levee.stderr();
        out.contains("commands refused after AUTH").then_some(out)
    });
    assert!(logged.is_some(), "{}", levee.stderr());
}
