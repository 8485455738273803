//! `[acme]` as the server sees it: its files checked with the others
//! (preflight), the certificate manager (levee-acme) started with levee,
//! given the new names on reload, stopped with levee; and the certificate
//! files levee serves registered, so `levee ctl certs` and `/metrics` show
//! them beside the obtained ones.

use std::path::{Path, PathBuf};

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
    if let Err(message) = writable(&acme.storage) {
        errors.push(Locator::new(config).error("acme.storage", message));
    }
    errors
}

/// The directory, or the nearest ancestor it would be created in, must be
/// writable by levee.
fn writable(dir: &Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => {
                return Err(format!("`{}` is not a directory", at.display()));
            }
            Ok(_) => {
                return rustix::fs::access(at, rustix::fs::Access::WRITE_OK)
                    .map_err(|e| format!("`{}` is not writable: {e}", at.display()));
            }
            Err(_) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => return Ok(()),
            },
        }
    }
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
