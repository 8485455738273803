//! The shared tier on memcached (`[cache.shared] store = "memcached"`),
//! what the seed sites ran: the same values as on Redis, spread over the
//! servers by consistent hashing of the URL, with what memcached lacks
//! (scripts, sets) made of its atomic commands.
//!
//! ```text
//! {F}:cg:U   the URL's generation: "GEN kK… tT…" (its value keys, its tags' hashes)
//! {F}:c:K    a value: GEN (8 bytes, big-endian) + the entry as codec.rs writes it
//! {F}:cl:K   the fleet's lock on a cold key: `add` (create if absent), a lease
//! {F}:ct:T:B the URLs (hashes) tagged T, bucket B of 16      (for tag purges)
//! {F}:ch:H:B the URLs (text) under scheme://host/ H, bucket B (for prefix purges)
//! ```
//!
//! - **Validity.** A value counts only while its URL's generation is the one
//!   it was stored under: one `get` of both (they live on the URL's server)
//!   answers a lookup. A purge deletes the generation (and the values it
//!   lists), so a store racing the purge lands under a dead generation and
//!   is never served; a generation evicted by memcached makes its values
//!   misses, never wrong answers. A new generation is random, so it never
//!   repeats an old one.
//! - **Indexes.** A store appends (`ms … MA`, atomic; `add` when absent) the value's key and
//!   its tags to the generation, and, the first time a URL or a tag appears
//!   in a generation, the URL to its tag's and host's buckets. So a tag
//!   purge removes whole URLs (untagged variants of a tagged URL too), and
//!   each index holds a URL once per generation. A bucket is one item
//!   (memcached's item limit, 1 MiB by default: about 30,000 URLs); a store
//!   whose index cannot grow is not shared (an error, counted).
//! - **The lock.** `add {F}:cl:K token lease` wins only if absent; release
//!   reads the token with its CAS and deletes with that CAS, so a lock
//!   whose lease ran out and was taken by another member is left alone.
//!   memcached's lease is whole seconds: a lease of `1500ms` is 2 s.
//! - **Connections.** Each thread keeps its own idle connections per server
//!   (a tokio socket is driven by the runtime that made it); every call is
//!   bounded by the tier's `timeout` and a cancelled call drops its
//!   connection (the client closes it rather than leave a reply unread). A
//!   server that refuses or does not answer a connect is skipped for a
//!   second, so a dead memcached costs a request nothing but a miss.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_memcached::{AsciiProtocol, Client, Error, MetaProtocol};

mod server;
mod store;
mod text;

use server::{Server, now_ms};
use text::{hex, host_of, parse_gen, status};

/// Why a memcached call failed.
#[derive(Debug, thiserror::Error)]
pub enum McError {
    #[error("memcached {0}: skipped for a second after a failed connect")]
    Down(String),
    #[error("memcached {0}: no answer within the timeout")]
    Timeout(String),
    #[error("memcached {addr}: {source}")]
    Call {
        addr: String,
        #[source]
        source: Error,
    },
    #[error("a prefix purge on memcached needs scheme://host/ (got `{0}`)")]
    NoHost(String),
}

/// The longest anything is kept: memcached reads a larger exptime as a
/// date, and the shared tier keeps no object longer.
use super::MAX_TTL;
/// Buckets per tag and per host.
const BUCKETS: u64 = 16;
/// Points per server on the ring.
const POINTS: u64 = 160;
/// Idle connections kept per thread and server.
const IDLE_MAX: usize = 8;

/// The memcached servers of one `[cache.shared]`.
#[derive(Debug)]
pub struct Memcached {
    /// Tells this set's idle connections from an older set's.
    id: u64,
    servers: Box<[Server]>,
    /// (point, server), sorted by point.
    ring: Box<[(u64, usize)]>,
}

struct Idle {
    id: u64,
    server: usize,
    client: Client,
}

