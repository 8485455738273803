//! This process's membership of a fleet (`[fleet]`, docs/fleet.md): started
//! before the first site is built, so fleet-scoped rate limits find it;
//! restarted on a reload that changes `[fleet]`; stopped with levee.
//!
//! What a member tells the others about itself comes from here: its
//! listeners and config hash (on start and reload), its open connections
//! and requests served (read at each heartbeat).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::path::PathBuf;

use levee_config::{Config, ConfigError, ConfigErrors};
use levee_fleet::{Fleet, Info, Load, Settings};

use crate::ServerError;

/// The running membership, if any.
#[derive(Default)]
pub(crate) struct Membership {
    fleet: Option<Arc<Fleet>>,
    serving: Arc<AtomicBool>,
}

impl Membership {
    /// Joins the fleet `config` names (nothing without `[fleet]`).
    pub(crate) fn start(config: &Config) -> Result<Membership, ServerError> {
        let mut m = Membership {
            fleet: None,
            serving: Arc::new(AtomicBool::new(true)),
        };
        m.apply(config)?;
        Ok(m)
    }

    /// Applies `config` (call before building its site): a changed
    /// `[fleet]` leaves the old fleet and joins the new one; an unchanged
    /// one only updates what this member reports.
    pub(crate) fn apply(&mut self, config: &Config) -> Result<(), ServerError> {
        let wanted = config.fleet.as_ref();
        if let Some(f) = &self.fleet
            && Some(&f.settings.config) == wanted
        {
            f.set_info(info(config));
            return Ok(());
        }
        let settings = match wanted {
            Some(c) => Some(
                Settings::load(c, &source(config))
                    .map_err(|errors| ServerError::FleetFiles(ConfigErrors { errors }))?,
            ),
            None => None,
        };
        if let Some(old) = self.fleet.take() {
            old.stop(Duration::ZERO);
        }
        if let Some(settings) = settings {
            let serving = self.serving.clone();
            let load = Box::new(move || Load {
                connections: levee_protect::conns::open_all() as u64,
                requests: levee_http::listener::stats::all_listeners()
                    .iter()
                    .map(|(_, s)| s.requests.load(Ordering::Relaxed))
                    .sum(),
                serving: serving.load(Ordering::Relaxed),
            });
            let fleet = Fleet::start(settings, info(config), load).map_err(ServerError::Fleet)?;
            tracing::info!(fleet = %fleet.name(), instance = %fleet.instance(), "fleet: joined");
            self.fleet = Some(fleet);
        }
        Ok(())
    }

    /// Reports `stopping` from now on.
    pub(crate) fn stopping(&self) {
        self.serving.store(false, Ordering::Relaxed);
    }

    /// Leaves the fleet (the member's record is removed).
    pub(crate) fn leave(&mut self) {
        if let Some(f) = self.fleet.take() {
            // Bounded: a Redis that is away must not hold up the exit.
            f.stop(Duration::from_millis(300));
        }
    }
}

/// What `levee check` adds for `[fleet]`: the credentials and CA file must
/// be readable, as `levee run` needs them.
pub fn check(config: &Config) -> Vec<ConfigError> {
    match &config.fleet {
        Some(f) => Settings::load(f, &source(config)).err().unwrap_or_default(),
        None => Vec::new(),
    }
}

fn source(config: &Config) -> PathBuf {
    config
        .source
        .clone()
        .unwrap_or_else(|| levee_config::BUILTIN_SOURCE.into())
}

fn info(config: &Config) -> Info {
    Info {
        config_hash: levee_fleet::config_hash(config),
        listeners: config
            .listeners
            .iter()
            .map(|l| {
                if l.name == l.address.to_string() {
                    l.name.clone()
                } else {
                    format!("{} {}", l.name, l.address)
                }
            })
            .collect(),
    }
}
