//! TLS termination with real clients: curl for SNI, mTLS, static files and
//! HSTS, `openssl s_client` for ALPN, resumption and OCSP stapling.
//! Reloading certificates is in tls_reload.rs.

mod support;

#[path = "tls/certs.rs"]
mod certs;
#[path = "tls/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use support::{Nginx, curl};

#[test]
fn sni_selects_the_certificate_per_name_and_upstream_sees_https() {
    let (nginx, levee) = start("hsts = \"2h\"", |_| {});

    let a = https(&levee, "a.test", "/one", &[]);
    assert!(ok_body(&a).starts_with("hello from"), "{a:?}");
    // HSTS on a proxied response.
    let verbose = String::from_utf8_lossy(&a.stderr);
    assert!(
        verbose.contains("< Strict-Transport-Security: max-age=7200"),
        "{verbose}"
    );
    assert!(subject(&a).contains("CN=a.test"), "{}", subject(&a));

    let b = https(&levee, "x.b.test", "/two", &[]);
    ok_body(&b);
    assert!(subject(&b).contains("CN=wild.b.test"), "{}", subject(&b));

    // An unknown name gets the default certificate, which curl refuses.
    let other = https(&levee, "c.test", "/", &[]);
    assert!(!other.status.success());
    assert!(subject(&other).contains("CN=a.test"), "{}", subject(&other));

    let entries = nginx.wait_entries("/two", 1);
    assert_eq!(entries[0].get("xfp"), "https");
}

