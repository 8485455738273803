//! HTTP Basic authentication against an htpasswd-style file of
//! `user:hash` lines, with bcrypt hashes (`$2y$`, `$2b$`, `$2a$`, as
//! `htpasswd -B` writes them). Other hash schemes are refused when the file
//! is loaded rather than silently never matching.
//!
//! bcrypt is slow on purpose (tens of milliseconds), so a check never runs
//! on a worker's event loop: it goes to tokio's blocking pool, at most
//! [`VERIFYING`] at a time for the whole process, so a flood of wrong
//! passwords costs a bounded share of the CPU. Credentials that verified are
//! remembered by a keyed hash, so a client that sends the same header on
//! every request pays for bcrypt once.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Semaphore;

use crate::ProtectError;
use crate::shard::lock;

/// bcrypt checks running at once, process-wide.
pub const VERIFYING: usize = 2;
/// Verified credentials remembered per route before the memory is cleared.
const REMEMBERED: usize = 4096;

#[derive(Debug)]
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// `Basic realm="…"`, for `WWW-Authenticate`.
    pub challenge: String,
    verified: Mutex<HashSet<u64>>,
    hasher: RandomState,
}

fn verifying() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(VERIFYING)))
}

impl BasicAuth {
    /// Reads the htpasswd file at `path`.
    pub fn load(path: &Path, realm: &str) -> Result<BasicAuth, ProtectError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProtectError::AuthFile {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown, realm)
    }

    fn parse(text: &str, shown: &str, realm: &str) -> Result<BasicAuth, ProtectError> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why| ProtectError::AuthLine {
                path: shown.to_owned(),
                line: n + 1,
                why,
            };
            let (user, hash) = line.split_once(':').ok_or(bad("expected user:hash"))?;
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(bad(
                    "unsupported hash: only bcrypt ($2y$, $2b$, $2a$; `htpasswd -B`) is accepted",
                ));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(BasicAuth {
            users,
            challenge: format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
            verified: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
        })
    }

    /// Whether the `Authorization` header value names a user and the right password.
    pub async fn check(&self, authorization: Option<&[u8]>) -> bool {
        let Some(decoded) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let Ok(user) = std::str::from_utf8(&decoded[..colon]) else {
            return false;
        };
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let remembered = self.hasher.hash_one(&decoded);
        if lock(&self.verified).contains(&remembered) {
            return true;
        }
        let Ok(_slot) = verifying().clone().acquire_owned().await else {
            return false;
        };
        let password = decoded[colon + 1..].to_vec();
        let hash = hash.clone();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        if ok {
            let mut v = lock(&self.verified);
            if v.len() >= REMEMBERED {
                v.clear();
            }
            v.insert(remembered);
        }
        ok
    }
}

/// The decoded `user:password` of a `Basic` authorization value.
fn basic_credentials(value: &[u8]) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    base64_decode(rest.trim_ascii())
}

fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let input = input
        .strip_suffix(b"==")
        .or_else(|| input.strip_suffix(b"="))
        .unwrap_or(input);
    if input.len() % 4 == 1 || input.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for chunk in input.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | value(c)?;
        }
        let bits = chunk.len() * 6;
        acc <<= 24 - bits;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..1 + bits / 8]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode(b"YWxpY2U6czNjcmV0").as_deref(),
            Some(&b"alice:s3cret"[..])
        );
        assert_eq!(base64_decode(b"YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode(b"YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode(b"Y").as_deref(), None);
        assert_eq!(base64_decode(b"Y!==").as_deref(), None);
        assert_eq!(
            basic_credentials(b"basic YWxpY2U6czNjcmV0").as_deref(),
            Some(&b"alice:s3cret"[..])
        );
        assert_eq!(basic_credentials(b"Bearer YWxpY2U6czNjcmV0"), None);
    }

    #[tokio::test]
    async fn bcrypt_file_checks_users_and_passwords() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let file = format!("# staff\nalice:{hash}\n\n");
        let auth = BasicAuth::parse(&file, "t", "r").expect("valid file");
        assert_eq!(auth.challenge, "Basic realm=\"r\", charset=\"UTF-8\"");
        let header = |s: &str| format!("Basic {}", encode(s));
        assert!(auth.check(Some(header("alice:s3cret").as_bytes())).await);
        // Remembered: the second check needs no bcrypt.
        assert!(auth.check(Some(header("alice:s3cret").as_bytes())).await);
        assert!(!auth.check(Some(header("alice:wrong").as_bytes())).await);
        assert!(!auth.check(Some(header("bob:s3cret").as_bytes())).await);
        assert!(!auth.check(Some(b"Basic !!!")).await);
        assert!(!auth.check(None).await);
    }

    #[test]
    fn other_hashes_are_refused_at_load() {
        for line in ["bob:{SHA}abc", "bob:$apr1$x$y", "bob"] {
            assert!(BasicAuth::parse(line, "t", "r").is_err(), "{line}");
        }
    }

    fn encode(s: &str) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(3) {
            let mut b = [0u8; 3];
            b[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
