//! The client side: TLS to servers levee connects to (`https://`
//! upstreams, and later mail backends). Server certificates are verified
//! against a configured CA bundle or, without one, the system's roots, for
//! the name given at connect time (also sent as SNI).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{TlsError, load};

pub use tokio_rustls::client::TlsStream as ClientTlsStream;

/// How to connect to one group of servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// PEM CA certificates to trust; `None` for the system's roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and key, for servers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocols to offer, such as `http/1.1`.
    pub alpn: Vec<String>,
}

/// Makes TLS connections with one verified config.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl Connector {
    /// Loads the CA bundle (or the system roots) and the client certificate.
    pub fn new(settings: &ClientSettings) -> Result<Connector, TlsError> {
        let roots = match &settings.ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for ca in load::certs(path)? {
                    roots.add(ca).map_err(|e| TlsError::ClientCa {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                roots
            }
            None => system_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(load::provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots);
        let mut config = match &settings.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = load::certs(cert)?;
                let key_der = load::key(key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|source| TlsError::Key {
                        path: key.clone(),
                        source,
                    })?
            }
        };
        config.alpn_protocols = settings
            .alpn
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        Ok(Connector {
            config: Arc::new(config),
        })
    }

    /// Runs the handshake on `io`, verifying the server's certificate for
    /// `server_name` (a DNS name or an IP address). The caller bounds it.
    pub async fn connect<IO>(
        &self,
        server_name: &str,
        io: IO,
    ) -> std::io::Result<ClientTlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, io)
            .await
    }
}

/// The operating system's trusted roots; certificates it cannot parse are
/// skipped, and none at all is an error.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots)
}
