//! What ties a request to a server (hash keys, sticky cookies), which
//! failures may move a request to another server, and which server then.

use std::net::IpAddr;

use levee_config::{Balance, HashKey};
use levee_upstream::balance::hash;
use levee_upstream::{Affinity, Group, Members};
use tokio::time::Instant;

use crate::message::RequestHead;

/// Most servers one request tries (the config caps `retries` at 16).
const MAX_TRIES: usize = 17;

/// The affinity of `req` under the group's balancing.
pub fn affinity(group: &Group, req: &RequestHead, client: IpAddr) -> Affinity {
    match &group.config.balance {
        Balance::Hash(key) => {
            let h = match key {
                HashKey::ClientIp => Some(match client {
                    IpAddr::V4(ip) => hash::key(&ip.octets()),
                    IpAddr::V6(ip) => hash::key(&ip.octets()),
                }),
                HashKey::Uri => Some(hash::key(req.uri())),
                HashKey::Header(name) => req.fields.get(name).map(hash::key),
                HashKey::Cookie(name) => cookie(req, name.as_bytes()).map(hash::key),
            };
            // Without the key there is nothing to be consistent about.
            h.map_or(Affinity::None, Affinity::Key)
        }
        Balance::Sticky { cookie: name } => {
            Affinity::Sticky(cookie(req, name.as_bytes()).and_then(parse_id))
        }
        _ => Affinity::None,
    }
}

/// The value of cookie `name` in the request's `Cookie` fields.
pub fn cookie<'r>(req: &'r RequestHead, name: &[u8]) -> Option<&'r [u8]> {
    req.fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, v)| v.split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (n, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (n == name).then_some(v.trim_ascii())
        })
}

/// A sticky cookie's server id: 16 hex digits.
pub fn parse_id(value: &[u8]) -> Option<u64> {
    if value.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(value).ok()?, 16).ok()
}

/// The `Set-Cookie` line that pins a client to the server `id`.
pub fn sticky_line(name: &str, id: u64) -> Vec<u8> {
    format!("Set-Cookie: {name}={id:016x}; Path=/; HttpOnly\r\n").into_bytes()
}

/// Methods that may be sent twice (RFC 9110 §9.2.2).
pub fn idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

/// The servers a request has tried, without allocating.
pub(crate) struct Tried {
    list: [usize; MAX_TRIES],
    len: usize,
}

impl Tried {
    pub(crate) fn new() -> Tried {
        Tried {
            list: [usize::MAX; MAX_TRIES],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, i: usize) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = i;
            self.len += 1;
        }
    }

    /// No server tried yet: the first attempt.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_slice(&self) -> &[usize] {
        self.list.get(..self.len).unwrap_or_default()
    }
}

/// Another server for a request that failed on the servers in `tried`, if
/// the per-request count and the upstream's retry budget allow one.
pub(crate) fn next_server(
    group: &Group,
    members: &Members,
    affinity: levee_upstream::Affinity,
    tried: &Tried,
) -> Option<usize> {
    if tried.len > group.config.retry.retries as usize {
        return None;
    }
    let now = Instant::now();
    let next = group.pick(members, affinity, tried.as_slice(), now)?;
    group.budget.try_retry(now).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_ids_round_trip() {
        let line = sticky_line("srv", 0x00ab_cdef_0123_4567);
        assert_eq!(
            line,
            b"Set-Cookie: srv=00abcdef01234567; Path=/; HttpOnly\r\n"
        );
        assert_eq!(parse_id(b"00abcdef01234567"), Some(0x00ab_cdef_0123_4567));
        assert_eq!(parse_id(b"xyz"), None);
        assert_eq!(parse_id(b"zzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn idempotence() {
        assert!(idempotent(b"GET"));
        assert!(idempotent(b"PUT"));
        assert!(!idempotent(b"POST"));
        assert!(!idempotent(b"PATCH"));
    }
}
