//! Mail listeners: the model they become and the errors they give.

use std::time::Duration;

use crate::model::{MailAuth, MailProtocol};
use crate::tests::{errors_of, ok};

#[test]
fn imap_listener_with_auth_http() {
    let config = ok(r#"
[[listener]]
address = "127.0.0.1:143"
protocol = "imap"
max_connections_per_ip = 10
[listener.mail]
auth_http = "http://127.0.0.1:9000/auth?x=1"
auth_http_timeout = "2s"
auth_http_header = { X-Secret = "s3" }
preauth_timeout = "30s"
backend_login_timeout = "25s"
max_errors = 3
forward_client_address = true
master_user = "levee"
master_password = "m4ster"
"#);
    let l = &config.listeners[0];
    assert_eq!(l.protect.max_connections_per_ip, 10);
    let m = l.mail.as_ref().expect("a mail listener");
    assert_eq!(m.protocol, MailProtocol::Imap);
    assert_eq!(m.preauth_timeout, Duration::from_secs(30));
    assert_eq!(m.backend_login_timeout, Duration::from_secs(25));
    assert_eq!(m.backend_connect_timeout, Duration::from_secs(3));
    assert_eq!(m.max_errors, 3);
    assert_eq!(m.max_line, 65_536, "IMAP's pre-login default");
    assert!(m.forward_client_address);
    let master = m.master.as_ref().expect("master user");
    assert_eq!(
        (master.user.as_str(), master.separator.as_str()),
        ("levee", "*")
    );
    assert!(
        !format!("{master:?}").contains("m4ster"),
        "the password is not in Debug"
    );
    let MailAuth::Http(a) = &m.auth else {
        panic!("auth_http expected")
    };
    assert_eq!(a.address, "127.0.0.1:9000");
    assert_eq!(a.host, "127.0.0.1:9000");
    assert_eq!(a.uri, "/auth?x=1");
    assert_eq!(a.timeout, Duration::from_secs(2));
    assert_eq!(a.headers, [("X-Secret".to_owned(), "s3".to_owned())]);
    // It survives being written out and read back.
    assert_eq!(crate::validate(&config), Ok(()));
}

#[test]
fn pop3_with_user_map_and_default_port() {
    let config = ok(r#"
[[listener]]
address = "127.0.0.1:110"
protocol = "pop3"
[listener.mail]
user_map = "/etc/levee/users"
"#);
    let m = config.listeners[0].mail.as_ref().expect("mail");
    assert_eq!(m.protocol, MailProtocol::Pop3);
    assert_eq!(m.max_line, 8192);
    assert_eq!(m.auth, MailAuth::UserMap("/etc/levee/users".into()));
    assert!(config.listeners.iter().all(|l| l.address.port() == 110));
}

#[test]
fn mail_errors_name_the_key() {
    assert_eq!(
        errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n"),
        [
            "t.toml:3:12: listener[0].protocol: a mail listener needs a [listener.mail] table with `auth_http` or `user_map`"
        ]
    );
    assert_eq!(
        errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"smtp\"\n"),
        [
            "t.toml:3:12: listener[0].protocol: unknown protocol `smtp`; expected \"http\", \"imap\", \"pop3\" or \"submission\""
        ]
    );
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nauth_http = \"https://a/\"\nmax_line = 100\nauth_http_timeout = \"0s\"\n"
        ),
        [
            "t.toml:5:13: listener[0].mail.auth_http: invalid URL `https://a/`: expected http://host:port/path (https is not supported)",
            "t.toml:6:12: listener[0].mail.max_line: must be between 512 and 1048576",
            "t.toml:7:21: listener[0].mail.auth_http_timeout: must be greater than zero",
        ]
    );
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"/u\"\nauth_http = \"http://a/\"\n"
        ),
        ["t.toml:5:12: listener[0].mail.user_map: set either `auth_http` or `user_map`, not both"]
    );
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"/u\"\nmaster_user = \"m\"\n"
        ),
        ["t.toml:4:1: listener[0].mail: `master_user` and `master_password` go together"]
    );
    assert_eq!(
        errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\n[listener.mail]\nuser_map = \"/u\"\n"),
        [
            "t.toml:3:1: listener[0].mail: a [listener.mail] table needs protocol = \"imap\", \"pop3\" or \"submission\""
        ]
    );
}

