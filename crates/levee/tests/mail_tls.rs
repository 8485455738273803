//! TLS on mail listeners against real peers: implicit TLS (IMAPS, POP3S,
//! submissions) and STARTTLS (`on` and `required`), with the certificate
//! chosen by SNI, driven by Python's imaplib/poplib/smtplib over ssl
//! (`mail/tls_clients.py`) and `openssl s_client -starttls`, through levee
//! to plaintext Dovecot backends. The auth service (nginx) accepts a login
//! only when levee says `Auth-SSL: on`, so every accepted login also proves
//! the `Auth-SSL*` fields.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;
#[path = "mail/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "mail/tls_certs.rs"]
mod tls_certs;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use support::*;

/// nginx as the `auth_http` service: the backend port by protocol and user;
/// OK only for the right password over TLS without a client certificate.
fn auth_service(ports: &[(&str, u16)], down: u16) -> Nginx {
    let routes: String = ports
        .iter()
        .map(|(key, port)| format!("        {key} {port};\n"))
        .collect();
    let maps = format!(
        r#"
    map "$http_auth_protocol:$http_auth_user" $mail_port {{
{routes}        default {down};
    }}
    map "$http_auth_user:$http_auth_pass:$http_auth_ssl:$http_auth_ssl_verify" $mail_status {{
        "alice:secret:on:NONE" OK;
        "bob:hunter2:on:NONE" OK;
        default "Invalid login or password";
    }}
"#
    );
    Nginx::start_http(&maps, fixtures::AUTH_LOCATION)
}

/// Both test certificates: `a.test` (the default) and `*.b.test`.
pub const CERTS: &str = r#"[[listener.tls.certs]]
cert = "a.pem"
key = "a.key"
names = ["a.test"]
[[listener.tls.certs]]
cert = "b.pem"
key = "b.key"
names = ["*.b.test"]
"#;

struct Env {
    _alice: Dovecot,
    _bob: Dovecot,
    _auth: Nginx,
    levee: Levee,
    /// Listener ports by name: `imaps`, `imap_on`, `imap_required`,
    /// `pop3s`, `pop3_required`, `submissions`, `submission_required`.
    ports: HashMap<&'static str, u16>,
    delivered: std::sync::mpsc::Receiver<String>,
}

impl Env {
    fn port(&self, name: &str) -> u16 {
        self.ports[name]
    }

    fn ca(&self) -> String {
        self.levee.dir().join("ca.pem").display().to_string()
    }

    /// Runs a case of `mail/tls_clients.py`; its `key=value` lines.
    fn client(&self, case: &str, args: &[String]) -> HashMap<String, String> {
        tls_client(&self.ca(), case, args)
    }
}

pub fn tls_client(ca: &str, case: &str, args: &[String]) -> HashMap<String, String> {
    let mut all = vec![ca.to_owned()];
    all.extend_from_slice(args);
    fixtures::run_script("tls_clients.py", case, &all)
}

fn start() -> Env {
    let (sink, delivered) = fixtures::smtp_sink();
    let submission = free_port();
    let alice = fixtures::dovecot_with_submission(&[("alice", "secret")], submission, sink);
    let bob = Dovecot::start(&[("bob", "hunter2")]);
    let auth = auth_service(
        &[
            ("imap:alice", alice.imap_port),
            ("imap:bob", bob.imap_port),
            ("pop3:alice", alice.pop3_port),
            ("pop3:bob", bob.pop3_port),
            ("smtp:alice", submission),
        ],
        free_port(),
    );
    let setup = common::setup();
    let mut ports = HashMap::new();
    let mut config = format!("pid_file = \"{}\"\n", setup.pid_file().display());
    let listeners = [
        ("imaps", "imap", "off"),
        ("imap_on", "imap", "on"),
        ("imap_required", "imap", "required"),
        ("pop3s", "pop3", "off"),
        ("pop3_required", "pop3", "required"),
        ("submissions", "submission", "off"),
        ("submission_required", "submission", "required"),
    ];
    for (i, (name, protocol, starttls)) in listeners.into_iter().enumerate() {
        // levee waits for the first port to open.
        let port = if i == 0 { setup.port } else { free_port() };
        ports.insert(name, port);
        config.push_str(&format!(
            r#"
[[listener]]
address = "127.0.0.1:{port}"
protocol = "{protocol}"
{CERTS}[listener.mail]
auth_http = "http://127.0.0.1:{auth}/auth"
auth_fail_delay = "0s"
starttls = "{starttls}"
"#,
            auth = auth.port(),
        ));
    }
    let levee = setup.start(&config);
    Env {
        _alice: alice,
        _bob: bob,
        _auth: auth,
        levee,
        ports,
        delivered,
    }
}

