//! What can go wrong loading TLS material. Each error names the file at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}`: not valid PEM: {source}", path.display())]
    Pem {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("`{}`: no certificate in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error("`{}`: no private key in it", path.display())]
    NoKey { path: PathBuf },
    #[error("`{}`: unusable private key: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("`{}` does not hold the key of `{}`", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("`{}`: unusable client CA: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    #[error("unusable certificate: {reason}")]
    Material { reason: String },
    #[error("no certificate configured")]
    NoCertificates,
    #[error("no trusted root certificates found on this system; configure a CA bundle")]
    NoSystemRoots,
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// The file at fault, when one is (the key's, for a mismatch).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            TlsError::Read { path, .. }
            | TlsError::Pem { path, .. }
            | TlsError::NoCertificate { path }
            | TlsError::NoKey { path }
            | TlsError::Key { path, .. }
            | TlsError::ClientCa { path, .. } => Some(path),
            TlsError::Mismatch { key, .. } => Some(key),
            TlsError::NoCertificates
            | TlsError::Material { .. }
            | TlsError::NoSystemRoots
            | TlsError::Rustls(_) => None,
        }
    }
}
