//! What goes to memcached as text and comes back: keys from hashes, a
//! status told from a failed call, an append, a URL's host part, a
//! generation's items.

use async_memcached::{Client, Error, MetaProtocol, Status};

/// A 128-bit hash as memcached key text.
pub(super) fn hex(h: u128) -> String {
    format!("{h:032x}")
}

/// A status memcached answered, told from a failed call.
pub(super) fn status<T>(r: Result<T, Error>) -> Result<Result<T, Status>, Error> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Error::Protocol(s)) => Ok(Err(s)),
        Err(e) => Err(e),
    }
}

/// `data` appended to `key`; false when there is no such key.
pub(super) async fn append_once(c: &mut Client, key: &str, data: &[u8]) -> Result<bool, Error> {
    status(c.meta_set(key, data, false, None, Some(&["MA"])).await).map(|s| s.is_ok())
}

/// The scheme and host part of a URL or prefix, with its `/`.
pub(super) fn host_of(url: &[u8]) -> Option<&[u8]> {
    let after = url.windows(3).position(|w| w == b"://")? + 3;
    let slash = url.get(after..)?.iter().position(|&b| b == b'/')?;
    url.get(..after + slash + 1)
}

/// A generation's number and its items (`kHEX` value keys, `tHEX` tags).
pub(super) fn parse_gen(data: &[u8]) -> Option<(u64, Vec<&[u8]>)> {
    let mut parts = data.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let generation = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    Some((generation, parts.collect()))
}
