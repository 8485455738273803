//! A CA that answers garbage: malformed JSON, a wrong content type, a body
//! that is too large or never ends. Each must give a clear error naming
//! the CA's URL, never a panic or a hang.
//!
//! An in-process fake CA, not Pebble: Pebble cannot be made to send
//! garbage. It speaks TLS with a certificate made here by rcgen, and
//! answers every request with one canned response.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{Account, NewAccount};
use levee_acme::client::CaClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `response` (head and body, as bytes) to every connection; returns
/// the directory URL and the root to trust.
async fn fake_ca(response: Vec<u8>, endless: bool) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let response = response.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(&response).await;
                if endless {
                    let chunk = vec![b'x'; 64 * 1024];
                    while tls.write_all(&chunk).await.is_ok() {}
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://localhost:{port}/dir"), cert.pem())
}

async fn create(response: &[u8], endless: bool) -> String {
    let (url, root) = fake_ca(response.to_vec(), endless).await;
    let client = CaClient::new(Some(root.as_bytes()), Duration::from_secs(5)).expect("client");
    let new = NewAccount {
        contact: &[],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let e = match Account::builder_with_http(Box::new(client))
        .create(&new, url, None)
        .await
    {
        Ok(_) => panic!("an account from a garbage CA"),
        Err(e) => e,
    };
    levee_acme::AcmeError::from(e).to_string()
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let e = create(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"newNon",
        false,
    )
    .await;
    assert!(e.contains("not the JSON expected"), "{e}");
}

#[tokio::test]
async fn a_wrong_content_type_is_refused_before_parsing() {
    let body = "<html>upstream proxy error</html>";
    let e = create(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
        false,
    )
    .await;
    assert!(e.contains("unexpected Content-Type text/html"), "{e}");
    assert!(
        e.contains("https://localhost:"),
        "the CA's URL is named: {e}"
    );
}

#[tokio::test]
async fn a_huge_body_is_cut_off() {
    let len = 10 * 1024 * 1024;
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes();
    response.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    let e = create(&response, true).await;
    assert!(e.contains("larger than 256 KiB"), "{e}");
}

#[tokio::test]
async fn a_body_that_never_ends_hits_the_deadline_or_the_cap() {
    let e = create(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
    )
    .await;
    // The chunked body never comes: the request's deadline ends it.
    assert!(
        e.contains("no complete answer within") || e.contains("reading the answer"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_ca_names_itself() {
    let client = CaClient::new(None, Duration::from_secs(5)).unwrap();
    let new = NewAccount {
        contact: &[],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    // Port 1 on loopback: nothing listens there.
    let e = Account::builder_with_http(Box::new(client))
        .create(&new, "https://127.0.0.1:1/dir".into(), None)
        .await
        .err()
        .expect("no CA there");
    let e = levee_acme::AcmeError::from(e).to_string();
    assert!(
        e.contains("cannot reach the CA at https://127.0.0.1:1/dir"),
        "{e}"
    );
}
