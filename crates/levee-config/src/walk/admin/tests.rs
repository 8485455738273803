//! `[admin]`: addresses, the token rule off loopback, names, origins.

use std::time::Duration;

use super::{host_name, origin};
use crate::model::*;
use crate::tests::{errors_of, ok};
use crate::{to_toml, validate};

const L: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";

#[test]
fn defaults_on_loopback_need_no_token() {
    let config = ok(&format!("{L}[admin]\naddress = \"[::1]:9090\"\n"));
    let admin = config.admin.expect("admin");
    assert_eq!(admin, Admin::on("[::1]:9090".parse().expect("literal")));
    assert_eq!(admin.session_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(admin.max_sessions, 64);
}

#[test]
fn off_loopback_a_token_is_required_at_the_address() {
    assert_eq!(
        errors_of(&format!("{L}[admin]\naddress = \"0.0.0.0:9090\"\n")),
        [
            "t.toml:4:11: admin.address: the admin listener on `0.0.0.0:9090` is reachable from other hosts, so it needs a token: set `token_file` or `token_env` (or listen on a loopback address such as \"127.0.0.1:9090\")"
        ]
    );
    // A password alone does not do: `levee ctl` and scrapers need the token.
    assert_eq!(
        errors_of(&format!(
            "{L}[admin]\naddress = \"10.0.0.1:9090\"\npassword_file = \"p\"\n"
        ))
        .len(),
        1
    );
    let config = ok(&format!(
        "{L}[admin]\naddress = \"0.0.0.0:9090\"\ntoken_env = \"LEVEE_TOKEN\"\n"
    ));
    let admin = config.admin.expect("admin");
    match admin.token {
        Some(TokenSource::Env(e)) => {
            assert_eq!(e.name, "LEVEE_TOKEN");
            assert_eq!(
                (e.key.as_str(), e.line, e.column),
                ("admin.token_env", 5, 13)
            );
        }
        other => panic!("token: {other:?}"),
    }
}

#[test]
fn every_key_parses_and_round_trips() {
    let config = ok(&format!(
        r#"{L}[admin]
address = "127.0.0.1:9090"
token_file = "/etc/levee/admin.token"
password_file = "/etc/levee/admin.passwd"
hosts = ["Admin.Example.com", "10.0.0.5", "::1"]
origins = ["HTTPS://admin.example.com:443", "http://[::1]:9090"]
session_lifetime = "30m"
max_sessions = 5
"#
    ));
    let admin = config.admin.clone().expect("admin");
    match &admin.token {
        Some(TokenSource::File(f)) => {
            assert_eq!(f.path, std::path::Path::new("/etc/levee/admin.token"));
            assert_eq!((f.line, f.column), (5, 14));
        }
        other => panic!("token: {other:?}"),
    }
    assert_eq!(admin.hosts, ["admin.example.com", "10.0.0.5", "[::1]"]);
    assert_eq!(
        admin.origins,
        ["https://admin.example.com", "http://[::1]:9090"]
    );
    assert_eq!(admin.session_lifetime, Duration::from_secs(1800));
    assert_eq!(admin.max_sessions, 5);
    let again = ok(&to_toml(&config));
    assert_eq!(again.admin, config.admin);
    assert_eq!(validate(&config), Ok(()));
}

#[test]
fn wrong_values_are_reported_each_at_its_key() {
    assert_eq!(
        errors_of(&format!(
            r#"{L}[admin]
address = "127.0.0.1:9090"
token_file = "t"
token_env = "T"
hosts = ["evil.example:80", "*.example.com"]
origins = ["ftp://x", "https://a.example/path", "null"]
session_lifetime = "0s"
max_sessions = 0
"#
        )),
        [
            "t.toml:6:13: admin.token_env: set `token_file` or `token_env`, not both",
            "t.toml:7:10: admin.hosts[0]: `evil.example:80` is not a host name or IP address (without a port) such as \"admin.example.com\"",
            "t.toml:7:29: admin.hosts[1]: `*.example.com` is not a host name or IP address (without a port) such as \"admin.example.com\"",
            "t.toml:8:12: admin.origins[0]: `ftp://x` is not an origin such as \"https://admin.example.com\" (scheme, host and optional port; no path)",
            "t.toml:8:23: admin.origins[1]: `https://a.example/path` is not an origin such as \"https://admin.example.com\" (scheme, host and optional port; no path)",
            "t.toml:8:49: admin.origins[2]: `null` is not an origin such as \"https://admin.example.com\" (scheme, host and optional port; no path)",
            "t.toml:9:20: admin.session_lifetime: must be greater than zero",
            "t.toml:10:16: admin.max_sessions: must be between 1 and 10000",
        ]
    );
}

#[test]
fn names_and_origins_are_normalised_as_browsers_send_them() {
    assert_eq!(host_name("LocalHost").as_deref(), Some("localhost"));
    assert_eq!(host_name("[::1]").as_deref(), Some("[::1]"));
    assert_eq!(host_name("[127.0.0.1]"), None);
    assert_eq!(host_name("a.example:80"), None);
    assert_eq!(
        origin("http://a.example:80").as_deref(),
        Some("http://a.example")
    );
    assert_eq!(
        origin("https://a.example:8443").as_deref(),
        Some("https://a.example:8443")
    );
    assert_eq!(origin("http://[::1]").as_deref(), Some("http://[::1]"));
    assert_eq!(origin("http://[::1]x"), None);
    assert_eq!(origin("http://a.example:0"), None);
    assert_eq!(origin("http://a.example/"), None);
}
