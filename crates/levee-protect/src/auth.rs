//! HTTP Basic authentication against an htpasswd-style file of
//! `user:hash` lines, with bcrypt hashes (`$2y$`, `$2b$`, `$2a$`, as
//! `htpasswd -B` writes them). Other hash schemes are refused when the file
//! is loaded rather than silently never matching.
//!
//! bcrypt is slow on purpose (tens of milliseconds), so a check never runs
//! on a worker's event loop, and the hashing is a resource an attacker must
//! not be able to take from everyone else (docs/protection.md):
//!
//! - it goes to tokio's blocking pool, at most [`VERIFYING`] at a time for
//!   the whole process, in the order the checks came (a fair semaphore);
//! - at most [`QUEUED`] checks wait for or hold a slot (beyond: 503), and
//!   at most [`PER_CLIENT`] of them for one client address, or one IPv6
//!   /64 (beyond: 429). A client flooding wrong passwords thus keeps at
//!   most its share queued, and a newcomer waits behind that share, not
//!   behind the flood;
//! - checks of the same credentials at once (a browser's parallel requests)
//!   share one hashing;
//! - credentials that verified are remembered, and credentials that did
//!   not are refused again for [`NEGATIVE_TTL`] without hashing. Both are
//!   kept as a keyed hash of the whole `user:password`, so a wrong attempt
//!   never affects the right password of the same user.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};

use crate::ProtectError;
use crate::access::{bits, mask};
use crate::shard::{U64Map, lock};

/// bcrypt checks running at once, process-wide.
pub const VERIFYING: usize = 2;
/// Checks waiting for or holding a bcrypt slot, process-wide; one more is
/// answered 503.
pub const QUEUED: usize = 32;
/// Of those, the most one client (address, or IPv6 /64) may have; one
/// more is answered 429.
pub const PER_CLIENT: usize = 2;
/// How long wrong credentials are refused again without hashing.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Entries each cache keeps per route before it is cleared (verified) or
/// its expired entries dropped (refused).
const REMEMBERED: usize = 4096;

#[derive(Debug)]
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// `Basic realm="…"`, for `WWW-Authenticate`.
    pub challenge: String,
    /// Keyed hashes of credentials that verified.
    verified: Mutex<HashSet<u64>>,
    /// Keyed hashes of credentials that did not, until when.
    refused: Mutex<U64Map<Instant>>,
    /// Checks being hashed, for others with the same credentials to share.
    checking: Mutex<U64Map<Weak<OnceCell<Checked>>>>,
    hasher: RandomState,
}

/// What a Basic-auth check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Valid,
    /// Missing, malformed or wrong credentials: 401.
    Invalid,
    /// The hashing queue (503) or the client's share of it (429) is full.
    Busy {
        status: u16,
    },
}

fn verifying() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(VERIFYING)))
}

/// The checks waiting for or holding a bcrypt slot, by client.
#[derive(Debug, Default)]
struct Queue {
    total: usize,
    by_client: HashMap<u128, usize>,
}

fn queue() -> &'static Mutex<Queue> {
    static QUEUE: OnceLock<Mutex<Queue>> = OnceLock::new();
    QUEUE.get_or_init(Mutex::default)
}

/// A place in the queue, given back when dropped (also when the request is
/// cancelled while it waits).
struct Ticket {
    client: u128,
}

/// The client a queue share belongs to: its address, or its /64 over IPv6
/// (one host may hold a whole /64).
fn share_of(ip: IpAddr) -> u128 {
    let ip = ip.to_canonical();
    let prefix = if ip.is_ipv4() { 32 } else { 64 };
    bits(ip) & mask(ip, prefix)
}

impl Ticket {
    fn take(client: IpAddr) -> Result<Ticket, u16> {
        let client = share_of(client);
        let mut q = lock(queue());
        let mine = q.by_client.get(&client).copied().unwrap_or(0);
        if mine >= PER_CLIENT {
            return Err(429);
        }
        if q.total >= QUEUED {
            return Err(503);
        }
        q.total += 1;
        q.by_client.insert(client, mine + 1);
        Ok(Ticket { client })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut q = lock(queue());
        q.total = q.total.saturating_sub(1);
        if let Some(n) = q.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                q.by_client.remove(&self.client);
            }
        }
    }
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
            refused: Mutex::default(),
            checking: Mutex::default(),
            hasher: RandomState::new(),
        })
    }

    /// Checks the `Authorization` header value of a request from `client`
    /// arriving at `now`.
    pub async fn check(
        &self,
        authorization: Option<&[u8]>,
        client: IpAddr,
        now: Instant,
    ) -> Checked {
        let Some(decoded) = authorization.and_then(basic_credentials) else {
            return Checked::Invalid;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Checked::Invalid;
        };
        let Ok(user) = std::str::from_utf8(&decoded[..colon]) else {
            return Checked::Invalid;
        };
        let Some(hash) = self.users.get(user) else {
            return Checked::Invalid;
        };
        let key = self.hasher.hash_one(&decoded);
        if lock(&self.verified).contains(&key) {
            return Checked::Valid;
        }
        if lock(&self.refused)
            .get(&key)
            .is_some_and(|until| *until > now)
        {
            let counters = crate::metrics::counters();
            counters
                .auth_cached_refusals
                .fetch_add(1, Ordering::Relaxed);
            return Checked::Invalid;
        }
        let cell = self.checking(key);
        let password = &decoded[colon + 1..];
        *cell
            .get_or_init(|| self.hash_check(key, password, hash, client, now))
            .await
    }

    /// The check others with the same credentials share, new or running.
    fn checking(&self, key: u64) -> Arc<OnceCell<Checked>> {
        let mut map = lock(&self.checking);
        if let Some(cell) = map.get(&key).and_then(Weak::upgrade) {
            return cell;
        }
        if map.len() >= REMEMBERED {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let cell = Arc::new(OnceCell::new());
        map.insert(key, Arc::downgrade(&cell));
        cell
    }

    /// Takes a place in the queue, waits for a bcrypt slot, hashes, and
    /// remembers the answer.
    async fn hash_check(
        &self,
        key: u64,
        password: &[u8],
        hash: &str,
        client: IpAddr,
        now: Instant,
    ) -> Checked {
        let _ticket = match Ticket::take(client) {
            Ok(t) => t,
            Err(status) => return Checked::Busy { status },
        };
        let Ok(_slot) = verifying().clone().acquire_owned().await else {
            return Checked::Busy { status: 503 };
        };
        let password = password.to_vec();
        let hash = hash.to_owned();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        if ok {
            let mut v = lock(&self.verified);
            if v.len() >= REMEMBERED {
                v.clear();
            }
            v.insert(key);
            Checked::Valid
        } else {
            let mut r = lock(&self.refused);
            if r.len() >= REMEMBERED {
                r.retain(|_, until| *until > now);
                if r.len() >= REMEMBERED {
                    r.clear();
                }
            }
            r.insert(key, now + NEGATIVE_TTL);
            Checked::Invalid
        }
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
mod tests;
