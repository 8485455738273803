//! TLS to upstreams: a real nginx serving HTTPS behind levee, verified
//! against a test CA, with and without a client certificate.

mod support;

#[path = "tls/certs.rs"]
mod certs;

use std::path::Path;

use support::{LeveeSetup, Nginx, TempDir, curl, free_port, poll};

/// An nginx whose second server speaks TLS on the returned port, with a
/// certificate for `up.test` from the CA in `dir`; `tls_extra` goes into
/// that server (for client certificates).
fn https_nginx(dir: &Path, tls_extra: &str) -> (Nginx, u16) {
    certs::ca(dir, "ca");
    certs::leaf(dir, "ca", "up", "up.test", &["up.test"]);
    let port = free_port();
    let d = dir.display();
    // The fixture's server block is closed early to open a TLS one.
    let body = format!(
        "location / {{ return 200 \"plain\\n\"; }} }}\n\
         server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {d}/up.pem; \
         ssl_certificate_key {d}/up.key; {tls_extra}\n\
         location / {{ return 200 \"tls $ssl_protocol client=$ssl_client_s_dn\\n\"; }}"
    );
    let nginx = Nginx::start(&body);
    let open = poll(std::time::Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(open.is_some(), "nginx TLS port");
    (nginx, port)
}

fn levee_to(port: u16, tls: &str) -> support::Levee {
    let setup = LeveeSetup::new();
    let cfg = setup.proxy_config(
        &[&format!("127.0.0.1:{port}")],
        &format!("[upstream.app.tls]\n{tls}\n"),
    );
    setup.start(&cfg)
}

fn get(levee: &support::Levee, path: &str) -> (String, String) {
    let out = curl(&["-w", "\n%{http_code}", &levee.url(path)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or_default();
    (code.to_owned(), body.to_owned())
}

#[test]
fn https_upstream_verified_against_a_ca_with_server_name() {
    let certs_dir = TempDir::new("up-certs");
    let (_nginx, port) = https_nginx(certs_dir.path(), "");
    let ca = certs_dir.join("ca.pem").display().to_string();
    let levee = levee_to(port, &format!("ca = \"{ca}\"\nserver_name = \"up.test\""));
    let (code, body) = get(&levee, "/a");
    assert_eq!(code, "200", "{body}\n{}", levee.stderr());
    // nginx here offers TLS 1.2 unless told otherwise; levee takes either.
    assert!(body.starts_with("tls TLSv1."), "{body}");
    // Pooled TLS connections carry the next requests too.
    for _ in 0..3 {
        assert_eq!(get(&levee, "/again").0, "200");
    }
}

#[test]
fn a_server_whose_certificate_does_not_match_is_a_bad_gateway() {
    let certs_dir = TempDir::new("up-certs");
    let (_nginx, port) = https_nginx(certs_dir.path(), "");
    let ca = certs_dir.join("ca.pem").display().to_string();
    let wrong_name = levee_to(
        port,
        &format!("ca = \"{ca}\"\nserver_name = \"other.test\""),
    );
    assert_eq!(get(&wrong_name, "/").0, "502");
    // The system roots do not know the test CA.
    let system = levee_to(port, "server_name = \"up.test\"");
    assert_eq!(get(&system, "/").0, "502");
}

#[test]
fn client_certificate_to_a_server_that_asks_for_one() {
    let certs_dir = TempDir::new("up-certs");
    let dir = certs_dir.path();
    let verify = format!(
        "ssl_verify_client on; ssl_client_certificate {}/ca.pem;",
        dir.display()
    );
    let (_nginx, port) = https_nginx(dir, &verify);
    certs::leaf(dir, "ca", "levee-client", "levee-client", &["levee.client"]);
    let file = |f: &str| dir.join(f).display().to_string();
    let with = levee_to(
        port,
        &format!(
            "ca = \"{}\"\nserver_name = \"up.test\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
            file("ca.pem"),
            file("levee-client.pem"),
            file("levee-client.key")
        ),
    );
    let (code, body) = get(&with, "/mtls");
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("CN=levee-client"), "{body}");
    let without = levee_to(
        port,
        &format!("ca = \"{}\"\nserver_name = \"up.test\"", file("ca.pem")),
    );
    // nginx answers 400 to a client without a certificate.
    assert_eq!(get(&without, "/mtls").0, "400");
}
