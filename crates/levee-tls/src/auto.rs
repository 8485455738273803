//! Certificates levee obtains itself (ACME, crates/levee-acme), served on
//! every listener whose TLS is `auto`, beside the listener's own files.
//!
//! The ACME side publishes what it holds with [`publish`]; each handshake
//! on an `auto` listener looks the client's name up here after the
//! listener's files. One set per process: the same certificate serves a
//! name on every listener, and a renewal reaches them all at once.
//!
//! On-demand TLS: a handshake for a name with no certificate may ask the
//! ACME side ([`OnDemand`]) to obtain one first. The ACME side decides
//! whether the name may have one (its ask URL, allow-list and rate limits);
//! the acceptor only waits, within the handshake timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, RwLock};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::sni::{ByName, Names};

/// What the ACME side offers a handshake for an unknown name.
pub trait OnDemand: Send + Sync + 'static {
    /// Obtains a certificate for `name` if policy allows; resolves once it
    /// is published (true) or refused or failed (false).
    fn obtain(&self, name: String) -> Pin<Box<dyn Future<Output = bool> + Send>>;
}

static CERTS: LazyLock<ArcSwap<Names<Arc<CertifiedKey>>>> = LazyLock::new(Default::default);
static ON_DEMAND: RwLock<Option<Arc<dyn OnDemand>>> = RwLock::new(None);

/// Replaces the set of obtained certificates, whole.
pub fn publish(certs: Names<Arc<CertifiedKey>>) {
    CERTS.store(Arc::new(certs));
}

/// The obtained certificate for `name`, if any.
pub fn get(name: &str) -> Option<Arc<CertifiedKey>> {
    CERTS.load().get(name).cloned()
}

/// Sets (or, with `None`, clears) the on-demand handler.
pub fn set_on_demand(handler: Option<Arc<dyn OnDemand>>) {
    *ON_DEMAND.write().unwrap_or_else(|e| e.into_inner()) = handler;
}

pub(crate) fn on_demand() -> Option<Arc<dyn OnDemand>> {
    ON_DEMAND.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// An `auto` listener's choice of certificate: its own files by name, then
/// the obtained ones, then its files' default. With no files and a name
/// nothing covers (or no SNI at all) there is no certificate, and the
/// handshake fails, as it should: any certificate would be the wrong one.
#[derive(Debug)]
pub(crate) struct Resolver {
    pub(crate) files: Option<ByName<Arc<CertifiedKey>>>,
}

impl Resolver {
    pub(crate) fn has(&self, name: &str) -> bool {
        self.files.as_ref().is_some_and(|f| f.get(name).is_some()) || get(name).is_some()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name();
        if let Some(name) = name {
            if let Some(c) = self.files.as_ref().and_then(|f| f.get(name)) {
                return Some(c.clone());
            }
            if let Some(c) = get(name) {
                return Some(c);
            }
        }
        self.files.as_ref().map(|f| f.default_entry().clone())
    }
}
