//! Secrets of the admin listener (the bearer token, session ids, CSRF
//! tokens): kept out of `Debug` output, compared in constant time, and
//! made from the system's random source.

use std::fmt;

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// A secret string. `Debug` never shows it, so it cannot reach a log line
/// through a derived `Debug` of a struct holding it.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// Whether `given` is this secret, in time that does not depend on
    /// where they differ (nor on their lengths).
    pub fn matches(&self, given: &[u8]) -> bool {
        equal(self.0.as_bytes(), given)
    }

    /// The text, for the one place that must send it (`levee ctl`'s
    /// `Authorization` header).
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// A SHA-256 digest: what session maps are keyed by, so a lookup's
    /// timing tells nothing about the secret.
    pub fn digest(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }
}

/// Constant-time equality: both sides are hashed first, so neither the
/// position of the first difference nor the lengths show in the timing.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    sha256(a).ct_eq(&sha256(b)).into()
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// 32 bytes from the system's random source, as 64 hex digits; `None` if
/// the source fails (the caller answers 500 rather than a weak value).
pub fn random() -> Option<Secret> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    let mut text = String::with_capacity(64);
    for b in bytes {
        text.push(char::from(HEX[usize::from(b >> 4)]));
        text.push(char::from(HEX[usize::from(b & 15)]));
    }
    Some(Secret(text))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_and_debug() {
        let s = Secret::new("correct-horse-battery".into());
        assert!(s.matches(b"correct-horse-battery"));
        assert!(!s.matches(b"correct-horse-batterz"));
        assert!(!s.matches(b"correct-horse-battery "));
        assert!(!s.matches(b""));
        assert!(!format!("{s:?}").contains("horse"));
    }

    #[test]
    fn random_secrets_are_hex_and_differ() {
        let a = random().expect("random");
        let b = random().expect("random");
        assert_eq!(a.reveal().len(), 64);
        assert!(a.reveal().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!a.matches(b.reveal().as_bytes()));
    }
}
