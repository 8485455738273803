//! `[acme]` as the server sees it: its files checked with the others
//! (preflight), the certificate manager (levee-acme) started with levee,
//! given the new names on reload, stopped with levee; and the certificate
//! files levee serves registered, so `levee ctl certs` and `/metrics` show
//! them beside the obtained ones.

use std::path::PathBuf;

use levee_config::{Config, ConfigError, ConfigErrors, Locator};

use crate::ServerError;

/// The `[acme]` files load and the storage directory can be written.
pub fn check(config: &Config) -> Vec<ConfigError> {
    let Some(acme) = &config.acme else {
        return Vec::new();
    };
    let mut errors = match levee_acme::Settings::load(config) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    };
    if let Err(message) = crate::preflight::writable_dir(&acme.storage) {
        errors.push(Locator::new(config).error("acme.storage", message));
    }
    errors
}

/// Starts, updates or stops the manager for `config` (start-up, reload).
pub fn apply(config: &Config) -> Result<(), ServerError> {
    let settings = levee_acme::Settings::load(config)
        .map_err(|errors| ServerError::Invalid(ConfigErrors { errors }))?;
    levee_acme::apply(settings).map_err(|e| {
        ServerError::Invalid(Locator::new(config).error("acme", e.to_string()).into())
    })?;
    register_files(config);
    Ok(())
}

pub fn stop() {
    let _ = levee_acme::apply(None);
}

/// Every certificate file the listeners name, for `levee ctl certs`.
fn register_files(config: &Config) {
    let files: Vec<PathBuf> = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|t| t.certs.iter().map(|c| c.cert.path.clone()))
        .collect();
    levee_acme::status::set_files(files);
}
