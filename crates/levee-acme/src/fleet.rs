//! Sharing certificates, keys and the account through the fleet's Redis
//! (`[fleet]`, docs/fleet.md), so a fleet asks the CA once per name:
//!
//! ```text
//! {FLEET}:acme:lock:NAME       the member ordering NAME now (SET NX PX, a lease)
//! {FLEET}:acme:cert:NAME       {"chain": PEM, "key": sealed PEM} of the newest certificate
//! {FLEET}:acme:account:DIR     the sealed account credentials for the CA at DIR
//! {FLEET}:acme:version         bumped at every new certificate; members poll it
//! ```
//!
//! Private keys and account credentials are sealed with AES-256-GCM under
//! the `[acme] fleet_key`, with the Redis key as associated data (a sealed
//! value copied to another key does not open). A member that cannot reach
//! Redis keeps its own copy on disk; every function here fails fast then
//! (the fleet link's timeout), and the caller decides.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use levee_fleet::Fleet;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::error::AcmeError;
use crate::store::Stored;

/// How long a member may hold an order's lock: longer than an order can
/// take (two 90 s polls and the requests around them), short enough that a
/// member that died mid-order does not block the name for long.
pub const LEASE: Duration = Duration::from_secs(300);

/// How long Redis must have been unreachable before a member with no
/// usable certificate orders on its own: longer than a start-up's first
/// connection or a failover, so a fleet starting together orders once.
pub const ALONE_AFTER: Duration = Duration::from_secs(30);

/// Deletes the lock only if this member still holds it.
const UNLOCK: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

pub struct Share {
    fleet: Arc<Fleet>,
    key: LessSafeKey,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("fleet", &self.fleet.name())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct SharedCert {
    chain: String,
    key: String,
}

fn fleet_error(e: levee_fleet::FleetError) -> AcmeError {
    AcmeError::Fleet(e.to_string())
}

impl Share {
    pub fn new(fleet: Arc<Fleet>, key: &[u8; 32]) -> Option<Share> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
        Some(Share { fleet, key })
    }

    pub fn instance(&self) -> &str {
        self.fleet.instance()
    }

    /// How long Redis has been out of reach; zero while it answers.
    pub fn down_for(&self) -> Duration {
        let health = &self.fleet.link.health;
        match health.is_up() {
            true => Duration::ZERO,
            false => health.since().elapsed().unwrap_or_default(),
        }
    }

    fn k(&self, what: &str, name: &str) -> String {
        format!("{{{}}}:acme:{what}:{name}", self.fleet.name())
    }

    fn seal(&self, aad: &str, plain: &[u8]) -> Result<String, AcmeError> {
        let mut nonce = [0u8; NONCE_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| AcmeError::Crypto("no randomness for a nonce".into()))?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| AcmeError::Crypto("sealing for the fleet".into()))?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Ok(STANDARD.encode(out))
    }

    fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, AcmeError> {
        let bad = || AcmeError::Fleet(format!("`{aad}` does not open with this fleet_key"));
        let mut data = STANDARD.decode(sealed).map_err(|_| bad())?;
        if data.len() < NONCE_LEN {
            return Err(bad());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }

    /// Takes the order lock for `name`: `Ok(false)` when another member holds it.
    pub async fn lock(&self, name: &str) -> Result<bool, AcmeError> {
        let key = self.k("lock", name);
        let me = self.instance().to_owned();
        let ms = LEASE.as_millis() as u64;
        let set: Option<String> = self
            .fleet
            .link
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&me)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await
            })
            .await
            .map_err(fleet_error)?;
        Ok(set.is_some())
    }

    pub async fn unlock(&self, name: &str) -> Result<(), AcmeError> {
        let key = self.k("lock", name);
        let me = self.instance().to_owned();
        self.fleet
            .link
            .run(|mut conn| async move {
                redis::Script::new(UNLOCK)
                    .key(&key)
                    .arg(&me)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(drop)
            .map_err(fleet_error)
    }

    async fn get(&self, key: String) -> Result<Option<String>, AcmeError> {
        self.fleet
            .link
            .run(|mut conn| async move { redis::cmd("GET").arg(&key).query_async(&mut conn).await })
            .await
            .map_err(fleet_error)
    }

    /// The fleet's newest certificate for `name`.
    pub async fn cert(&self, name: &str) -> Result<Option<Stored>, AcmeError> {
        let key = self.k("cert", name);
        let Some(json) = self.get(key.clone()).await? else {
            return Ok(None);
        };
        let shared: SharedCert =
            serde_json::from_str(&json).map_err(|e| AcmeError::Fleet(format!("`{key}`: {e}")))?;
        Ok(Some(Stored {
            chain: shared.chain.into_bytes(),
            key: self.open(&key, &shared.key)?,
            ocsp: None,
        }))
    }

    /// Stores a new certificate for `name` and tells the fleet.
    pub async fn put_cert(&self, name: &str, stored: &Stored) -> Result<(), AcmeError> {
        let key = self.k("cert", name);
        let shared = SharedCert {
            chain: String::from_utf8_lossy(&stored.chain).into_owned(),
            key: self.seal(&key, &stored.key)?,
        };
        let json = serde_json::to_string(&shared).map_err(|e| AcmeError::Fleet(e.to_string()))?;
        let version = self.k("version", "all");
        self.fleet
            .link
            .run(|mut conn| async move {
                redis::pipe()
                    .atomic()
                    .set(&key, &json)
                    .ignore()
                    .incr(&version, 1)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
            .map_err(fleet_error)
    }

    /// A number that changes whenever a member stores a certificate.
    pub async fn version(&self) -> Result<u64, AcmeError> {
        Ok(self
            .get(self.k("version", "all"))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    pub async fn account(&self, directory_hash: &str) -> Result<Option<Vec<u8>>, AcmeError> {
        let key = self.k("account", directory_hash);
        match self.get(key.clone()).await? {
            Some(sealed) => Ok(Some(self.open(&key, &sealed)?)),
            None => Ok(None),
        }
    }

    /// Forgets the shared account (the CA no longer knows it).
    pub async fn forget_account(&self, directory_hash: &str) -> Result<(), AcmeError> {
        let key = self.k("account", directory_hash);
        self.fleet
            .link
            .run(|mut conn| async move {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(drop)
            .map_err(fleet_error)
    }

    /// Stores the account unless one is there; `Ok(false)` when another
    /// member's came first (use that one).
    pub async fn put_account(&self, directory_hash: &str, json: &[u8]) -> Result<bool, AcmeError> {
        let key = self.k("account", directory_hash);
        let sealed = self.seal(&key, json)?;
        let set: Option<String> = self
            .fleet
            .link
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&sealed)
                    .arg("NX")
                    .query_async(&mut conn)
                    .await
            })
            .await
            .map_err(fleet_error)?;
        Ok(set.is_some())
    }
}
