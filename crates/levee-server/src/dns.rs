//! The authoritative DNS server (`[dns]`, docs/dns.md) in levee's life:
//! started after the fleet is joined (its fleet records read the fleet),
//! prepared on reload before anything changes (files loaded, sockets bound
//! beside the running ones) and swapped in with the rest, stopped last.

use levee_config::{Config, ConfigErrors};
use levee_dns::Prepared;
use levee_dns::server::Dns;

use crate::ServerError;

#[derive(Debug, Default)]
pub(crate) struct Service {
    running: Option<Dns>,
}

/// Loads `config`'s `[dns]` and binds its sockets; nothing changes yet.
pub(crate) fn prepare(config: &Config) -> Result<Option<Prepared>, ServerError> {
    levee_dns::prepare(config).map_err(|errors| ServerError::Invalid(ConfigErrors { errors }))
}

impl Service {
    /// Serves what [`prepare`] made ready: replaces the running server
    /// (keeping serials, journals and probe verdicts), starts one, or stops
    /// it when `[dns]` is gone.
    pub(crate) fn apply(&mut self, prepared: Option<Prepared>) -> Result<(), ServerError> {
        let old = self.running.take();
        let Some(prepared) = prepared else {
            if let Some(old) = old {
                old.shut();
                tracing::info!("dns: stopped");
            }
            return Ok(());
        };
        let listen = prepared.config.listen.clone();
        let shared = old.as_ref().map(Dns::shared);
        let new = match Dns::start(prepared, shared) {
            Ok(new) => new,
            Err(e) => {
                // The running server keeps answering on its sockets.
                self.running = old;
                return Err(ServerError::Dns(e));
            }
        };
        // The new sockets answer already; the old ones may close.
        if let Some(old) = old {
            old.stop();
        }
        tracing::info!(listen = ?listen, "dns: serving");
        self.running = Some(new);
        Ok(())
    }

    /// Stops answering (at the end of a stop, after the grace period).
    pub(crate) fn leave(&mut self) {
        if let Some(d) = self.running.take() {
            d.shut();
        }
    }
}
