//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018):
//! version 1, a timestamp, and SipHash-2-4 over the client cookie, the
//! version, the timestamp and the client's address. A client that sends a
//! server cookie levee made for its address within the last hour has
//! proved it receives at that address: its queries are not rate limited.
//!
//! The secret is random per process; a client that moves to another levee
//! simply gets a new cookie there (levee never answers BADCOOKIE).

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

/// A server cookie is good for an hour, and a few minutes from the future
/// (clocks of several levees).
const VALID_FOR: u32 = 3600;
const FUTURE: u32 = 300;

/// What the query's COOKIE option held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    None,
    /// A client cookie; the server cookie, when there was one, was levee's
    /// and valid (`true`) or not.
    Client([u8; 8], bool),
    /// A COOKIE option of a length RFC 7873 does not allow: FORMERR.
    Malformed,
}

#[derive(Clone)]
pub struct Cookies {
    key: [u8; 16],
}

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookies")
    }
}

impl Cookies {
    /// A fresh random secret.
    pub fn new() -> Cookies {
        let mut key = [0u8; 16];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key);
        Cookies { key }
    }

    /// Reads a COOKIE option's data sent by `ip` at `now` (Unix seconds).
    pub fn read(&self, data: &[u8], ip: IpAddr, now: u32) -> Sent {
        if data.len() != 8 && !(16..=40).contains(&data.len()) {
            return Sent::Malformed;
        }
        let mut client = [0u8; 8];
        client.copy_from_slice(&data[..8]);
        let server = &data[8..];
        let valid = server.len() == 16 && server[0] == 1 && {
            let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
            let age_ok =
                stamp <= now.saturating_add(FUTURE) && now.saturating_sub(stamp) <= VALID_FOR;
            age_ok && self.hash(&client, stamp, ip) == server[8..16]
        };
        Sent::Client(client, valid)
    }

    /// The COOKIE option's data for a response: the client cookie and a
    /// new server cookie.
    pub fn answer(&self, client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(client);
        out[8] = 1;
        out[12..16].copy_from_slice(&now.to_be_bytes());
        out[16..].copy_from_slice(&self.hash(client, now, ip));
        out
    }

    fn hash(&self, client: &[u8; 8], stamp: u32, ip: IpAddr) -> [u8; 8] {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(client);
        h.write(&[1, 0, 0, 0]);
        h.write(&stamp.to_be_bytes());
        match ip {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.finish().to_be_bytes()
    }
}

impl Default for Cookies {
    fn default() -> Cookies {
        Cookies::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_cookie_is_good_for_its_address_for_an_hour() {
        let c = Cookies::new();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let client = *b"abcdefgh";
        assert_eq!(c.read(&client, ip, 1000), Sent::Client(client, false));
        let full = c.answer(&client, ip, 1000);
        assert_eq!(c.read(&full, ip, 1000), Sent::Client(client, true));
        assert_eq!(c.read(&full, ip, 1000 + 3600), Sent::Client(client, true));
        assert_eq!(c.read(&full, ip, 1000 + 3601), Sent::Client(client, false));
        assert_eq!(c.read(&full, other, 1000), Sent::Client(client, false));
        let mut forged = full;
        forged[23] ^= 1;
        assert_eq!(c.read(&forged, ip, 1000), Sent::Client(client, false));
        // Another levee's secret: a valid shape, not valid here.
        assert_eq!(
            Cookies::new().read(&full, ip, 1000),
            Sent::Client(client, false)
        );
        for bad in [&full[..7], &full[..9], &full[..15], &[0u8; 41][..]] {
            assert_eq!(c.read(bad, ip, 1000), Sent::Malformed);
        }
    }
}
