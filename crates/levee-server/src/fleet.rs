//! This process's membership of a fleet (`[fleet]`, docs/fleet.md): started
//! before the first site is built, so fleet-scoped rate limits find it;
//! restarted on a reload that changes `[fleet]`; stopped with levee.
//!
//! What a member tells the others about itself comes from here: its
//! listeners and config hash (on start and reload), its open connections
//! and requests served (read at each heartbeat).
//!
//! And what it does with what the others say on the bus ([`handler`]): a
//! user move closes that user's sessions here, a purge removes what this
//! member's cache stores (both at once, on the fleet thread), a server
//! action for every member applies to this member's upstream and reports
//! how it went, and a config push goes to the control thread, which
//! applies it as a reload (push.rs). Runtime bans need nothing here: the
//! fleet thread keeps them in step with Redis (levee-fleet's bans.rs). A
//! mirror edit changes this member's mirror list ([`mirrors`], which also
//! writes this member's edits to Redis).

pub(crate) mod mirrors;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::path::PathBuf;

use levee_config::{Config, ConfigError, ConfigErrors};
use levee_fleet::bus::{Envelope, Handler, Message};
use levee_fleet::{Fleet, Info, Load, Settings};
use levee_http::Shared;
use tokio::sync::mpsc;

use crate::ServerError;

/// A config pushed to this member, for the control thread.
#[derive(Debug)]
pub(crate) struct Push {
    pub id: String,
    pub from: String,
    pub config: String,
}

/// The running membership, if any.
pub(crate) struct Membership {
    fleet: Option<Arc<Fleet>>,
    serving: Arc<AtomicBool>,
    /// The running site, for purges from the bus (set once it is built).
    shared: Option<Arc<Shared>>,
    pushes: mpsc::UnboundedSender<Push>,
}

impl Membership {
    /// Joins the fleet `config` names (nothing without `[fleet]`). Pushes
    /// to this member arrive on the returned receiver.
    pub(crate) fn start(
        config: &Config,
    ) -> Result<(Membership, mpsc::UnboundedReceiver<Push>), ServerError> {
        let (pushes, rx) = mpsc::unbounded_channel();
        levee_protect::ban::share();
        let mut m = Membership {
            fleet: None,
            serving: Arc::new(AtomicBool::new(true)),
            shared: None,
            pushes,
        };
        m.apply(config)?;
        Ok((m, rx))
    }

    /// Gives the bus handler the running site (purges act on its cache).
    pub(crate) fn serve(&mut self, shared: Arc<Shared>) {
        self.shared = Some(shared);
        if let Some(f) = &self.fleet {
            f.set_handler(self.handler(f));
        }
    }

    /// The fleet this member belongs to now.
    pub(crate) fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.fleet.as_ref()
    }

    fn handler(&self, fleet: &Fleet) -> Handler {
        let me = fleet.instance().to_owned();
        let shared = self.shared.clone();
        let pushes = self.pushes.clone();
        Arc::new(move |e: &Envelope| handle(e, &me, shared.as_deref(), &pushes))
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
                    .map(|(_, s)| s.requests())
                    .sum(),
                serving: serving.load(Ordering::Relaxed),
            });
            let fleet = Fleet::start(settings, info(config), load).map_err(ServerError::Fleet)?;
            fleet.set_handler(self.handler(&fleet));
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

/// Acts on one message from the bus (on the fleet thread: nothing here
/// waits). This member's own user moves, purges and mirror edits were
/// applied when its API took them.
fn handle(e: &Envelope, me: &str, shared: Option<&Shared>, pushes: &mpsc::UnboundedSender<Push>) {
    let own = e.from == me;
    match &e.message {
        Message::CloseUser { user } if !own => {
            let closing = levee_mail::kick::close_user(user.as_bytes());
            tracing::info!(from = %e.from, user = %user, closing, "fleet: closing a moved user's sessions");
        }
        Message::Purge { by, value } if !own => {
            let Some(shared) = shared else { return };
            let removed = levee_admin::api::apply_fleet_purge(&shared.site.load(), *by, value);
            tracing::info!(from = %e.from, ?by, value = %value, removed, "fleet: cache purge");
        }
        Message::ServerAction {
            id,
            upstream,
            server,
            action,
            body,
        } => {
            let Some(shared) = shared else { return };
            let (status, answer) = levee_admin::api::apply_fleet_action(
                &shared.site.load(),
                upstream,
                server,
                action,
                body.as_bytes(),
            );
            tracing::info!(from = %e.from, upstream = %upstream, server = %server, action = %action, status, "fleet: server action");
            let outcome = levee_fleet::actions::Outcome { status, answer };
            let (id, me) = (id.clone(), me.to_owned());
            // On the fleet thread's runtime: the write waits for Redis, the
            // handler does not.
            tokio::spawn(async move {
                if let Some(f) = levee_fleet::current()
                    && let Err(e) =
                        levee_fleet::actions::report(&f.link, f.name(), &id, &me, &outcome).await
                {
                    tracing::warn!(id = %id, error = %e, "fleet: the server action's outcome could not be written to Redis");
                }
            });
        }
        Message::MirrorEdit {
            set,
            name,
            version,
            entry,
        } if !own => {
            let Some(shared) = shared else { return };
            mirrors::heard(&shared.site.load(), set, name, *version, entry.as_ref());
        }
        Message::ConfigPush {
            id,
            config,
            targets,
            ..
        } if targets.as_ref().is_none_or(|t| t.iter().any(|n| n == me)) => {
            let _ = pushes.send(Push {
                id: id.clone(),
                from: e.from.clone(),
                config: config.clone(),
            });
        }
        _ => {}
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
