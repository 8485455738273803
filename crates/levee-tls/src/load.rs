//! Reading PEM files and building a rustls server config from them.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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

/// Builds the server config for `settings`; `ticketer` is shared across
/// builds so tickets issued before a reload still resume after it.
pub(crate) fn server_config(
    settings: &Settings,
    ticketer: &Arc<dyn ProducesTickets>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut loaded = Vec::with_capacity(settings.certs.len());
    for c in &settings.certs {
        loaded.push((certified(c, &provider)?, &c.names));
    }
    let Some((default, _)) = loaded.first() else {
        return Err(TlsError::NoCertificates);
    };
    let mut by_name = ByName::new(default.clone());
    for (key, names) in &loaded {
        for name in names.iter() {
            by_name.insert(name, key.clone());
        }
    }
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
    let mut config = builder.with_cert_resolver(Arc::new(by_name));
    config.alpn_protocols = settings
        .alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    config.ticketer = ticketer.clone();
    Ok(Arc::new(config))
}
