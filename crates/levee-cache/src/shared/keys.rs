//! How the shared tier names what it stores, and reads it back: key
//! hashes, the fleet's namespace, a key's URL part, lock tokens, and an
//! entry decoded from its stored bytes.

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::body::Body;
use crate::codec::{self, Decoded};
use crate::store::Entry;

pub(super) fn hash128(bytes: &[u8]) -> u128 {
    let mut h = siphasher::sip128::SipHasher13::new_with_keys(0x7368_6172_6564, 0x6c65_7665_6521);
    h.write(bytes);
    siphasher::sip128::Hasher128::finish128(&h).as_u128()
}

pub(super) fn hash(bytes: &[u8]) -> String {
    format!("{:032x}", hash128(bytes))
}

/// A number not used before in this process (lock tokens, generations).
pub(super) fn nonce() -> u64 {
    NONCE.fetch_add(1, Ordering::Relaxed)
}

/// The hashes memcached keys `key` by: its URL's and its own.
pub(super) fn hashes(key: &[u8]) -> (u128, u128) {
    (hash128(url_of(key)), hash128(key))
}

/// The fleet's name as a memcached key prefix (keys are printable ASCII
/// without spaces).
pub(super) fn namespace(fleet: &str) -> String {
    let name: String = fleet
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("{{{name}}}")
}

/// The URL part of a key: up to a variant's or a route-added part's separator.
pub(super) fn url_of(key: &[u8]) -> &[u8] {
    let end = key
        .iter()
        .position(|&b| b == 0 || b == 1)
        .unwrap_or(key.len());
    key.get(..end).unwrap_or(key)
}

/// Makes each lock token unique within this member.
static NONCE: AtomicU64 = AtomicU64::new(0);

/// An entry from the bytes stored under `key`; `None` when they are not
/// one (another version, damage, a colliding key).
pub fn decode(key: &[u8], bytes: Vec<u8>) -> Option<Entry> {
    let header = codec::decode(&bytes).ok()?;
    if header.key != key {
        return None;
    }
    match header.entry {
        Decoded::Vary(names) => Some(Entry::Vary(names.into())),
        Decoded::Object(mut obj) => {
            let body_len = usize::try_from(header.body_len).ok()?;
            if bytes.len() != header.len.checked_add(body_len)? {
                return None;
            }
            // Copied out, so the stored body is exactly its own size.
            obj.body = Body::from(Bytes::copy_from_slice(bytes.get(header.len..)?));
            Some(Entry::Object(Arc::new(*obj)))
        }
    }
}
