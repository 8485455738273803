//! A store: the value under its URL's generation, and the generation's
//! and the indexes' items appended the first time they appear (the
//! layout: memcached.rs).

use std::time::Duration;

use async_memcached::AsciiProtocol;

use super::server::now_ms;
use super::text::{append_once, hex, host_of, parse_gen, status};
use super::{BUCKETS, MAX_TTL, McError, Memcached};
use crate::shared::{hash128, nonce};

impl Memcached {
    /// Appends `data` to `key` on `server`, making it if absent (kept
    /// `MAX_TTL`); with `vivify` false an absent key fails (`Ok(false)`).
    /// (memcached 1.6.18, Debian 12's, does not vivify in append mode: an
    /// `add` follows a miss, and an append again if another made it first.)
    async fn append(
        &self,
        server: usize,
        key: String,
        data: Vec<u8>,
        vivify: bool,
        limit: Duration,
    ) -> Result<bool, McError> {
        self.with(server, limit, |mut c| async move {
            let r = match append_once(&mut c, &key, &data).await {
                Ok(false) if vivify => {
                    match status(c.add(&key, &data[..], Some(MAX_TTL as i64), None).await) {
                        Ok(Ok(())) => Ok(true),
                        Ok(Err(_)) => append_once(&mut c, &key, &data).await,
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            (c, r)
        })
        .await
    }

    /// Stores `bytes` for `key` of `url` for `ttl` seconds, with the
    /// indexes purges use. False when the URL was purged meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub async fn put(
        &self,
        ns: &str,
        url_text: &[u8],
        (url, key): (u128, u128),
        tags: &[Box<str>],
        bytes: &[u8],
        ttl: u64,
        limit: Duration,
    ) -> Result<bool, McError> {
        let server = self.server_for(url);
        let gk = format!("{ns}:cg:{}", hex(url));
        let Some((current, created)) = self.generation(server, &gk, limit).await? else {
            return Ok(false);
        };
        let Some((generation, items)) = parse_gen(&current) else {
            return Ok(false);
        };
        let mut missing = Vec::new();
        let kitem = format!("k{}", hex(key));
        if !items.contains(&kitem.as_bytes()) {
            missing.push(kitem);
        }
        for tag in tags {
            let th = hash128(tag.as_bytes());
            let titem = format!("t{}", hex(th));
            if items.contains(&titem.as_bytes()) {
                continue;
            }
            if !self.index_tag(ns, th, url, limit).await? {
                return Ok(false);
            }
            missing.push(titem);
        }
        if created
            && let Some(host) = host_of(url_text)
            && !self.index_host(ns, host, url_text, url, limit).await?
        {
            return Ok(false);
        }
        if !missing.is_empty() {
            let more = missing.iter().fold(Vec::new(), |mut out, m| {
                out.push(b' ');
                out.extend_from_slice(m.as_bytes());
                out
            });
            if !self.append(server, gk, more, false, limit).await? {
                return Ok(false);
            }
        }
        let mut value = Vec::with_capacity(8 + bytes.len());
        value.extend_from_slice(&generation.to_be_bytes());
        value.extend_from_slice(bytes);
        let vk = format!("{ns}:c:{}", hex(key));
        self.with(server, limit, |mut c| async move {
            let r = c
                .set(&vk, &value[..], Some(ttl.min(MAX_TTL) as i64), None)
                .await;
            (c, r)
        })
        .await?;
        Ok(true)
    }

    /// The URL's generation (key `gk` on `server`), made first when absent
    /// (`true`: by this store); `None` when it cannot be read back.
    async fn generation(
        &self,
        server: usize,
        gk: &str,
        limit: Duration,
    ) -> Result<Option<(Vec<u8>, bool)>, McError> {
        let read = |gk: String| async move {
            self.with(server, limit, |mut c| async move {
                let r = c.get(&gk).await;
                (c, r.map(|v| v.and_then(|v| v.data)))
            })
            .await
        };
        let mut created = false;
        let mut current = read(gk.to_owned()).await?;
        if current.is_none() {
            let fresh = hash128(format!("{}-{}", now_ms(), nonce()).as_bytes()) as u64 >> 1;
            let (k, v) = (gk.to_owned(), fresh.to_string());
            created = self
                .with(server, limit, |mut c| async move {
                    let r = status(c.add(&k, &v, Some(MAX_TTL as i64), None).await);
                    (c, r.map(|s| s.is_ok()))
                })
                .await?;
            current = read(gk.to_owned()).await?;
        }
        Ok(current.map(|current| (current, created)))
    }

    /// Adds the URL to the index of the tag hashed `th` (its bucket);
    /// false when the index cannot grow.
    async fn index_tag(
        &self,
        ns: &str,
        th: u128,
        url: u128,
        limit: Duration,
    ) -> Result<bool, McError> {
        let bucket = (url as u64) % BUCKETS;
        let tk = format!("{ns}:ct:{}:{bucket}", hex(th));
        let b = self.server_for(th ^ u128::from(bucket));
        self.append(b, tk, format!("{} ", hex(url)).into_bytes(), true, limit)
            .await
    }

    /// Adds the URL's text to the index of its `host` (its bucket); false
    /// when the index cannot grow.
    async fn index_host(
        &self,
        ns: &str,
        host: &[u8],
        url_text: &[u8],
        url: u128,
        limit: Duration,
    ) -> Result<bool, McError> {
        let hh = hash128(host);
        let bucket = (url as u64) % BUCKETS;
        let hk = format!("{ns}:ch:{}:{bucket}", hex(hh));
        let mut line = url_text.to_vec();
        line.push(b'\n');
        self.append(
            self.server_for(hh ^ u128::from(bucket)),
            hk,
            line,
            true,
            limit,
        )
        .await
    }
}
