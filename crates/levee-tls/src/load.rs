//! Reading PEM files and building a rustls server config from them.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::auto::Resolver;
use crate::sni::ByName;
use crate::{CertSettings, Settings, TlsError};

/// The one crypto provider: ring, so no C toolchain beyond cc is needed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

pub(crate) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// One certificate chain with its signing key and stapled OCSP response.
pub(crate) fn certified(
    c: &CertSettings,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certs(&c.cert)?;
    let key = provider
        .key_provider
        .load_private_key(key(&c.key)?)
        .map_err(|source| TlsError::Key {
            path: c.key.clone(),
            source,
        })?;
    let mut certified = CertifiedKey::new(chain, key);
    // A key that does not match its certificate would fail every
    // handshake; refuse it here, where the file can be named.
    if certified.keys_match().is_err() {
        return Err(TlsError::Mismatch {
            cert: c.cert.clone(),
            key: c.key.clone(),
        });
    }
    if let Some(ocsp) = &c.ocsp {
        certified.ocsp = Some(read(ocsp)?);
    }
    let certified = Arc::new(certified);
    crate::expiry::record(&certified, c.cert.clone(), c.names.clone());
    Ok(certified)
}

/// A built server config, and for an `auto` listener its certificate
/// choice (to tell whether a name has a certificate, for on-demand TLS).
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) auto: Option<Arc<Resolver>>,
}

/// A certificate chain and key held in memory (PEM), as levee obtained them
/// (crates/levee-acme), with an OCSP response to staple if there is one.
pub fn certified_pem(
    chain: &[u8],
    key: &[u8],
    ocsp: Option<Vec<u8>>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let bad = |reason: String| TlsError::Material { reason };
    let chain = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(bad("no certificate in the chain".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad(format!("private key: {e}")))?;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad(format!("private key: {e}")))?;
    let mut certified = CertifiedKey::new(chain, key);
    if certified.keys_match().is_err() {
        return Err(bad("the key does not match the certificate".into()));
    }
    certified.ocsp = ocsp;
    Ok(Arc::new(certified))
}

/// Builds the server config for `settings`; `ticketer` is shared across
/// builds so tickets issued before a reload still resume after it.
pub(crate) fn server_config(
    settings: &Settings,
    ticketer: &Arc<dyn ProducesTickets>,
) -> Result<Loaded, TlsError> {
    let provider = provider();
    let mut loaded = Vec::with_capacity(settings.certs.len());
    for c in &settings.certs {
        loaded.push((certified(c, &provider)?, &c.names));
    }
    let by_name = match loaded.first() {
        Some((default, _)) => {
            let mut by_name = ByName::new(default.clone());
            for (key, names) in &loaded {
                for name in names.iter() {
                    by_name.insert(name, key.clone());
                }
            }
            Some(by_name)
        }
        None if settings.auto => None,
        None => return Err(TlsError::NoCertificates),
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in certs(path)? {
                roots.add(ca).map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let (mut config, auto) = match (by_name, settings.auto) {
        (Some(by_name), false) => (builder.with_cert_resolver(Arc::new(by_name)), None),
        (files, _) => {
            let resolver = Arc::new(Resolver { files });
            (builder.with_cert_resolver(resolver.clone()), Some(resolver))
        }
    };
    config.alpn_protocols = settings
        .alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    config.ticketer = ticketer.clone();
    Ok(Loaded {
        config: Arc::new(config),
        auto,
    })
}

/// The config of one TLS-ALPN-01 handshake (RFC 8737 §3): the challenge
/// certificate, and `acme-tls/1` the only protocol.
pub(crate) fn challenge_config(cert: Arc<CertifiedKey>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(One(cert)));
    config.alpn_protocols = vec![crate::challenge::ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Always the same certificate, whatever the client asks.
#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for One {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
