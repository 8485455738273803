//! Choosing a certificate by the SNI name a client sent.
//!
//! An exact name wins over a wildcard; a wildcard `*.example.com` covers one
//! label (`a.example.com`, not `a.b.example.com` nor `example.com`), as
//! RFC 6125 §6.4.3 has clients check it; anything else gets the default.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificates by server name, with a default.
#[derive(Debug)]
pub struct ByName<T> {
    exact: HashMap<String, T>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, T>,
    default: T,
}

impl<T: Clone> ByName<T> {
    pub fn new(default: T) -> Self {
        ByName {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        }
    }

    /// Adds `name`; an earlier entry for the same name is kept.
    pub fn insert(&mut self, name: &str, value: T) {
        let name = name.to_ascii_lowercase();
        let (map, key) = match name.strip_prefix("*.") {
            Some(parent) => (&mut self.wildcard, parent.to_owned()),
            None => (&mut self.exact, name),
        };
        map.entry(key).or_insert(value);
    }

    /// The entry for `name` (as sent by the client, any case).
    pub fn select(&self, name: Option<&str>) -> &T {
        let Some(name) = name else {
            return &self.default;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(v) = self.exact.get(&name) {
            return v;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for ByName<Arc<CertifiedKey>> {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.select(hello.server_name()).clone())
    }
}
