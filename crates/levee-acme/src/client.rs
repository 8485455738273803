//! levee's HTTP client to the CA, under `instant-acme` ([`HttpClient`]),
//! and for on-demand TLS's ask URL.
//!
//! Our own rather than the crate's hyper-rustls one, so that what the CA
//! sends is bounded and checked before anyone parses it: one deadline for
//! the whole exchange, a body cap ([`MAX_BODY`]), and a Content-Type that
//! must be one RFC 8555 uses. A CA that answers garbage (an HTML error
//! page from a proxy, a body that never ends) gives a clear error naming
//! the URL, never a hang or a crash. One HTTP/1.1 connection per request:
//! an ACME client makes a handful of requests a day.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::{AcmeError, one_line};

/// The largest answer accepted from the CA: a certificate chain is a few
/// KiB, a directory or an order less.
pub const MAX_BODY: usize = 256 * 1024;

/// One exchange with the CA, connection to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Content types a CA sends (RFC 8555 §6.2, §7.4.2, RFC 7807).
const ACME_TYPES: &[&str] = &[
    "application/json",
    "application/problem+json",
    "application/pem-certificate-chain",
];

#[derive(Clone)]
pub struct CaClient {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for CaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaClient").finish_non_exhaustive()
    }
}

impl CaClient {
    /// Trusts `roots_pem` (a test CA's root, `[acme] ca_root`) or, without
    /// it, the system's roots.
    pub fn new(roots_pem: Option<&[u8]>, timeout: Duration) -> Result<CaClient, AcmeError> {
        let mut roots = RootCertStore::empty();
        match roots_pem {
            Some(pem) => {
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| AcmeError::Crypto(format!("ca_root: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| AcmeError::Crypto(format!("ca_root: {e}")))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(AcmeError::Crypto(
                "no root certificate to verify the CA with".into(),
            ));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeError::Crypto(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(CaClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout,
        })
    }

    async fn exchange(&self, req: Request<BodyWrapper<Bytes>>) -> Result<BytesResponse, AcmeError> {
        let url = req.uri().to_string();
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| unreachable(&url, e.to_string()))?
            .to_bytes();
        let req = Request::from_parts(parts, Full::new(body));
        let uri = req.uri().clone();
        if uri.scheme_str() != Some("https") {
            return Err(AcmeError::BadAnswer {
                url,
                reason: "the CA's URLs must be https://".into(),
            });
        }
        let (host, port) = host_port(&uri, 443).ok_or_else(|| unreachable(&url, "no host"))?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| unreachable(&url, e.to_string()))?;
        let name =
            ServerName::try_from(host.clone()).map_err(|e| unreachable(&url, e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(&url, format!("TLS: {e}")))?;
        let rsp = send(tls, req, &url).await?;
        let (parts, body) = rsp.into_parts();
        let has_body = parts.status != http::StatusCode::NO_CONTENT;
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| AcmeError::BadAnswer {
                url: url.clone(),
                reason: match e.downcast_ref::<http_body_util::LengthLimitError>() {
                    Some(_) => format!("the answer is larger than {} KiB", MAX_BODY / 1024),
                    None => format!("reading the answer: {e}"),
                },
            })?
            .to_bytes();
        if has_body && !body.is_empty() {
            let media = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                });
            match media {
                Some(m) if ACME_TYPES.contains(&m.as_str()) => {}
                other => {
                    return Err(AcmeError::BadAnswer {
                        url,
                        reason: format!(
                            "unexpected Content-Type {} (status {})",
                            other.map_or_else(|| "(none)".into(), |m| one_line(&m, 80)),
                            parts.status
                        ),
                    });
                }
            }
        }
        Ok(BytesResponse {
            parts,
            body: Box::new(body),
        })
    }
}

impl HttpClient for CaClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let url = req.uri().to_string();
            match tokio::time::timeout(this.timeout, this.exchange(req)).await {
                Ok(Ok(rsp)) => Ok(rsp),
                Ok(Err(e)) => Err(instant_acme::Error::Other(Box::new(e))),
                Err(_) => Err(instant_acme::Error::Other(Box::new(unreachable(
                    &url,
                    format!("no complete answer within {}s", this.timeout.as_secs()),
                )))),
            }
        })
    }
}

fn unreachable(url: &str, reason: impl Into<String>) -> AcmeError {
    AcmeError::Unreachable {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

fn host_port(uri: &Uri, default: u16) -> Option<(String, u16)> {
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), uri.port_u16().unwrap_or(default)))
}

/// Sends `req` on a fresh HTTP/1.1 connection over `io`.
async fn send<IO>(
    io: IO,
    mut req: Request<Full<Bytes>>,
    url: &str,
) -> Result<Response<hyper::body::Incoming>, AcmeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.to_string());
    *req.uri_mut() = path.parse().map_err(|_| unreachable(url, "bad path"))?;
    if let Ok(v) = authority.parse() {
        req.headers_mut().insert(HOST, v);
    }
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| unreachable(url, e.to_string()))?;
    // The connection's driver; it ends when the exchange does (or with
    // the request's deadline, when the caller drops the future).
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(url, e.to_string()))
}

/// Asks on-demand TLS's `ask` service whether `name` may have a
/// certificate: `GET ask?domain=NAME`, 2xx is yes. Plain HTTP: the service
/// runs beside levee.
pub async fn ask(ask: &str, name: &str, timeout: Duration) -> Result<bool, AcmeError> {
    let url = format!("{ask}?domain={name}");
    let work = async {
        let uri: Uri = url.parse().map_err(|_| unreachable(&url, "bad URL"))?;
        let (host, port) = host_port(&uri, 80).ok_or_else(|| unreachable(&url, "no host"))?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| unreachable(&url, e.to_string()))?;
        let req = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header("user-agent", "levee")
            .body(Full::new(Bytes::new()))
            .map_err(|e| unreachable(&url, e.to_string()))?;
        let rsp = send(tcp, req, &url).await?;
        Ok(rsp.status().is_success())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(unreachable(&url, "no answer in time")),
    }
}
