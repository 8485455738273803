//! Certificates are made at test time with rcgen: one CA, leaves it signs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sni::ByName;
use crate::{Acceptor, CertSettings, Settings, TlsError};

mod connector;

struct Ca {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca() -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "levee test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let issuer = rcgen::Issuer::new(params, key);
    Ca { cert, issuer }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("levee-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `{stem}.pem` and `{stem}.key` for a leaf with `names`, signed by `ca`.
fn leaf(ca: &Ca, dir: &Path, stem: &str, names: &[&str]) -> CertSettings {
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    CertSettings {
        cert: c,
        key: k,
        names: names.iter().map(|n| n.to_string()).collect(),
        ocsp: None,
    }
}

fn settings(certs: Vec<CertSettings>) -> Settings {
    Settings {
        certs,
        client_ca: None,
        alpn: vec!["http/1.1".into()],
        auto: false,
    }
}

/// Handshakes with `acceptor` as `sni`; returns the leaf the server sent and the ALPN.
async fn handshake(acceptor: Arc<Acceptor>, ca: &Ca, sni: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(crate::load::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut s = acceptor.accept(b).await.unwrap();
        s.write_all(b"ok").await.unwrap();
        s.shutdown().await.unwrap();
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut c = connector.connect(name, a).await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ok");
    server.await.unwrap();
    let (_, conn) = c.get_ref();
    let leaf = conn.peer_certificates().unwrap()[0].to_vec();
    (leaf, conn.alpn_protocol().map(|p| p.to_vec()))
}

fn der(settings: &CertSettings) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_file(&settings.cert)
        .unwrap()
        .to_vec()
}

#[test]
fn sni_prefers_exact_then_wildcard_then_default() {
    let mut m = ByName::new("default");
    m.insert("*.example.com", "wild");
    m.insert("www.example.com", "www");
    m.insert("WWW.example.com", "second");
    assert_eq!(*m.select(Some("www.example.com")), "www");
    assert_eq!(*m.select(Some("WWW.Example.COM.")), "www");
    assert_eq!(*m.select(Some("api.example.com")), "wild");
    // A wildcard covers exactly one label.
    assert_eq!(*m.select(Some("a.b.example.com")), "default");
    assert_eq!(*m.select(Some("example.com")), "default");
    assert_eq!(*m.select(None), "default");
}

#[test]
fn bad_files_are_named() {
    let d = dir("bad");
    let ca = ca();
    let good = leaf(&ca, &d, "good", &["a.test"]);
    let other = leaf(&ca, &d, "other", &["b.test"]);

    let missing = CertSettings {
        cert: d.join("nope.pem"),
        ..good.clone()
    };
    let e = Acceptor::check(&settings(vec![missing])).unwrap_err();
    assert!(matches!(e, TlsError::Read { .. }), "{e}");
    assert!(e.to_string().contains("nope.pem"), "{e}");

    std::fs::write(d.join("junk.pem"), "not a certificate\n").unwrap();
    let junk = CertSettings {
        cert: d.join("junk.pem"),
        ..good.clone()
    };
    let e = Acceptor::check(&settings(vec![junk])).unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
    assert!(e.to_string().contains("junk.pem"), "{e}");

    // A certificate where the key should be.
    let no_key = CertSettings {
        key: good.cert.clone(),
        ..good.clone()
    };
    let e = Acceptor::check(&settings(vec![no_key])).unwrap_err();
    assert!(matches!(e, TlsError::NoKey { .. }), "{e}");

    let mismatched = CertSettings {
        key: other.key.clone(),
        ..good.clone()
    };
    let e = Acceptor::check(&settings(vec![mismatched])).unwrap_err();
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("other.key"), "{e}");

    assert!(matches!(
        Acceptor::check(&settings(vec![])).unwrap_err(),
        TlsError::NoCertificates
    ));
    let bad_ca = Settings {
        client_ca: Some(d.join("junk.pem")),
        ..settings(vec![good.clone()])
    };
    assert!(
        Acceptor::check(&bad_ca)
            .unwrap_err()
            .to_string()
            .contains("junk.pem")
    );
    Acceptor::check(&settings(vec![good])).unwrap();
}

#[tokio::test]
async fn handshake_selects_certificate_by_sni() {
    let d = dir("sni");
    let ca = ca();
    let a = leaf(&ca, &d, "a", &["a.test"]);
    let b = leaf(&ca, &d, "b", &["b.test", "*.b.test"]);
    let acceptor = Arc::new(Acceptor::new(settings(vec![a.clone(), b.clone()])).unwrap());
    let (got, alpn) = handshake(acceptor.clone(), &ca, "a.test").await;
    assert_eq!(got, der(&a));
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        handshake(acceptor.clone(), &ca, "x.b.test").await.0,
        der(&b)
    );
    assert_eq!(handshake(acceptor, &ca, "b.test").await.0, der(&b));
}

#[tokio::test]
async fn refresh_keeps_old_certificate_on_error_and_takes_a_good_one() {
    let d = dir("refresh");
    let ca = ca();
    let a = leaf(&ca, &d, "a", &["a.test"]);
    let acceptor = Arc::new(Acceptor::new(settings(vec![a.clone()])).unwrap());
    let first = der(&a);
    assert!(!acceptor.refresh().unwrap(), "nothing changed");

    // A broken certificate: reported, the old one still served.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&a.cert, "garbage").unwrap();
    bump(&a.cert);
    assert!(acceptor.refresh().is_err());
    assert_eq!(handshake(acceptor.clone(), &ca, "a.test").await.0, first);

    // A new, good certificate in the same files: served from now on.
    let renewed = leaf(&ca, &d, "a", &["a.test"]);
    bump(&renewed.cert);
    assert!(acceptor.refresh().unwrap());
    let second = der(&renewed);
    assert_ne!(first, second);
    assert_eq!(handshake(acceptor.clone(), &ca, "a.test").await.0, second);

    // replace() with bad settings keeps the current config too.
    let bad = settings(vec![CertSettings {
        cert: d.join("missing.pem"),
        ..renewed.clone()
    }]);
    assert!(acceptor.replace(bad).is_err());
    assert_eq!(handshake(acceptor, &ca, "a.test").await.0, second);
}

/// Moves a file's mtime forward, so a change within the clock's
/// granularity is still seen.
fn bump(path: &Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(1 + rand_secs());
    f.set_modified(later).unwrap();
}

fn rand_secs() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