#[test]
fn alpn_and_session_resumption_with_s_client() {
    let (_nginx, levee) = start("", |_| {});

    let first = s_client(&levee, &["-alpn", "h2,http/1.1", "-sess_out", "s13"]);
    assert!(first.contains("ALPN protocol: http/1.1"), "{first}");
    assert!(first.contains("New, TLSv1.3"), "{first}");
    let again = s_client(&levee, &["-sess_in", "s13"]);
    assert!(again.contains("Reused, TLSv1.3"), "{again}");

    let first = s_client(&levee, &["-tls1_2", "-sess_out", "s12"]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let again = s_client(&levee, &["-tls1_2", "-sess_in", "s12"]);
    assert!(again.contains("Reused, TLSv1.2"), "{again}");

    // TLS 1.1 and below are refused.
    let old = s_client(&levee, &["-tls1_1"]);
    assert!(!old.contains("New, TLSv1.1"), "{old}");
}

#[test]
fn client_certificates_are_required_when_client_ca_is_set() {
    let (nginx, levee) = start("client_ca = \"clients.pem\"", |dir| {
        certs::ca(dir, "clients");
        certs::leaf(dir, "clients", "alice", "alice", &["alice.client"]);
        certs::ca(dir, "stranger-ca");
        certs::leaf(
            dir,
            "stranger-ca",
            "mallory",
            "mallory",
            &["mallory.client"],
        );
    });
    let dir = levee.dir().to_owned();

    let path = |f: &str| dir.join(f).display().to_string();
    let (alice_pem, alice_key) = (path("alice.pem"), path("alice.key"));
    let with = https(
        &levee,
        "a.test",
        "/mtls",
        &["--cert", &alice_pem, "--key", &alice_key],
    );
    assert!(ok_body(&with).starts_with("hello from"));

    let without = https(&levee, "a.test", "/mtls", &[]);
    assert!(
        !without.status.success(),
        "served without a client certificate"
    );

    let (m_pem, m_key) = (path("mallory.pem"), path("mallory.key"));
    let stranger = https(
        &levee,
        "a.test",
        "/mtls",
        &["--cert", &m_pem, "--key", &m_key],
    );
    assert!(
        !stranger.status.success(),
        "served a certificate of another CA"
    );
    assert_eq!(nginx.wait_entries("/mtls", 1).len(), 1);
}

#[test]
fn static_files_over_tls_and_a_redirect_from_plain_http() {
    let setup = setup();
    let dir = setup.dir.path().to_owned();
    std::fs::create_dir_all(dir.join("www")).expect("www");
    let big = support::random_bytes(300_000, 7);
    std::fs::write(dir.join("www/big.bin"), &big).expect("big");
    let plain = support::free_port();
    let cfg = format!(
        r#"[[listener]]
name = "tls"
address = "127.0.0.1:{port}"
[listener.tls]
hsts = "1h"
[[listener.tls.certs]]
cert = "a.pem"
key = "a.key"

[[listener]]
name = "plain"
address = "127.0.0.1:{plain}"

[[route]]
listener = "tls"
static = "www"

[[route]]
listener = "plain"
redirect = "https://{{host}}{{uri}}"
status = 308
"#,
        port = setup.port
    );
    let levee = setup.start(&cfg);
    let got = https(&levee, "a.test", "/big.bin", &[]);
    let verbose = String::from_utf8_lossy(&got.stderr);
    assert!(
        verbose.contains("< Strict-Transport-Security: max-age=3600"),
        "{verbose}"
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(got.stdout == big, "static file differs over TLS");
    // A range, through the same read-and-write path.
    let part = https(&levee, "a.test", "/big.bin", &["-r", "1000-1999"]);
    assert_eq!(part.stdout, big[1000..2000]);

    let out = curl(&["-si", &format!("http://127.0.0.1:{plain}/x?y=1")]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    // Never over plain HTTP (RFC 6797 §7.2).
    assert!(!head.contains("Strict-Transport-Security"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: https://127.0.0.1:{plain}/x?y=1")),
        "{head}"
    );
}

#[test]
fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let (_nginx, levee) = start("handshake_timeout = \"500ms\"", |_| {});
    let mut conn = support::RawConn::connect(levee.port);
    assert!(conn.closed_within(Duration::from_secs(3)), "still open");
}

#[test]
fn proxy_protocol_header_before_the_tls_handshake() {
    let nginx = Nginx::start_default();
    let setup = setup();
    let cfg = config(&setup, &nginx.addr(), "", "").replacen(
        "[listener.tls]",
        "proxy_protocol = \"127.0.0.1\"\n[listener.tls]",
        1,
    );
    let levee = setup.start(&cfg);
    let out = https(&levee, "a.test", "/pp-tls", &["--haproxy-protocol"]);
    assert!(ok_body(&out).starts_with("hello from"));
    let e = nginx.wait_entries("/pp-tls", 1);
    assert_eq!(
        (e[0].get("xff").as_str(), e[0].get("xfp").as_str()),
        ("127.0.0.1", "https")
    );
    // The same client without the header is dropped before the handshake.
    assert!(!https(&levee, "a.test", "/no-pp", &[]).status.success());
}

#[test]
fn ocsp_response_is_stapled_when_a_file_is_given() {
    let nginx = Nginx::start_default();
    let setup = setup();
    certs::ocsp(setup.dir.path(), "ca", "a");
    let cfg = config(&setup, &nginx.addr(), "", "").replacen(
        "names = [\"a.test\"]",
        "names = [\"a.test\"]\nocsp = \"a.ocsp\"",
        1,
    );
    let levee = setup.start(&cfg);
    let stapled = s_client(&levee, &["-status"]);
    assert!(
        stapled.contains("OCSP Response Status: successful"),
        "{stapled}"
    );
    assert!(stapled.contains("Cert Status: good"), "{stapled}");
    // The other certificate has no response to staple.
    let none = s_client(&levee, &["-status", "-servername", "x.b.test"]);
    assert!(none.contains("OCSP response: no response sent"), "{none}");
}

/// Cached responses are keyed by scheme: what an https listener stored is
/// not served to http clients (and the reverse), as nginx's default key
/// `$scheme$proxy_host$request_uri` does.
#[test]
fn the_cache_keys_responses_by_scheme() {
    let nginx = Nginx::start(r#"location / { add_header Cache-Control "max-age=600"; }"#);
    nginx.put_file("obj", b"cached body\n");
    let setup = setup();
    let plain = support::free_port();
    let cfg = config(
        &setup,
        &nginx.addr(),
        "",
        &format!("[[listener]]\naddress = \"127.0.0.1:{plain}\"\n"),
    )
    .replace("proxy = \"app\"\n", "proxy = \"app\"\ncache = true\n");
    let levee = setup.start(&cfg);
    let origin = || {
        nginx
            .settled_entries()
            .iter()
            .filter(|e| e.get("uri") == "/obj")
            .count()
    };

    for _ in 0..2 {
        assert_eq!(
            ok_body(&https(&levee, "a.test", "/obj", &[])),
            "cached body\n"
        );
    }
    assert_eq!(origin(), 1, "the second https request is a hit");
    let http = format!("http://127.0.0.1:{plain}/obj");
    for _ in 0..2 {
        let out = curl(&["-s", "-H", "Host: a.test", &http]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "cached body\n");
    }
    assert_eq!(origin(), 2, "http has its own entry, then hits it");
}
