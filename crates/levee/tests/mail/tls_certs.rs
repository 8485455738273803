//! Mail listeners' certificates: reloaded when their files change, and a
//! client certificate's facts passed to the auth service (`Auth-SSL-*`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{CERTS, certs, common, fixtures, tls_client};
use crate::support::*;

#[test]
fn mail_certificates_reload_when_their_files_change() {
    let setup = common::setup();
    let users = setup.dir.join("users");
    std::fs::write(&users, "alice 127.0.0.1:1\n").expect("write user map");
    let config = format!(
        r#"[[listener]]
address = "127.0.0.1:{port}"
protocol = "imap"
{CERTS}[listener.mail]
user_map = "{users}"
"#,
        port = setup.port,
        users = users.display(),
    );
    let levee = setup.start(&config);
    let ca = levee.dir().join("ca.pem").display().to_string();
    let port = levee.port.to_string();
    let cn = || tls_client(&ca, "peer_cn", &[port.clone(), "a.test".to_owned()])["cn"].clone();
    assert_eq!(cn(), "a.test");
    let dir = levee.dir();
    certs::leaf(dir, "ca", "renewed", "renewed.a.test", &["a.test"]);
    std::fs::rename(dir.join("renewed.key"), dir.join("a.key")).expect("key");
    std::fs::rename(dir.join("renewed.pem"), dir.join("a.pem")).expect("cert");
    let seen = poll(Duration::from_secs(10), || {
        (cn() == "renewed.a.test").then_some(())
    });
    assert!(seen.is_some(), "the renewed certificate was not served");
}

/// What `openssl x509` says of `pem`: (serial, SHA-1 fingerprint) in
/// nginx's forms (upper-case hex; lower-case hex without colons).
fn serial_and_fingerprint(pem: &Path) -> (String, String) {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-fingerprint", "-sha1", "-in"])
        .arg(pem)
        .output()
        .expect("openssl x509");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.ends_with(prefix)))
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    };
    let fingerprint = value("Fingerprint").replace(':', "").to_ascii_lowercase();
    (value("serial"), fingerprint)
}

#[test]
fn client_certificates_reach_the_auth_service() {
    let alice = Dovecot::start(&[("alice", "secret")]);
    let setup = common::setup();
    let dir = setup.dir.path().to_owned();
    let (carol, carol_key) = certs::leaf(&dir, "ca", "carol", "carol", &["carol.test"]);
    let (serial, fingerprint) = serial_and_fingerprint(&carol);
    // OK only with every Auth-SSL field as nginx would send it for carol.
    let maps = format!(
        r#"
    map_hash_bucket_size 256;
    map "$http_auth_ssl:$http_auth_ssl_verify:$http_auth_ssl_subject:$http_auth_ssl_issuer:$http_auth_ssl_serial:$http_auth_ssl_fingerprint" $mail_status {{
        "on:SUCCESS:CN=carol:CN=ca:{serial}:{fingerprint}" OK;
        default "Invalid login or password";
    }}
    map $http_auth_user $mail_port {{
        default {port};
    }}
"#,
        port = alice.imap_port,
    );
    let auth = Nginx::start_http(&maps, fixtures::AUTH_LOCATION);
    let config = format!(
        r#"[[listener]]
address = "127.0.0.1:{port}"
protocol = "imap"
[listener.tls]
client_ca = "ca.pem"
{CERTS}[listener.mail]
auth_http = "http://127.0.0.1:{auth}/auth"
"#,
        port = setup.port,
        auth = auth.port(),
    );
    let levee = setup.start(&config);
    let ca = levee.dir().join("ca.pem").display().to_string();
    let args = [
        levee.port.to_string(),
        carol.display().to_string(),
        carol_key.display().to_string(),
    ];
    let r = tls_client(&ca, "client_cert", &args);
    assert_eq!(
        r["login"], "OK",
        "{r:?} serial={serial} fingerprint={fingerprint}"
    );
    assert_eq!(r["subject"], "Subject: hello alice");
}
