//! Accounts and certificates on disk, in `[acme] storage`:
//!
//! ```text
//! accounts/<sha256 of the directory URL>.json   the account key and URL (0600)
//! certs/<name>/cert.pem                           the chain, leaf first
//! certs/<name>/key.pem                            its private key (0600)
//! certs/<name>/ocsp.der                           an OCSP response to staple, if one is put there
//! ```
//!
//! A wildcard `*.example.com` lives in `certs/_wildcard.example.com`. Every
//! file is written whole to a temporary file beside it, synced, and renamed
//! over the old one, so a crash leaves the old file or the new one, never
//! half of either. The key is written before the chain: a chain on disk
//! always has its key.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::AcmeError;

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A certificate as stored: the PEM chain and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub chain: Vec<u8>,
    pub key: Vec<u8>,
    pub ocsp: Option<Vec<u8>>,
}

fn io(path: &Path, source: std::io::Error) -> AcmeError {
    AcmeError::Storage {
        path: path.to_owned(),
        source,
    }
}

/// The directory name for `name`; `None` for anything that is not a DNS
/// name (it could climb out of the storage directory).
fn dir_name(name: &str) -> Option<String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let ok = !bare.is_empty()
        && !bare.starts_with('.')
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then(|| match name.strip_prefix("*.") {
        Some(parent) => format!("_wildcard.{}", parent.to_ascii_lowercase()),
        None => name.to_ascii_lowercase(),
    })
}

/// Where `name`'s chain is kept under the storage directory `dir`.
pub fn cert_file(dir: &Path, name: &str) -> Option<PathBuf> {
    Some(dir.join("certs").join(dir_name(name)?).join("cert.pem"))
}

impl Store {
    /// Opens (creating it, mode 0700) the storage directory.
    pub fn open(dir: &Path) -> Result<Store, AcmeError> {
        for sub in ["accounts", "certs"] {
            let d = dir.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(|e| io(&d, e))?;
        }
        Ok(Store {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn account_path(&self, directory: &str) -> PathBuf {
        self.dir
            .join("accounts")
            .join(format!("{}.json", directory_hash(directory)))
    }

    /// The stored account for the CA at `directory`, if any.
    pub fn account(&self, directory: &str) -> Result<Option<Vec<u8>>, AcmeError> {
        read_optional(&self.account_path(directory))
    }

    /// Forgets the account (the CA no longer knows it).
    pub fn remove_account(&self, directory: &str) -> Result<(), AcmeError> {
        let path = self.account_path(directory);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, e)),
            _ => Ok(()),
        }
    }

    pub fn save_account(&self, directory: &str, json: &[u8]) -> Result<(), AcmeError> {
        write_atomic(&self.account_path(directory), json, 0o600)
    }

    fn cert_dir(&self, name: &str) -> Result<PathBuf, AcmeError> {
        let d = dir_name(name).ok_or_else(|| AcmeError::Refused {
            name: name.to_owned(),
            reason: "not a DNS name".into(),
        })?;
        Ok(self.dir.join("certs").join(d))
    }

    /// The stored certificate for `name`; `None` when there is none yet.
    pub fn cert(&self, name: &str) -> Result<Option<Stored>, AcmeError> {
        let d = self.cert_dir(name)?;
        let (Some(chain), Some(key)) = (
            read_optional(&d.join("cert.pem"))?,
            read_optional(&d.join("key.pem"))?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Stored {
            chain,
            key,
            ocsp: read_optional(&d.join("ocsp.der"))?,
        }))
    }

    pub fn save_cert(&self, name: &str, stored: &Stored) -> Result<(), AcmeError> {
        let d = self.cert_dir(name)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&d)
            .map_err(|e| io(&d, e))?;
        write_atomic(&d.join("key.pem"), &stored.key, 0o600)?;
        write_atomic(&d.join("cert.pem"), &stored.chain, 0o644)?;
        // A staple for the old certificate would be wrong for the new one.
        let ocsp = d.join("ocsp.der");
        match (&stored.ocsp, fs::remove_file(&ocsp)) {
            (Some(o), _) => write_atomic(&ocsp, o, 0o644),
            (None, Err(e)) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&ocsp, e)),
            (None, _) => Ok(()),
        }
    }
}

/// A short stable name for a CA's directory URL (file and Redis keys).
pub fn directory_hash(directory: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, directory.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AcmeError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Writes `data` to `path` whole: a temporary file in the same directory
/// (so the rename cannot cross file systems), synced, renamed over `path`,
/// and the directory synced so the rename itself survives a crash.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), AcmeError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("levee-acme-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn keys_are_private_and_round_trip() {
        let d = dir("store");
        let s = Store::open(&d).unwrap();
        assert_eq!(s.cert("a.test").unwrap(), None);
        let stored = Stored {
            chain: b"chain".to_vec(),
            key: b"key".to_vec(),
            ocsp: None,
        };
        s.save_cert("*.A.test", &stored).unwrap();
        assert_eq!(s.cert("*.a.test").unwrap(), Some(stored));
        let key = d.join("certs/_wildcard.a.test/key.pem");
        assert_eq!(
            fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        s.save_account("https://ca/dir", b"{}").unwrap();
        let account = fs::read_dir(d.join("accounts"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            account.metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(d.join("accounts")).unwrap().count(), 1);
    }

    #[test]
    fn names_cannot_climb_out() {
        let s = Store::open(&dir("climb")).unwrap();
        for bad in ["../x", "a/b", ".hidden", "", "*."] {
            assert!(s.cert(bad).is_err(), "{bad}");
        }
    }
}