fn ports(env: &Env, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| env.port(n).to_string()).collect()
}

/// `openssl s_client -starttls PROTOCOL -servername NAME`: the subject line of
/// the certificate served after the protocol's STARTTLS.
fn s_client_starttls(env: &Env, port: u16, protocol: &str, name: &str) -> String {
    let connect = format!("127.0.0.1:{port}");
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-starttls", protocol])
        .args(["-servername", name, "-CAfile", &env.ca()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn imap_implicit_tls_and_starttls_choose_certificates_by_sni() {
    let env = start();
    let r = env.client("imaps", &ports(&env, &["imaps"]));
    assert_eq!(r["cn_a"], "a.test", "{r:?}");
    assert_eq!(r["cn_b"], "wild.b.test", "{r:?}");
    assert_eq!(r["cn_none"], "a.test", "{r:?}");
    assert!(!r["greeting"].contains("STARTTLS"), "{r:?}");
    assert!(r["greeting"].contains("AUTH=PLAIN"), "{r:?}");
    assert_eq!(r["login"], "OK", "{r:?}");
    assert_eq!(r["subject"], "Subject: hello alice");
    assert_eq!(r["subject_bob"], "Subject: hello bob");

    let r = env.client("imap_starttls", &ports(&env, &["imap_on", "imap_required"]));
    // Offered before TLS, not after; logins open before TLS on `on`.
    assert!(r["on_before"].contains("STARTTLS"), "{r:?}");
    assert!(r["on_before"].contains("AUTH=PLAIN"), "{r:?}");
    assert!(!r["on_after"].contains("STARTTLS"), "{r:?}");
    // No Auth-SSL on a plaintext login: the auth service refused it.
    assert!(r["on_plain"].contains("AUTHENTICATIONFAILED"), "{r:?}");
    assert_eq!(r["on_cn"], "wild.b.test", "{r:?}");
    assert_eq!(r["on_login"], "OK", "{r:?}");
    assert_eq!(r["on_subject"], "Subject: hello alice");
    // `required`: LOGINDISABLED and no mechanism until TLS.
    let greeting = &r["req_greeting"];
    assert!(
        greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"),
        "{r:?}"
    );
    assert!(!greeting.contains("AUTH="), "{r:?}");
    assert!(r["req_login"].starts_with("NO [PRIVACYREQUIRED]"), "{r:?}");
    assert!(r["req_authenticate"].contains("PRIVACYREQUIRED"), "{r:?}");
    let after = &r["req_after"];
    assert!(after.contains("AUTH=PLAIN"), "{r:?}");
    assert!(
        !after.contains("LOGINDISABLED") && !after.contains("STARTTLS"),
        "{r:?}"
    );
    assert_eq!(r["req_auth_tls"], "OK", "{r:?}");
    assert_eq!(r["req_subject"], "Subject: hello bob");

    // OpenSSL's own STARTTLS client, with SNI for each name.
    let required = env.port("imap_required");
    let b = s_client_starttls(&env, required, "imap", "mail.b.test");
    assert!(
        b.contains("CN=wild.b.test") || b.contains("CN = wild.b.test"),
        "{b}"
    );
    let a = s_client_starttls(&env, required, "imap", "a.test");
    assert!(a.contains("CN=a.test") || a.contains("CN = a.test"), "{a}");
    // curl: IMAPS, and IMAP with STARTTLS demanded (`--ssl-reqd`), each
    // verifying the certificate for the name it asked for.
    let ca = env.ca();
    for (listener, name, scheme, extra) in [
        ("imaps", "a.test", "imaps", None),
        ("imap_required", "mail.b.test", "imap", Some("--ssl-reqd")),
    ] {
        let port = env.port(listener);
        let resolve = format!("{name}:{port}:127.0.0.1");
        let url = format!("{scheme}://{name}:{port}/INBOX;UID=1");
        let mut args = vec!["--cacert", &ca, "--resolve", &resolve, "-u", "alice:secret"];
        args.extend(extra);
        args.push(&url);
        let body = curl_ok(&args);
        assert!(body.contains("Subject: hello alice"), "{scheme}: {body}");
    }
    let log = env.levee.stdout() + &env.levee.stderr();
    assert!(
        !log.contains("secret") && !log.contains("hunter2"),
        "a password was logged"
    );
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    let env = start();
    for (listener, protocol) in [
        ("imap_on", "imap"),
        ("imap_required", "imap"),
        ("pop3_required", "pop3"),
        ("submission_required", "smtp"),
    ] {
        let args = vec![env.port(listener).to_string(), protocol.to_owned()];
        let r = env.client("injection", &args);
        let (plain, after) = (&r["plain"], &r["after"]);
        match protocol {
            "imap" => {
                assert!(plain.contains("a OK Begin TLS"), "{r:?}");
                // The injected LOGIN never ran: no reply to `b`, before or after.
                assert!(!plain.contains("b ") && !after.contains("b "), "{r:?}");
                assert!(after.starts_with("c OK"), "{r:?}");
            }
            "pop3" => {
                assert!(plain.ends_with("+OK Begin TLS negotiation|"), "{r:?}");
                assert!(after.starts_with("+OK Capability list follows"), "{r:?}");
                assert!(!after.contains("Logged in"), "{r:?}");
            }
            _ => {
                assert!(plain.ends_with("220 2.0.0 Ready to start TLS|"), "{r:?}");
                assert!(after.starts_with("250 2.0.0 OK"), "{r:?}");
                assert!(!plain.contains("538") && !after.contains("235"), "{r:?}");
            }
        }
    }
}

#[test]
fn pop3_and_submission_over_tls() {
    let env = start();
    let r = env.client("pop3", &ports(&env, &["pop3s", "pop3_required"]));
    assert_eq!(r["tls_cn"], "wild.b.test", "{r:?}");
    assert!(!r["tls_capa"].contains("STLS"), "{r:?}");
    assert!(r["tls_pass"].starts_with("+OK"), "{r:?}");
    assert!(r["tls_retr"].contains("Subject: hello alice"), "{r:?}");
    // `required`: STLS offered, no USER or SASL until TLS.
    let capa = &r["req_capa"];
    assert!(capa.contains("STLS") && !capa.contains("USER") && !capa.contains("SASL"));
    assert!(r["req_user"].contains("-ERR [AUTH] TLS required"), "{r:?}");
    let after = &r["req_after"];
    assert!(after.contains("USER") && !after.contains("STLS"), "{r:?}");
    assert!(r["req_pass"].starts_with("+OK"), "{r:?}");
    assert!(r["req_retr"].contains("Subject: hello bob"), "{r:?}");

    let r = env.client(
        "submission",
        &ports(&env, &["submissions", "submission_required"]),
    );
    assert_eq!(r["tls_cn"], "wild.b.test", "{r:?}");
    assert!(
        r["tls_ehlo"].contains("auth") && !r["tls_ehlo"].contains("starttls"),
        "{r:?}"
    );
    assert_eq!(r["tls_refused"], "0", "{r:?}");
    let ehlo = &r["req_ehlo"];
    assert!(ehlo.contains("starttls") && !ehlo.contains("auth"), "{r:?}");
    assert!(
        r["req_auth"]
            .starts_with("538 5.7.11 Encryption required for requested authentication mechanism"),
        "{r:?}"
    );
    let after = &r["req_after"];
    assert!(
        after.contains("auth") && !after.contains("starttls"),
        "{r:?}"
    );
    assert_eq!(r["req_refused"], "0", "{r:?}");
    let mut subjects = Vec::new();
    for _ in 0..2 {
        let message = env
            .delivered
            .recv_timeout(Duration::from_secs(10))
            .expect("a message reached the relay host");
        subjects.extend(
            message
                .lines()
                .filter(|l| l.starts_with("Subject:"))
                .map(String::from),
        );
    }
    subjects.sort();
    assert_eq!(
        subjects,
        ["Subject: after STARTTLS", "Subject: over implicit TLS"]
    );
}
