//! TLS listeners as the control thread sees them: their settings from the
//! config, checking the files they name, and reloading them.
//!
//! Certificates are re-read on `levee reload` and when a file's mtime
//! changes ([`WATCH_EVERY`]); each listener's acceptor swaps its config
//! whole, so open connections keep theirs and a bad file keeps the old one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use levee_config::{Config, ConfigError, Listener};
use levee_http::conn::ListenerTls;
use levee_tls::{Acceptor, CertSettings, Settings, TlsError};

/// How often the control thread looks at certificate files' mtimes: a
/// `stat` per file, cheap enough to notice a renewal within seconds.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What `levee-tls` needs, from the validated config.
pub fn settings(tls: &levee_config::ListenerTls) -> Settings {
    Settings {
        certs: tls
            .certs
            .iter()
            .map(|c| CertSettings {
                cert: c.cert.path.clone(),
                key: c.key.path.clone(),
                names: c.names.clone(),
                ocsp: c.ocsp.as_ref().map(|o| o.path.clone()),
            })
            .collect(),
        client_ca: tls.client_ca.as_ref().map(|c| c.path.clone()),
        alpn: tls.alpn.clone(),
        auto: tls.auto,
    }
}

/// Loads every TLS file the config names; each problem is reported at the
/// key that names the file (`levee check`, start-up).
pub fn check(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (i, l) in config.listeners.iter().enumerate() {
        if let Some(tls) = &l.tls
            && let Err(e) = Acceptor::check(&settings(tls))
        {
            errors.push(located(config, i, tls, &e));
        }
    }
    errors
}

/// Places a TLS error at the config key naming the file at fault.
fn located(
    config: &Config,
    index: usize,
    tls: &levee_config::ListenerTls,
    e: &TlsError,
) -> ConfigError {
    let files = tls
        .certs
        .iter()
        .flat_map(|c| [Some(&c.cert), Some(&c.key), c.ocsp.as_ref()])
        .chain([tls.client_ca.as_ref()])
        .flatten();
    let at = e
        .path()
        .and_then(|p| files.into_iter().find(|f| f.path == p));
    ConfigError {
        file: config
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from(levee_config::BUILTIN_SOURCE)),
        line: at.map_or(0, |f| f.line),
        column: at.map_or(0, |f| f.column),
        key: at.map_or_else(|| format!("listener[{index}].tls"), |f| f.key.clone()),
        message: e.to_string(),
    }
}

/// The TLS acceptors of the listeners levee has open, by address.
#[derive(Debug, Default)]
pub struct TlsListeners {
    acceptors: HashMap<SocketAddr, Arc<Acceptor>>,
}

impl TlsListeners {
    /// The TLS step for listener `l`, opening or reloading (`levee reload`)
    /// its acceptor; `Ok(None)` for plain TCP. An acceptor that already
    /// exists and fails to reload keeps its old certificates and is still
    /// returned; only a new one that cannot load is an error.
    pub fn update(&mut self, l: &Listener) -> Result<Option<ListenerTls>, TlsError> {
        let Some(tls) = &l.tls else {
            self.acceptors.remove(&l.address);
            return Ok(None);
        };
        let acceptor = match self.acceptors.get(&l.address) {
            Some(acceptor) => {
                match acceptor.replace(settings(tls)) {
                    Ok(()) => tracing::info!(listener = %l.address, "TLS certificates reloaded"),
                    Err(e) => tracing::error!(
                        listener = %l.address,
                        error = %e,
                        "TLS reload failed; the old certificates stay in use"
                    ),
                }
                acceptor.clone()
            }
            None => {
                let acceptor = Arc::new(Acceptor::new(settings(tls))?);
                self.acceptors.insert(l.address, acceptor.clone());
                acceptor
            }
        };
        Ok(Some(ListenerTls {
            acceptor,
            handshake_timeout: tls.handshake_timeout,
            hsts: tls.hsts.map(|d| d.as_secs()),
        }))
    }

    pub fn close(&mut self, addr: SocketAddr) {
        self.acceptors.remove(&addr);
    }

    /// Reloads the listeners whose files changed since they were loaded.
    pub fn refresh(&self) {
        for (addr, acceptor) in &self.acceptors {
            match acceptor.refresh() {
                Ok(true) => {
                    tracing::info!(listener = %addr, "TLS files changed; certificates reloaded")
                }
                Ok(false) => {}
                Err(e) => tracing::error!(
                    listener = %addr,
                    error = %e,
                    "TLS files changed but do not load; the old certificates stay in use"
                ),
            }
        }
    }
}
