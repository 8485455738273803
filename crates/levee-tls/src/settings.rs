//! What a listener asks of TLS, as file paths: the part both front ends
//! fill from their config.

use std::path::{Path, PathBuf};

/// One certificate chain and its key, and the server names it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSettings {
    /// PEM: the leaf certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM: a PKCS#8, PKCS#1 or SEC1 private key.
    pub key: PathBuf,
    /// Exact names (`www.example.com`) and wildcards (`*.example.com`), lower case.
    pub names: Vec<String>,
    /// A DER OCSP response to staple, as fetched by `openssl ocsp -respout`.
    pub ocsp: Option<PathBuf>,
}

/// A listener's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The first one is the default, for clients that send no SNI or an unknown name.
    pub certs: Vec<CertSettings>,
    /// PEM CA certificates; when given, clients must present a certificate they signed.
    pub client_ca: Option<PathBuf>,
    /// ALPN protocol names in preference order, such as `http/1.1`.
    pub alpn: Vec<String>,
    /// `tls = "auto"`: also serve the certificates levee obtains itself
    /// (crate::auto), answer TLS-ALPN-01 and, when enabled, on-demand TLS.
    /// `certs` may then be empty.
    pub auto: bool,
}

impl Settings {
    /// Every file these settings read, to watch for changes.
    pub fn files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = Vec::new();
        for c in &self.certs {
            files.push(&c.cert);
            files.push(&c.key);
            if let Some(o) = &c.ocsp {
                files.push(o);
            }
        }
        if let Some(ca) = &self.client_ca {
            files.push(ca);
        }
        files
    }
}
