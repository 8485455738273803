//! A listener's TLS settings (`[listener.tls]`). The files are named here
//! and read by `levee-tls`; each keeps where it was written so a bad file
//! is reported at its key.

use std::path::PathBuf;
use std::time::Duration;

/// Default `tls.handshake_timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// In file order; the first is the default certificate.
    pub certs: Vec<TlsCert>,
    /// When set, clients must present a certificate signed by one of these CAs.
    pub client_ca: Option<FileRef>,
    /// ALPN protocol names offered, in preference order.
    pub alpn: Vec<String>,
    /// A handshake not done by then is dropped.
    pub handshake_timeout: Duration,
    /// `Strict-Transport-Security: max-age` added to every response; none when unset.
    pub hsts: Option<Duration>,
    /// `tls = "auto"` or `auto = true`: also serve the certificates levee
    /// obtains itself (`[acme]`); `certs` may then be empty.
    pub auto: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCert {
    pub cert: FileRef,
    pub key: FileRef,
    /// Lower-case exact names and `*.` wildcards this certificate is chosen for.
    pub names: Vec<String>,
    pub ocsp: Option<FileRef>,
}

/// A file named in the config, with where it was named. Two references
/// are equal when they name the same file: where they were written is only
/// for messages (so a config written out and read back stays equal).
#[derive(Debug, Clone, Eq)]
pub struct FileRef {
    pub path: PathBuf,
    /// The key path, such as `listener[0].tls.certs[1].key`.
    pub key: String,
    /// 1-based; 0 when the config was built in code.
    pub line: usize,
    pub column: usize,
}

impl PartialEq for FileRef {
    fn eq(&self, other: &FileRef) -> bool {
        self.path == other.path
    }
}

/// TLS to an upstream's servers (`[upstream.NAME.tls]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamTls {
    /// PEM CA certificates to verify servers with; the system's roots when `None`.
    pub ca: Option<FileRef>,
    /// The name sent as SNI and checked in the certificate; each server's
    /// configured host when `None`.
    pub server_name: Option<String>,
    /// A client certificate chain and its key, both or neither.
    pub client_cert: Option<FileRef>,
    pub client_key: Option<FileRef>,
}