thread_local! {
    static IDLE: RefCell<Vec<Idle>> = const { RefCell::new(Vec::new()) };
}

static IDS: AtomicU64 = AtomicU64::new(0);
impl Memcached {
    pub fn new(addrs: &[String]) -> Memcached {
        let servers: Box<[Server]> = addrs
            .iter()
            .map(|a| Server {
                addr: a.clone(),
                down_until: AtomicU64::new(0),
                down: std::sync::atomic::AtomicBool::new(false),
            })
            .collect();
        let mut ring: Vec<(u64, usize)> = servers
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                (0..POINTS).map(move |p| {
                    (
                        super::hash128(format!("{}-{p}", s.addr).as_bytes()) as u64,
                        i,
                    )
                })
            })
            .collect();
        ring.sort_unstable();
        Memcached {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            servers,
            ring: ring.into(),
        }
    }

    /// The server of everything keyed by `h` (a URL's hash, a bucket's).
    fn server_for(&self, h: u128) -> usize {
        let point = h as u64;
        let i = self.ring.partition_point(|&(p, _)| p < point);
        self.ring
            .get(i)
            .or_else(|| self.ring.first())
            .map_or(0, |&(_, s)| s)
    }

    /// Runs `f` on a connection to `server`, within `limit`.
    async fn with<T, F, Fut>(&self, server: usize, limit: Duration, f: F) -> Result<T, McError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = (Client, Result<T, Error>)>,
    {
        let Some(s) = self.servers.get(server) else {
            return Err(McError::Down(String::new()));
        };
        if s.down_until.load(Ordering::Relaxed) > now_ms() {
            return Err(McError::Down(s.addr.clone()));
        }
        let pooled = IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let at = idle
                .iter()
                .position(|i| i.id == self.id && i.server == server)?;
            Some(idle.swap_remove(at).client)
        });
        let fresh = pooled.is_none();
        let work = async {
            let client = match pooled {
                Some(c) => c,
                None => {
                    let c = Client::new(format!("tcp://{}", s.addr))
                        .await
                        .map_err(|e| (true, e))?;
                    s.answered();
                    c
                }
            };
            let (client, r) = f(client).await;
            r.map(|v| (client, v)).map_err(|e| (false, e))
        };
        match tokio::time::timeout(limit, work).await {
            Ok(Ok((client, v))) => {
                if !client.is_closed() {
                    IDLE.with(|idle| {
                        let mut idle = idle.borrow_mut();
                        // A reload's new server set leaves the old one's idle.
                        idle.retain(|i| i.id == self.id);
                        if idle.iter().filter(|i| i.server == server).count() < IDLE_MAX {
                            idle.push(Idle {
                                id: self.id,
                                server,
                                client,
                            });
                        }
                    });
                }
                Ok(v)
            }
            Ok(Err((connecting, source))) => {
                if connecting {
                    s.failed(&source);
                }
                Err(McError::Call {
                    addr: s.addr.clone(),
                    source,
                })
            }
            Err(_) => {
                // No connection yet: the server does not answer connects.
                if fresh {
                    s.failed(&"no answer to a connect within the timeout");
                }
                Err(McError::Timeout(s.addr.clone()))
            }
        }
    }

    /// The entry bytes stored for `key` of `url` (both hashed), if they
    /// are still of the URL's generation.
    pub async fn get(
        &self,
        ns: &str,
        url: u128,
        key: u128,
        limit: Duration,
    ) -> Result<Option<Vec<u8>>, McError> {
        let (vk, gk) = (
            format!("{ns}:c:{}", hex(key)),
            format!("{ns}:cg:{}", hex(url)),
        );
        let keys = [vk.clone(), gk.clone()];
        let got = self
            .with(self.server_for(url), limit, |mut c| async move {
                // The client says NotFound when neither key is there.
                let r = status(c.get_multi(&keys).await).map(Result::unwrap_or_default);
                (c, r)
            })
            .await?;
        let find = |k: &str| {
            got.iter()
                .find(|v| v.key == k.as_bytes())
                .and_then(|v| v.data.as_deref())
        };
        let (Some(value), Some(generation)) = (find(&vk), find(&gk)) else {
            return Ok(None);
        };
        let Some((generation, _)) = parse_gen(generation) else {
            return Ok(None);
        };
        Ok(match value.split_first_chunk::<8>() {
            Some((stored, rest)) if u64::from_be_bytes(*stored) == generation => {
                Some(rest.to_vec())
            }
            _ => None,
        })
    }

    /// Deletes `key` of `url`; true when it was there.
    pub async fn delete(
        &self,
        ns: &str,
        url: u128,
        key: u128,
        limit: Duration,
    ) -> Result<bool, McError> {
        let k = format!("{ns}:c:{}", hex(key));
        self.del(self.server_for(url), k, limit).await
    }

    /// Deletes `key` on `server`; true when it was there.
    async fn del(&self, server: usize, key: String, limit: Duration) -> Result<bool, McError> {
        self.with(server, limit, |mut c| async move {
            let r = status(c.delete(&key).await);
            (c, r.map(|s| s.is_ok()))
        })
        .await
    }

    /// Tries to take the lock on `key` of `url` for `lease` (whole seconds,
    /// rounded up).
    pub async fn lock(
        &self,
        ns: &str,
        (url, key): (u128, u128),
        token: &str,
        lease: Duration,
        limit: Duration,
    ) -> Result<bool, McError> {
        let k = format!("{ns}:cl:{}", hex(key));
        let secs = lease.as_millis().div_ceil(1000).max(1) as i64;
        let t = token.to_owned();
        self.with(self.server_for(url), limit, |mut c| async move {
            let r = status(c.add(&k, &t, Some(secs), None).await);
            (c, r.map(|s| s.is_ok()))
        })
        .await
    }

    /// Releases the lock on `key` if it still holds `token`: the read's
    /// CAS makes the delete miss a lock another member took since.
    pub async fn release(
        &self,
        ns: &str,
        (url, key): (u128, u128),
        token: &str,
        limit: Duration,
    ) -> Result<(), McError> {
        let k = format!("{ns}:cl:{}", hex(key));
        let t = token.to_owned();
        self.with(self.server_for(url), limit, |mut c| async move {
            let held = match c.meta_get(&k, false, None, Some(&["v", "c"])).await {
                Ok(v) => v,
                Err(e) => return (c, Err(e)),
            };
            let Some(held) = held else { return (c, Ok(())) };
            if held.data.as_deref() != Some(t.as_bytes()) {
                return (c, Ok(()));
            }
            let Some(cas) = held.cas else {
                return (c, Ok(()));
            };
            let flag = format!("C{cas}");
            // EXISTS: the lease ran out and the lock is another's now.
            let r = status(c.meta_delete(&k, false, None, Some(&[&flag])).await).map(|_| ());
            (c, r)
        })
        .await
    }

    /// Purges the URL hashed `url`: its values and its generation. Returns
    /// how many values went.
    pub async fn purge_url(&self, ns: &str, url: u128, limit: Duration) -> Result<usize, McError> {
        let server = self.server_for(url);
        let gk = format!("{ns}:cg:{}", hex(url));
        let k = gk.clone();
        let Some(generation) = self
            .with(server, limit, |mut c| async move {
                let r = c.get(&k).await;
                (c, r.map(|v| v.and_then(|v| v.data)))
            })
            .await?
        else {
            return Ok(0);
        };
        // The generation first: from here on its values are dead.
        self.del(server, gk, limit).await?;
        let mut removed = 0;
        for item in parse_gen(&generation).map(|(_, i)| i).unwrap_or_default() {
            let Some(hex_key) = item.strip_prefix(b"k") else {
                continue;
            };
            let k = format!("{ns}:c:{}", String::from_utf8_lossy(hex_key));
            removed += usize::from(self.del(server, k, limit).await?);
        }
        Ok(removed)
    }

    /// Reads bucket `key` on `server` with its CAS.
    async fn bucket(
        &self,
        server: usize,
        key: &str,
        limit: Duration,
    ) -> Result<Option<(Vec<u8>, u64)>, McError> {
        let k = key.to_owned();
        self.with(server, limit, |mut c| async move {
            let r = c.meta_get(&k, false, None, Some(&["v", "c"])).await;
            (
                c,
                r.map(|v| v.and_then(|v| Some((v.data.unwrap_or_default(), v.cas?)))),
            )
        })
        .await
    }

    /// Replaces bucket `key` with `data` (deletes it when empty) if its
    /// CAS is still `cas`; a store that appended meanwhile keeps it whole.
    async fn rewrite(
        &self,
        server: usize,
        key: &str,
        data: Vec<u8>,
        cas: u64,
        limit: Duration,
    ) -> Result<(), McError> {
        let (k, flag, ttl) = (key.to_owned(), format!("C{cas}"), format!("T{MAX_TTL}"));
        self.with(server, limit, |mut c| async move {
            let r = if data.is_empty() {
                status(c.meta_delete(&k, false, None, Some(&[&flag])).await).map(|_| ())
            } else {
                status(
                    c.meta_set(&k, &data[..], false, None, Some(&[&flag, &ttl]))
                        .await,
                )
                .map(|_| ())
            };
            (c, r)
        })
        .await
    }

    /// Purges every URL tagged `tag`.
    pub async fn purge_tag(&self, ns: &str, tag: &str, limit: Duration) -> Result<usize, McError> {
        let th = super::hash128(tag.as_bytes());
        let mut removed = 0;
        for bucket in 0..BUCKETS {
            let server = self.server_for(th ^ u128::from(bucket));
            let key = format!("{ns}:ct:{}:{bucket}", hex(th));
            let Some((data, cas)) = self.bucket(server, &key, limit).await? else {
                continue;
            };
            let mut urls: Vec<u128> = data
                .split(|&b| b == b' ')
                .filter_map(|h| u128::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                .collect();
            urls.sort_unstable();
            urls.dedup();
            for url in urls {
                removed += self.purge_url(ns, url, limit).await?;
            }
            self.rewrite(server, &key, Vec::new(), cas, limit).await?;
        }
        Ok(removed)
    }

    /// Purges every URL starting with one of `prefixes` (each with its
    /// scheme and host: the host's buckets list its URLs).
    pub async fn purge_prefixes(
        &self,
        ns: &str,
        prefixes: &[Vec<u8>],
        limit: Duration,
    ) -> Result<usize, McError> {
        let mut removed = 0;
        for prefix in prefixes {
            let host = host_of(prefix)
                .ok_or_else(|| McError::NoHost(String::from_utf8_lossy(prefix).into_owned()))?;
            let hh = super::hash128(host);
            for bucket in 0..BUCKETS {
                let server = self.server_for(hh ^ u128::from(bucket));
                let key = format!("{ns}:ch:{}:{bucket}", hex(hh));
                let Some((data, cas)) = self.bucket(server, &key, limit).await? else {
                    continue;
                };
                let mut kept = Vec::new();
                let mut gone: Vec<&[u8]> = Vec::new();
                for url in data.split(|&b| b == b'\n').filter(|u| !u.is_empty()) {
                    if url.starts_with(prefix) {
                        gone.push(url);
                    } else {
                        kept.extend_from_slice(url);
                        kept.push(b'\n');
                    }
                }
                if gone.is_empty() {
                    continue;
                }
                gone.sort_unstable();
                gone.dedup();
                for url in gone {
                    removed += self.purge_url(ns, super::hash128(url), limit).await?;
                }
                self.rewrite(server, &key, kept, cas, limit).await?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
