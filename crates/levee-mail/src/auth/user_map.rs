//! The local user map: `USER HOST:PORT [HASH]` a line, `#` comments.
//!
//! Without a hash the backend checks the password (pass-through); with one
//! levee checks it first, on the blocking pool since a good hash is slow by
//! design. Read at start and on each reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Decision, Route};
use crate::sasl::Credentials;

#[derive(Debug, thiserror::Error)]
pub enum UserMapError {
    /// The I/O error is in the message, not a `source`, so it is not repeated.
    #[error("user map {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("user map {0}: with `master_user` every user needs a password hash")]
    Unhashed(PathBuf),
    #[error("user map {path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    backend: String,
    hash: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UserMap {
    users: HashMap<Vec<u8>, Entry>,
}

/// The password hashes levee checks, by their prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bcrypt,
    Sha512Crypt,
    Argon2,
}

fn scheme(hash: &str) -> Option<Scheme> {
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        Some(Scheme::Bcrypt)
    } else if hash.starts_with("$6$") {
        Some(Scheme::Sha512Crypt)
    } else if hash.starts_with("$argon2id$")
        || hash.starts_with("$argon2i$")
        || hash.starts_with("$argon2d$")
    {
        Some(Scheme::Argon2)
    } else {
        None
    }
}

/// Whether levee can check passwords against `hash` (bcrypt, SHA-512-crypt
/// or argon2).
pub fn supported(hash: &str) -> bool {
    scheme(hash).is_some()
}

/// Whether `pass` matches `hash`; slow by design, so run on the blocking
/// pool. Also what the admin listener's `POST /login` checks with.
pub fn verify(pass: &[u8], hash: &str) -> bool {
    match scheme(hash) {
        Some(Scheme::Bcrypt) => bcrypt::verify(pass, hash).unwrap_or(false),
        Some(Scheme::Sha512Crypt) => {
            std::str::from_utf8(pass).is_ok_and(|p| sha_crypt::sha512_check(p, hash).is_ok())
        }
        Some(Scheme::Argon2) => {
            use argon2::{Argon2, PasswordHash, PasswordVerifier};
            PasswordHash::new(hash)
                .is_ok_and(|parsed| Argon2::default().verify_password(pass, &parsed).is_ok())
        }
        None => false,
    }
}

impl UserMap {
    pub fn load(path: &Path) -> Result<UserMap, UserMapError> {
        let text = std::fs::read_to_string(path).map_err(|error| UserMapError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        UserMap::parse(&text).map_err(|(line, message)| UserMapError::Line {
            path: path.to_path_buf(),
            line,
            message,
        })
    }

    /// On error: (1-based line, message).
    pub fn parse(text: &str) -> Result<UserMap, (usize, String)> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(user), Some(backend)) = (words.next(), words.next()) else {
                return Err((i + 1, "expected `USER HOST:PORT [HASH]`".to_owned()));
            };
            let valid_backend = backend
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
            if !valid_backend {
                return Err((
                    i + 1,
                    format!("invalid backend `{backend}`: expected HOST:PORT"),
                ));
            }
            let hash = words.next().map(str::to_owned);
            if let Some(h) = &hash
                && scheme(h).is_none()
            {
                return Err((
                    i + 1,
                    "unsupported password hash: expected bcrypt ($2b$), SHA-512-crypt ($6$) or argon2 ($argon2id$)".to_owned(),
                ));
            }
            if words.next().is_some() {
                return Err((i + 1, "too many fields".to_owned()));
            }
            let entry = Entry {
                backend: backend.to_owned(),
                hash,
            };
            if users.insert(user.as_bytes().to_vec(), entry).is_some() {
                return Err((i + 1, format!("user `{user}` appears twice")));
            }
        }
        Ok(UserMap { users })
    }

    /// Whether levee checks every user's password itself.
    pub fn all_hashed(&self) -> bool {
        self.users.values().all(|e| e.hash.is_some())
    }

    pub async fn decide(&self, c: &Credentials, fail_delay: Duration) -> Decision {
        let refuse = Decision::Refuse {
            message: None,
            wait: fail_delay,
            smtp_code: None,
        };
        let Some(entry) = self.users.get(&c.user) else {
            return refuse;
        };
        if let Some(hash) = entry.hash.clone() {
            let pass = c.pass.clone();
            match tokio::task::spawn_blocking(move || verify(&pass, &hash)).await {
                Ok(true) => {}
                Ok(false) => return refuse,
                Err(_) => return Decision::Unavailable("password check failed".to_owned()),
            }
        }
        Decision::Accept(Route {
            backend: entry.backend.clone(),
            user: c.user.clone(),
            pass: c.pass.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            authzid: Vec::new(),
            user: user.as_bytes().to_vec(),
            pass: pass.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn routes_and_checks_hashes() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let map = UserMap::parse(&format!(
            "# comment\nalice 127.0.0.1:143\nbob 10.0.0.2:993 {hash}  # with hash\n"
        ))
        .expect("valid");
        let Decision::Accept(r) = map.decide(&creds("alice", "x"), Duration::ZERO).await else {
            panic!("alice passes through")
        };
        assert_eq!(r.backend, "127.0.0.1:143");
        assert!(matches!(
            map.decide(&creds("bob", "pw"), Duration::ZERO).await,
            Decision::Accept(_)
        ));
        assert!(matches!(
            map.decide(&creds("bob", "bad"), Duration::ZERO).await,
            Decision::Refuse { .. }
        ));
        assert!(matches!(
            map.decide(&creds("carol", "pw"), Duration::ZERO).await,
            Decision::Refuse { .. }
        ));
    }

    #[test]
    fn every_scheme_verifies() {
        use argon2::PasswordHasher;
        // SHA-512-crypt of "pw" as glibc's crypt(3) makes it (an independent implementation).
        let sha = "$6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/";
        let salt = argon2::password_hash::SaltString::encode_b64(b"saltsaltsalt").expect("salt");
        let argon = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .expect("argon2")
            .to_string();
        let bcrypt = bcrypt::hash("pw", 4).expect("hash");
        for hash in [sha, argon.as_str(), bcrypt.as_str()] {
            assert!(verify(b"pw", hash), "{hash}");
            assert!(!verify(b"pW", hash), "{hash}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(UserMap::parse("a\n").err().map(|e| e.0), Some(1));
        assert_eq!(UserMap::parse("\na host\n").err().map(|e| e.0), Some(2));
        assert_eq!(UserMap::parse("a h:1 $1$md5\n").err().map(|e| e.0), Some(1));
        assert_eq!(UserMap::parse("a h:1\na h:2\n").err().map(|e| e.0), Some(2));
    }
}
