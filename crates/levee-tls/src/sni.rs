//! Choosing a certificate by the SNI name a client sent.
//!
//! An exact name wins over a wildcard; a wildcard `*.example.com` covers one
//! label (`a.example.com`, not `a.b.example.com` nor `example.com`), as
//! RFC 6125 §6.4.3 has clients check it; anything else gets the default.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Entries by server name, exact or `*.` wildcard, with no default: the
/// lookup both a listener's files ([`ByName`]) and the certificates levee
/// obtains itself (`auto`) use.
#[derive(Debug, Clone)]
pub struct Names<T> {
    exact: HashMap<String, T>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, T>,
}

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }
}

impl<T> Names<T> {
    /// Adds `name`; an earlier entry for the same name is kept.
    pub fn insert(&mut self, name: &str, value: T) {
        let name = name.to_ascii_lowercase();
        let (map, key) = match name.strip_prefix("*.") {
            Some(parent) => (&mut self.wildcard, parent.to_owned()),
            None => (&mut self.exact, name),
        };
        map.entry(key).or_insert(value);
    }

    /// The entry for `name` (as sent by the client, any case, a trailing
    /// dot allowed): the exact one, else the wildcard of its parent.
    pub fn get(&self, name: &str) -> Option<&T> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(v) = self.exact.get(&name) {
            return Some(v);
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }
}

/// Certificates by server name, with a default.
#[derive(Debug)]
pub struct ByName<T> {
    names: Names<T>,
    default: T,
}

impl<T: Clone> ByName<T> {
    pub fn new(default: T) -> Self {
        ByName {
            names: Names::default(),
            default,
        }
    }

    /// Adds `name`; an earlier entry for the same name is kept.
    pub fn insert(&mut self, name: &str, value: T) {
        self.names.insert(name, value);
    }

    /// The entry for `name` (as sent by the client, any case).
    pub fn select(&self, name: Option<&str>) -> &T {
        name.and_then(|n| self.names.get(n))
            .unwrap_or(&self.default)
    }

    /// The entry for `name`, without falling back to the default.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.names.get(name)
    }

    pub fn default_entry(&self) -> &T {
        &self.default
    }
}

impl ResolvesServerCert for ByName<Arc<CertifiedKey>> {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.select(hello.server_name()).clone())
    }
}
