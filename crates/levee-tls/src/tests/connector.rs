//! The client side against levee's own acceptor.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ca, dir, leaf, settings};
use crate::{Acceptor, ClientSettings, Connector, Settings};

/// Connects through `connector` as `name`; returns whether the server
/// side's handshake succeeded and the client read its greeting.
async fn exchange(acceptor: Acceptor, connector: &Connector, name: &str) -> (bool, bool) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let Ok(mut s) = acceptor.accept(b).await else {
            return false;
        };
        let _ = s.write_all(b"hi").await;
        let _ = s.shutdown().await;
        true
    });
    let client = async {
        let mut c = connector.connect(name, a).await.ok()?;
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.ok()?;
        Some(got)
    }
    .await;
    let served = server.await.unwrap();
    (served, client.as_deref() == Some(&b"hi"[..]))
}

#[tokio::test]
async fn verifies_the_server_against_the_configured_ca_and_name() {
    let d = dir("connector");
    let ca = ca();
    let a = leaf(&ca, &d, "a", &["a.test"]);
    std::fs::write(d.join("ca.pem"), ca.cert.pem()).unwrap();
    let connector = Connector::new(&ClientSettings {
        ca: Some(d.join("ca.pem")),
        ..ClientSettings::default()
    })
    .unwrap();
    let acceptor = || Acceptor::new(settings(vec![a.clone()])).unwrap();
    assert_eq!(
        exchange(acceptor(), &connector, "a.test").await,
        (true, true)
    );
    // The wrong name, or a CA that did not sign it: refused by the client.
    assert!(!exchange(acceptor(), &connector, "b.test").await.1);
    let other = super::ca();
    std::fs::write(d.join("other.pem"), other.cert.pem()).unwrap();
    let stranger = Connector::new(&ClientSettings {
        ca: Some(d.join("other.pem")),
        ..ClientSettings::default()
    })
    .unwrap();
    assert!(!exchange(acceptor(), &stranger, "a.test").await.1);
}

#[tokio::test]
async fn presents_a_client_certificate_when_configured() {
    let d = dir("connector-mtls");
    let ca = ca();
    let a = leaf(&ca, &d, "a", &["a.test"]);
    let me = leaf(&ca, &d, "me", &["me.client"]);
    std::fs::write(d.join("ca.pem"), ca.cert.pem()).unwrap();
    let acceptor = || {
        Acceptor::new(Settings {
            client_ca: Some(d.join("ca.pem")),
            ..settings(vec![a.clone()])
        })
        .unwrap()
    };
    let with = Connector::new(&ClientSettings {
        ca: Some(d.join("ca.pem")),
        client_cert: Some((me.cert.clone(), me.key.clone())),
        ..ClientSettings::default()
    })
    .unwrap();
    assert_eq!(exchange(acceptor(), &with, "a.test").await, (true, true));
    let without = Connector::new(&ClientSettings {
        ca: Some(d.join("ca.pem")),
        ..ClientSettings::default()
    })
    .unwrap();
    assert!(!exchange(acceptor(), &without, "a.test").await.0);
}

#[test]
fn system_roots_load_and_bad_files_are_named() {
    // Needs the ca-certificates package (scripts/test installs it).
    Connector::new(&ClientSettings::default()).unwrap();
    let d = dir("connector-bad");
    std::fs::write(d.join("junk.pem"), "junk").unwrap();
    let e = Connector::new(&ClientSettings {
        ca: Some(d.join("junk.pem")),
        ..ClientSettings::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("junk.pem"), "{e}");
}
