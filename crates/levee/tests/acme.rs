//! Automatic certificates against Pebble, the ACME test CA (docs/tls.md,
//! "Automatic certificates"): obtained by HTTP-01 and TLS-ALPN-01 and
//! served (curl verifies with Pebble's root), renewed near expiry without
//! dropping a connection, and a failing CA (stopped, or rejecting every
//! nonce) leaving the certificate in use in place, the failure logged and
//! counted; a wildcard by DNS-01 through BIND; External Account Binding;
//! RSA keys; OCSP staples; `levee check`.

#[path = "tls/certs.rs"]
mod certs;
#[path = "acme/common.rs"]
mod common;
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use support::*;

const ROUTES: &str = r#"
[[route]]
host = "a.test"
respond = "hello from a"
"#;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn obtains_by_http01_then_tls_alpn01_and_serves_them() {
    let setup = LeveeSetup::new();
    let acme = Acme::start(&setup, &[], None);
    let storage = setup.dir.join("acme");
    let config = acme.config(setup.dir.path(), r#"challenges = ["http-01"]"#, ROUTES);
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    acme.wait_served("a.test", "hello from a", &root, &levee);
    // Pebble fetched the HTTP-01 answer from the plain listener.
    let challenges = || {
        levee
            .stdout()
            .matches("/.well-known/acme-challenge/")
            .count()
    };
    assert!(
        challenges() >= 1,
        "no HTTP-01 request logged:\n{}",
        levee.stdout()
    );
    // The account key and the certificate key are private.
    let account = std::fs::read_dir(storage.join("accounts"))
        .expect("accounts dir")
        .next()
        .expect("an account")
        .expect("entry")
        .path();
    assert_eq!(mode(&account), 0o600);
    assert_eq!(mode(&storage.join("certs/a.test/key.pem")), 0o600);

    // Now only TLS-ALPN-01, for a second name: answered in the handshake.
    let before = challenges();
    let routes = format!("{ROUTES}\n[[route]]\nhost = \"b.test\"\nrespond = \"hello from b\"\n");
    levee.write_config(&acme.config(levee.dir(), r#"challenges = ["tls-alpn-01"]"#, &routes));
    levee.reload();
    acme.wait_served("b.test", "hello from b", &root, &levee);
    assert_eq!(challenges(), before, "b.test was not validated over HTTP");
    // a.test is still served, and the two are listed.
    assert_eq!(acme.get("a.test", &root).stdout, b"hello from a");
    let out = acme.ctl(&["certs"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for want in ["a.test", "b.test", "acme", "Pebble Intermediate", "ok "] {
        assert!(table.contains(want), "`{want}` missing from:\n{table}");
    }
    let expiry = "levee_tls_certificate_expiry_seconds{name=\"a.test\",source=\"acme\"}";
    assert!(acme.metric(expiry) > 1e9, "no expiry metric");
    // And among the certificates in use the dashboard shows, by the file
    // it is kept in.
    let in_use = format!(
        "levee_tls_certificate_expiry_timestamp_seconds{{path=\"{}\",names=\"a.test\"}}",
        storage.join("certs/a.test/cert.pem").display()
    );
    assert!(acme.metric(&in_use) > 1e9, "a.test not among those in use");
    assert_eq!(acme.metric("levee_acme_issued_total"), 2.0);

    // OCSP stapling applies to them too: a response put beside the
    // certificate is stapled from the next reload. (Made for a test CA:
    // stapling sends what it is given, and Pebble's responder is off.)
    certs::ca(levee.dir(), "ca");
    certs::leaf(levee.dir(), "ca", "x", "x", &["x.test"]);
    let response = certs::ocsp(levee.dir(), "ca", "x");
    std::fs::copy(response, storage.join("certs/a.test/ocsp.der")).expect("staple");
    let status = || {
        let out = Command::new("openssl")
            .args(["s_client", "-status", "-servername", "a.test", "-connect"])
            .arg(format!("127.0.0.1:{}", acme.tls))
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(status().contains("OCSP response: no response sent"));
    levee.reload();
    let stapled = poll(Duration::from_secs(10), || {
        let s = status();
        s.contains("OCSP Response Status: successful").then_some(s)
    });
    assert!(stapled.is_some(), "no staple after reload:\n{}", status());
}

#[test]
fn renews_near_expiry_without_dropping_a_connection() {
    let setup = LeveeSetup::new();
    // 30-second certificates: renewal is due at two thirds, 20 s in.
    let acme = Acme::start(&setup, &[], Some(30));
    let config = acme.config(setup.dir.path(), "", ROUTES);
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    acme.wait_served("a.test", "hello from a", &root, &levee);
    let first = served_serial(acme.tls, "a.test", &root).expect("a serial");
    // One connection, a request a second, across the renewal.
    let mut client = Command::new("python3")
        .arg(script())
        .args([
            "hold",
            "a.test",
            &acme.tls.to_string(),
            &root.display().to_string(),
            "45",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let renewed = poll(Duration::from_secs(60), || {
        served_serial(acme.tls, "a.test", &root).filter(|s| *s != first)
    });
    let renewed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let holding = matches!(client.try_wait(), Ok(None));
    let status = client.wait().expect("client");
    let lines: Vec<String> = BufReader::new(client.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(renewed.is_some(), "not renewed:\n{}", levee.stderr());
    assert!(holding, "the renewal came after the held connection ended");
    assert!(status.success(), "the held connection failed: {lines:?}");
    // The held connection kept the certificate it started with, and was
    // answered after the renewal too.
    assert_eq!(lines[0], format!("serial {first}"));
    let after = lines
        .iter()
        .filter_map(|l| l.split(' ').nth(2)?.parse::<f64>().ok())
        .filter(|t| *t > renewed_at)
        .count();
    assert!(after >= 3, "{after} answers after the renewal: {lines:?}");
}

#[test]
fn a_failing_ca_leaves_the_certificate_in_use_logged_and_counted() {
    let setup = LeveeSetup::new();
    let mut acme = Acme::start(&setup, &[], None);
    let config = acme.config(setup.dir.path(), "", ROUTES);
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    acme.wait_served("a.test", "hello from a", &root, &levee);
    let serial = served_serial(acme.tls, "a.test", &root).expect("a serial");

    // A stopped CA.
    acme.pebble.stop();
    let out = acme.ctl(&["certs", "renew", "a.test"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "renewal without a CA succeeded");
    assert!(said.contains("cannot reach the CA"), "{said}");
    assert!(levee.wait_stderr("certificate not obtained", Duration::from_secs(10)));
    assert_eq!(acme.metric("levee_acme_failures_total"), 1.0);
    assert_eq!(
        served_serial(acme.tls, "a.test", &root),
        Some(serial.clone())
    );

    // A CA that rejects every nonce (Pebble's error injection). Restarted,
    // it has forgotten levee's account: the first attempt says so (and
    // levee drops the account), the second makes a new one and is refused.
    acme.pebble
        .restart_with(&[("PEBBLE_WFE_NONCEREJECT", "100")]);
    let out = acme.ctl(&["certs", "renew", "a.test"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("accountDoesNotExist"), "{said}");
    let out = acme.ctl(&["certs", "renew", "a.test"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "renewal with nonces rejected succeeded"
    );
    assert!(
        said.contains("the CA refused") && said.contains("badNonce"),
        "{said}"
    );
    assert_eq!(acme.metric("levee_acme_failures_total"), 3.0);
    // The certificate in use stays, and the table says what happened.
    assert_eq!(served_serial(acme.tls, "a.test", &root), Some(serial));
    let table = String::from_utf8_lossy(&acme.ctl(&["certs"]).stdout).into_owned();
    assert!(table.contains("FAILED"), "{table}");
}

#[test]
fn check_refuses_what_run_would() {
    let setup = LeveeSetup::new();
    let path = setup.config_path();
    let config = format!(
        r#"[[listener]]
address = "127.0.0.1:{port}"
tls = "auto"

[acme]
ca_root = "{missing}"
names = ["*.wild.test"]
storage = "{storage}"

[[route]]
respond = "x"
"#,
        port = setup.port,
        missing = setup.dir.join("nope.pem").display(),
        storage = setup.dir.join("acme").display(),
    );
    std::fs::write(&path, config).expect("config");
    let out = levee_cmd(&["check", "-c", &path.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains(":7:10: acme.names[0]: `*.wild.test` is a wildcard"),
        "{text}"
    );
    // With [fleet], the key that seals private keys in Redis is needed.
    std::fs::write(
        &path,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:{}\"\ntls = \"auto\"\n[fleet]\nname = \"f\"\n\
             redis = \"127.0.0.1:6379\"\n[[route]]\nrespond = \"x\"\n",
            setup.port
        ),
    )
    .expect("config");
    let out = levee_cmd(&["check", "-c", &path.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            ":3:7: listener[0].tls: with [fleet], automatic certificates need an [acme] section"
        ),
        "{text}"
    );
}

/// A wildcard by DNS-01: the TXT record written by an RFC 2136 update
/// (TSIG-signed) to BIND, which Pebble asks.
#[test]
fn obtains_a_wildcard_by_dns01_through_an_rfc2136_update() {
    let named = Named::start("wild.test");
    let setup = LeveeSetup::new();
    let acme = Acme::start_with(&setup, Some(named.addr()), |_| {});
    let extra = format!(
        "names = [\"*.wild.test\"]\n[acme.dns]\nserver = \"{}\"\nzone = \"wild.test\"\n\
         tsig_key = \"{TSIG_KEY}\"\ntsig_secret_file = \"{}\"\n",
        named.addr(),
        named.secret_file.display()
    );
    let config = acme.config(setup.dir.path(), &extra, "[[route]]\nrespond = \"wild\"\n");
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    let served = poll(Duration::from_secs(90), || {
        let out = get_at(acme.tls, "x.wild.test", &root);
        (out.status.success() && out.stdout == b"wild").then_some(())
    });
    assert!(
        served.is_some(),
        "no wildcard:\n{}\nnamed:\n{}\npebble:\n{}",
        levee.stderr(),
        named.log(),
        acme.pebble.log()
    );
    // Any one label under it, with the same certificate.
    assert_eq!(get_at(acme.tls, "other.wild.test", &root).stdout, b"wild");
    // BIND took the update and its removal, both signed.
    let log = named.log();
    assert!(
        log.contains(
            "updating zone 'wild.test/IN': adding an RR at '_acme-challenge.wild.test' TXT"
        ),
        "{log}"
    );
    assert!(
        log.contains("deleting an RR at _acme-challenge.wild.test TXT"),
        "{log}"
    );
}

/// A CA that requires External Account Binding, and an RSA key.
#[test]
fn binds_the_account_when_the_ca_requires_it_and_makes_rsa_keys() {
    let setup = LeveeSetup::new();
    // A base64url HMAC key, as a CA hands it out.
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let acme = Acme::start_with(&setup, None, |o| {
        o.eab = Some(("kid-levee", key));
        o.env = &[("PEBBLE_VA_ALWAYS_VALID", "1")];
    });
    let hmac = setup.dir.join("eab.key");
    std::fs::write(&hmac, format!("{key}\n")).expect("eab key");
    let extra = format!(
        "eab_kid = \"kid-levee\"\neab_hmac_file = \"{}\"\nkey_type = \"rsa-2048\"\n",
        hmac.display()
    );
    let config = acme.config(setup.dir.path(), &extra, ROUTES);
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    acme.wait_served("a.test", "hello from a", &root, &levee);
    let pem = std::fs::read_to_string(levee.dir().join("acme/certs/a.test/key.pem")).expect("key");
    let out = Command::new("openssl")
        .args(["pkey", "-noout", "-text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(pem.as_bytes())?;
            c.wait_with_output()
        })
        .expect("openssl pkey");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Private-Key: (2048 bit"), "{text}");
    assert!(text.contains("publicExponent"), "an RSA key: {text}");
}

/// Files and obtained certificates on one listener: a name a file covers
/// is served from the file and never ordered; the others are obtained.
/// Both show in `levee ctl certs` and in the expiry metric. And the order
/// limit per name holds a forced renewal back.
#[test]
fn files_and_obtained_certificates_mix_on_one_listener() {
    let setup = LeveeSetup::new();
    let acme = Acme::start(&setup, &[("PEBBLE_VA_ALWAYS_VALID", "1")], None);
    let dir = setup.dir.path().to_owned();
    certs::ca(&dir, "ca");
    let (pem, key) = certs::leaf(&dir, "ca", "f", "f.test", &["f.test"]);
    let table = format!(
        "[listener.tls]\nauto = true\n[[listener.tls.certs]]\ncert = \"{}\"\nkey = \"{}\"\nnames = [\"f.test\"]\n",
        pem.display(),
        key.display()
    );
    let routes = format!("{ROUTES}\n[[route]]\nhost = \"f.test\"\nrespond = \"hello from f\"\n");
    let config = acme
        .config(&dir, "max_orders_per_name = 1", &routes)
        .replacen("tls = \"auto\"\n", &table, 1);
    let levee = setup.start(&config);
    let root = acme.pebble.issuing_root();
    acme.wait_served("a.test", "hello from a", &root, &levee);
    let out = get_at(acme.tls, "f.test", &dir.join("ca.pem"));
    assert_eq!(out.stdout, b"hello from f", "{out:?}");
    assert_eq!(acme.pebble.orders(), 1, "f.test must not be ordered");
    let table = String::from_utf8_lossy(&acme.ctl(&["certs"]).stdout).into_owned();
    assert!(
        table.contains("a.test") && table.contains("f.pem"),
        "{table}"
    );
    assert!(
        table.contains(" file ") && table.contains(" acme "),
        "{table}"
    );
    let file = format!(
        "levee_tls_certificate_expiry_seconds{{name=\"{}\",source=\"file\"}}",
        pem.display()
    );
    assert!(acme.metric(&file) > 1e9, "no expiry for the file");

    // One order per name a day: a renewal asked for now is put off, and
    // nothing more reaches the CA.
    let out = acme.ctl(&["certs", "renew", "a.test"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("by the order limits"), "{said}");
    assert_eq!(acme.metric("levee_acme_held_back_total"), 1.0);
    assert_eq!(acme.pebble.orders(), 1);
}
