//! The answers to ACME challenges that levee's own listeners give while an
//! order is in progress (crates/levee-acme fills them in, docs/tls.md):
//!
//! - HTTP-01 (RFC 8555 §8.3): `GET /.well-known/acme-challenge/TOKEN` on a
//!   plain HTTP listener is answered with the key authorization, before any
//!   route is looked at ([`http01`], called from levee-http's request path);
//! - TLS-ALPN-01 (RFC 8737): a handshake offering ALPN `acme-tls/1` for a
//!   name being validated gets a self-signed certificate carrying the
//!   `acmeIdentifier` extension, and the connection ends after it
//!   ([`tls_alpn01`], called from the acceptor).
//!
//! One table per process, not per listener: the CA may validate through any
//! listener on port 80 or 443, and one ACME client serves them all. It is
//! read on the request path only for a path under the challenge prefix, and
//! is almost always empty.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use rustls::sign::CertifiedKey;

/// The path prefix of HTTP-01 challenges.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Default)]
struct Table {
    /// Token -> key authorization.
    http01: HashMap<String, String>,
    /// Lower-case name -> challenge certificate.
    tls_alpn01: HashMap<String, Arc<CertifiedKey>>,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(Default::default);

fn read() -> std::sync::RwLockReadGuard<'static, Table> {
    // A panic while holding the lock left a valid table: use it.
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> std::sync::RwLockWriteGuard<'static, Table> {
    TABLE.write().unwrap_or_else(|e| e.into_inner())
}

/// The key authorization to answer an HTTP-01 request for `path` with, if
/// `path` is a challenge levee is answering. Costs a prefix comparison for
/// any other path.
pub fn http01(path: &[u8]) -> Option<String> {
    let token = path.strip_prefix(HTTP01_PREFIX.as_bytes())?;
    let token = std::str::from_utf8(token).ok()?;
    read().http01.get(token).cloned()
}

/// Answers HTTP-01 for `token` until [`remove_http01`].
pub fn add_http01(token: &str, key_authorization: &str) {
    write()
        .http01
        .insert(token.to_owned(), key_authorization.to_owned());
}

pub fn remove_http01(token: &str) {
    write().http01.remove(token);
}

/// The TLS-ALPN-01 certificate for `name`, if levee is being validated for it.
pub fn tls_alpn01(name: &str) -> Option<Arc<CertifiedKey>> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    read().tls_alpn01.get(&name).cloned()
}

/// Answers TLS-ALPN-01 for `name` with `cert` until [`remove_tls_alpn01`].
pub fn add_tls_alpn01(name: &str, cert: Arc<CertifiedKey>) {
    write().tls_alpn01.insert(name.to_ascii_lowercase(), cert);
}

pub fn remove_tls_alpn01(name: &str) {
    write().tls_alpn01.remove(&name.to_ascii_lowercase());
}

/// Whether a ClientHello's ALPN list asks for TLS-ALPN-01.
pub fn wants_tls_alpn01<'a>(alpn: Option<impl Iterator<Item = &'a [u8]>>) -> bool {
    alpn.is_some_and(|mut list| list.any(|p| p == ACME_TLS_ALPN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http01_answers_only_its_tokens() {
        add_http01("tok-a", "tok-a.thumb");
        assert_eq!(
            http01(b"/.well-known/acme-challenge/tok-a").as_deref(),
            Some("tok-a.thumb")
        );
        assert_eq!(http01(b"/.well-known/acme-challenge/tok-b"), None);
        assert_eq!(http01(b"/tok-a"), None);
        remove_http01("tok-a");
        assert_eq!(http01(b"/.well-known/acme-challenge/tok-a"), None);
    }
}