#[test]
fn starttls_needs_certificates_and_mail_tls_has_no_alpn() {
    let config = ok(r#"
[[listener]]
address = "127.0.0.1:143"
protocol = "imap"
[listener.tls]
[[listener.tls.certs]]
cert = "/c.pem"
key = "/c.key"
[listener.mail]
user_map = "/u"
starttls = "required"
"#);
    let l = &config.listeners[0];
    let m = l.mail.as_ref().expect("mail");
    assert_eq!(m.starttls, crate::model::StartTls::Required);
    assert!(l.tls.as_ref().expect("tls").alpn.is_empty());
    let text = crate::to_toml(&config);
    let back = crate::parse(&text, std::path::Path::new("t.toml")).expect("parse");
    // Written out and read back (the TLS file positions move, so only these).
    assert_eq!(back.listeners[0].mail, config.listeners[0].mail);
    assert!(
        back.listeners[0]
            .tls
            .as_ref()
            .is_some_and(|t| t.alpn.is_empty())
    );
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"/u\"\nstarttls = \"on\"\n"
        ),
        [
            "t.toml:6:12: listener[0].mail.starttls: STARTTLS needs the listener's certificates: add a [listener.tls] table"
        ]
    );
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"pop3\"\n[listener.tls]\nhsts = \"1h\"\ncerts = [{ cert = \"/c\", key = \"/k\" }]\n[listener.mail]\nuser_map = \"/u\"\nstarttls = \"maybe\"\n"
        ),
        [
            "t.toml:4:1: listener[0].tls: `hsts` does not apply to a mail listener's TLS",
            "t.toml:9:12: listener[0].mail.starttls: unknown starttls `maybe`; expected \"off\", \"on\" or \"required\"",
        ]
    );
}

#[test]
fn mail_listeners_take_no_proxy_protocol_header() {
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\nproxy_protocol = \"10.0.0.0/8\"\n[listener.mail]\nuser_map = \"/u\"\n"
        ),
        [
            "t.toml:4:18: listener[0].proxy_protocol: `proxy_protocol` is not supported on mail listeners yet"
        ]
    );
}

/// `move_grace` (0 to 1 h) and `auth_failure_window`, which used to be
/// accepted and then ignored.
#[test]
fn move_grace_and_the_failure_window_are_read() {
    let config = ok(r#"
[[listener]]
address = "127.0.0.1:143"
protocol = "imap"
[listener.mail]
user_map = "/u"
move_grace = "2s"
auth_failure_window = "90s"
"#);
    let m = config.listeners[0].mail.as_ref().expect("mail");
    assert_eq!(m.move_grace, Duration::from_secs(2));
    assert_eq!(m.auth_failure_window, Duration::from_secs(90));
    let defaults = ok(
        "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"/u\"\n",
    );
    let m = defaults.listeners[0].mail.as_ref().expect("mail");
    assert_eq!(m.move_grace, Duration::from_secs(5));
    assert_eq!(m.backend_login_timeout, Duration::from_secs(20));
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"/u\"\nmove_grace = \"2h\"\nauth_failure_window = \"0s\"\nbackend_login_timeout = \"0s\"\n"
        ),
        [
            "t.toml:6:14: listener[0].mail.move_grace: must be at most 1h",
            "t.toml:7:23: listener[0].mail.auth_failure_window: must be greater than zero",
            "t.toml:8:25: listener[0].mail.backend_login_timeout: must be greater than zero",
        ]
    );
}

#[test]
fn smtp_capabilities_are_safe_keywords_on_submission_only() {
    let config = ok(r#"
[[listener]]
address = "127.0.0.1:587"
protocol = "submission"
[listener.mail]
user_map = "/u"
smtp_capabilities = ["size 10240000", "8BITMIME", "PIPELINING", "SMTPUTF8"]
"#);
    let m = config.listeners[0].mail.as_ref().expect("mail");
    assert_eq!(
        m.smtp_capabilities.as_deref(),
        Some(&["SIZE 10240000", "8BITMIME", "PIPELINING", "SMTPUTF8"].map(String::from)[..])
    );
    assert_eq!(crate::validate(&config), Ok(()));
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"submission\"\n[listener.mail]\nuser_map = \"/u\"\nsmtp_capabilities = [\"XCLIENT\", \"SIZE big\", \"DSN x\"]\n"
        ),
        [
            "t.toml:6:22: listener[0].mail.smtp_capabilities[0]: `XCLIENT` is not an extension levee can offer for its backends; expected one of PIPELINING, SIZE, 8BITMIME, SMTPUTF8, CHUNKING, BINARYMIME, DSN",
            "t.toml:6:33: listener[0].mail.smtp_capabilities[1]: `SIZE big`: SIZE takes a number of bytes",
            "t.toml:6:45: listener[0].mail.smtp_capabilities[2]: `DSN x`: DSN takes no parameter",
        ]
    );
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"/u\"\nsmtp_capabilities = [\"DSN\"]\n"
        ),
        [
            "t.toml:6:21: listener[0].mail.smtp_capabilities: `smtp_capabilities` applies to protocol = \"submission\" only"
        ]
    );
}

#[test]
fn mail_listeners_trust_no_forwarded_fields() {
    assert_eq!(
        errors_of(
            "[[listener]]\naddress = \"127.0.0.1:1\"\nprotocol = \"imap\"\ntrusted_proxies = \"10.0.0.0/8\"\n[listener.mail]\nuser_map = \"/u\"\n"
        ),
        [
            "t.toml:4:19: listener[0].trusted_proxies: `trusted_proxies` applies to HTTP listeners only: mail has no forwarded fields"
        ]
    );
}
