//! What ties a request to a server: hash keys and sticky cookies (which
//! failures may move it to another server is levee_upstream::retry's).

use std::net::IpAddr;

use levee_config::{Balance, CookieAttributes, HashKey};
use levee_upstream::balance::hash;
use levee_upstream::{Affinity, Group};

use crate::message::RequestHead;

/// The affinity of `req` under the group's balancing.
pub(super) fn affinity(group: &Group, req: &RequestHead, client: IpAddr) -> Affinity {
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
        Balance::Sticky { cookie: name, .. } => {
            Affinity::Sticky(cookie(req, name.as_bytes()).and_then(parse_id))
        }
        _ => Affinity::None,
    }
}

/// The value of cookie `name` in the request's `Cookie` fields.
pub(super) fn cookie<'r>(req: &'r RequestHead, name: &[u8]) -> Option<&'r [u8]> {
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
pub(super) fn parse_id(value: &[u8]) -> Option<u64> {
    if value.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(value).ok()?, 16).ok()
}

/// The `Set-Cookie` line that pins a client to the server `id`, with the
/// upstream's `Secure`, `SameSite` and `Max-Age` attributes.
pub(super) fn sticky_line(name: &str, id: u64, attributes: &CookieAttributes) -> Vec<u8> {
    let more = attributes.suffix();
    format!("Set-Cookie: {name}={id:016x}; Path=/; HttpOnly{more}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_ids_round_trip() {
        let line = sticky_line("srv", 0x00ab_cdef_0123_4567, &CookieAttributes::default());
        assert_eq!(
            line,
            b"Set-Cookie: srv=00abcdef01234567; Path=/; HttpOnly\r\n"
        );
        let all = CookieAttributes {
            secure: true,
            same_site: Some(levee_config::SameSite::None),
            max_age: Some(std::time::Duration::from_secs(3600)),
        };
        assert_eq!(
            sticky_line("srv", 1, &all),
            b"Set-Cookie: srv=0000000000000001; Path=/; HttpOnly; Secure; SameSite=None; Max-Age=3600\r\n"
        );
        assert_eq!(parse_id(b"00abcdef01234567"), Some(0x00ab_cdef_0123_4567));
        assert_eq!(parse_id(b"xyz"), None);
        assert_eq!(parse_id(b"zzzzzzzzzzzzzzzz"), None);
    }
}
