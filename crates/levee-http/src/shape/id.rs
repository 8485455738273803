//! Request ids: each request's, minted when its head is read (or taken
//! from a trusted client's field), carried by the exchange, sent upstream,
//! returned to the client and written to the access log and the request's
//! span.
//!
//! Minting costs no syscall and no allocation: each worker thread seeds
//! itself once from the standard library's random hasher keys, then an id
//! is a counter step, a 64-bit mix (splitmix64, a bijection, so a thread
//! never repeats one) and 32 hex digits written into the id's inline
//! buffer: a few nanoseconds.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use levee_config::{Http, RequestIdTrust};

use super::Name;
use crate::message::RequestHead;
use crate::origin::Origin;

/// The longest id taken from a client; a longer one is replaced.
pub(crate) const MAX_ID: usize = 64;

/// The field the id travels in, with whose incoming id is kept.
#[derive(Debug)]
pub(crate) struct IdField {
    pub(crate) name: Name,
    /// `name` in lower case, for finding it in the request's fields.
    lower: String,
    trust: RequestIdTrust,
}

impl IdField {
    /// The id field `[http]` asks for; `None` when ids are off.
    pub(crate) fn build(http: &Http) -> Option<IdField> {
        if !http.request_id {
            return None;
        }
        Some(IdField {
            name: Name::new(&http.request_id_header)?,
            lower: http.request_id_header.to_ascii_lowercase(),
            trust: http.request_id_trust,
        })
    }

    /// The id of a request: the client's own when it is trusted to give
    /// one and it is well formed, else a new one.
    pub(crate) fn id_for(&self, head: &RequestHead, origin: &Origin) -> RequestId {
        let trusted = match self.trust {
            RequestIdTrust::TrustedProxies => origin.proxy.is_some(),
            RequestIdTrust::Any => true,
            RequestIdTrust::None => false,
        };
        if trusted
            && let Some(given) = head.fields.get(&self.lower)
            && let Some(id) = RequestId::accept(given)
        {
            return id;
        }
        RequestId::mint()
    }
}

/// A request's id, held inline (no allocation).
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    buf: [u8; MAX_ID],
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::none()
    }
}

thread_local! {
    /// This thread's (prefix, next counter value), seeded on first use.
    static SEQUENCE: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

impl RequestId {
    /// No id (`[http] request_id = false`).
    pub const fn none() -> RequestId {
        RequestId {
            len: 0,
            buf: [0; MAX_ID],
        }
    }

    /// The id is empty: ids are off.
    pub fn is_none(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// A client's id, if it is 1 to [`MAX_ID`] visible ASCII characters
    /// (no space, no control: it goes into fields and log lines as is).
    pub fn accept(given: &[u8]) -> Option<RequestId> {
        if given.is_empty() || given.len() > MAX_ID || !given.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut id = RequestId::none();
        id.buf.get_mut(..given.len())?.copy_from_slice(given);
        id.len = u8::try_from(given.len()).ok()?;
        Some(id)
    }

    /// A new id: 32 lower-case hex digits, unique per thread by its
    /// counter and across threads by their random prefixes.
    pub fn mint() -> RequestId {
        let (prefix, counter) = SEQUENCE.with(|s| {
            let (prefix, counter) = s.get().unwrap_or_else(seed);
            s.set(Some((prefix, counter.wrapping_add(1))));
            (prefix, counter)
        });
        let mut id = RequestId::none();
        hex(&mut id.buf, 0, prefix);
        hex(&mut id.buf, 16, splitmix64(counter));
        id.len = 32;
        id
    }
}

/// A thread's prefix and first counter value, from the random keys the
/// standard library draws once per thread for its hash maps.
fn seed() -> (u64, u64) {
    let draw = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    (draw(), draw())
}

/// A bijective 64-bit mix (splitmix64's finaliser): distinct counters give
/// distinct ids, which do not read as a counter.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` as 16 hex digits at `buf[at..]`.
fn hex(buf: &mut [u8; MAX_ID], at: usize, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for i in 0..16 {
        let nibble = (n >> (60 - 4 * i)) & 0xf;
        if let (Some(slot), Some(digit)) = (buf.get_mut(at + i), DIGITS.get(nibble as usize)) {
            *slot = *digit;
        }
    }
}
