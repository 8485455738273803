//! Automatic certificates: levee obtains and renews its own certificates
//! from an ACME CA (RFC 8555), such as Let's Encrypt (docs/tls.md,
//! "Automatic certificates").
//!
//! ```text
//! [acme] + tls = "auto" ─▶ Settings::load ─▶ Manager (own thread) ─▶ levee_tls::auto (served by name)
//!                                              │  ▲
//!                  issue.rs: order, answer ────┘  └── on-demand: a handshake for an unknown name
//!                  HTTP-01 / TLS-ALPN-01 (levee_tls::challenge), DNS-01 (dns01.rs)
//! ```
//!
//! - [`settings`]: `[acme]` read and checked (also by `levee check`);
//! - [`manager`]: what is held, when it renews, retries with backoff
//!   (`manager/ca.rs`: the account and the CA's renewal information);
//! - [`budget`]: the limits on orders per hour and per name;
//! - `issue`: one order; [`client`]: the bounded HTTP client to the CA;
//! - [`store`]: files on disk, written atomically; [`fleet`]: Redis sharing;
//! - [`on_demand`]: the gate for names seen in handshakes;
//! - [`status`]: what `levee ctl certs` and `/metrics` show.
//!
//! The ACME protocol itself is `instant-acme`'s: it is small, async on
//! tokio, maintained alongside rustls (by one of its maintainers), takes
//! ring as levee's TLS does, and leaves the HTTP client to us, so the CA's
//! answers are bounded and checked before they are parsed (client.rs).
//! `rustls-acme` was the other candidate; it owns the TLS acceptor and the
//! certificate cache, where levee already has its own (levee-tls, with
//! SNI selection, reload and OCSP) and needs HTTP-01, DNS-01 and a fleet.

pub mod budget;
pub mod client;
pub mod dns01;
pub mod error;
pub mod fleet;
mod issue;
pub mod keys;
pub mod manager;
pub mod on_demand;
pub mod schedule;
pub mod settings;
pub mod status;
pub mod store;

use std::sync::{Arc, Mutex};

pub use error::AcmeError;
pub use manager::Manager;
pub use settings::Settings;

static CURRENT: Mutex<Option<Arc<Manager>>> = Mutex::new(None);

/// The running manager, if `[acme]` is configured.
pub fn current() -> Option<Arc<Manager>> {
    CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Starts, updates or stops the manager to match `settings` (start-up and
/// reload). On error nothing changes.
pub fn apply(settings: Option<Settings>) -> Result<(), AcmeError> {
    let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    match (settings, current.as_ref()) {
        (None, None) => {}
        (None, Some(m)) => {
            m.stop();
            *current = None;
            levee_tls::auto::set_on_demand(None);
            levee_tls::auto::publish(Default::default());
        }
        (Some(s), Some(m)) => m.apply(s)?,
        (Some(s), None) => *current = Some(Manager::start(s)?),
    }
    let hook = current
        .as_ref()
        .filter(|m| m.on_demand_enabled())
        .map(|m| Arc::new(manager::Hook(m.clone())) as Arc<dyn levee_tls::auto::OnDemand>);
    levee_tls::auto::set_on_demand(hook);
    Ok(())
}
