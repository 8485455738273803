//! What a rate limit counts by. A key is a SipHash (random per process, so
//! clients cannot aim at collisions) of the request parts a rule names. A
//! request without one of those parts (no such header, cookie or query
//! parameter) is not counted by the rule, as nginx does with an empty key.
//!
//! A query parameter is found the way any application could read it, so
//! that no spelling lets a client count under one value while the
//! application acts on another (docs/protection.md): pairs are separated by
//! `&` or `;`, names and values are percent-decoded (`+` is a space), names
//! compare without regard to ASCII case, and a parameter given twice
//! (`code=A&code=B`, `code=A;CODE=B`) is an error the caller answers with
//! 400: applications disagree on which of the two they read.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;

use levee_config::KeyPart;

use crate::access::{bits, mask};

/// The parts of a request a key can be made of.
pub trait Request {
    fn peer(&self) -> IpAddr;
    /// The path without the query.
    fn path(&self) -> &[u8];
    /// The query without `?`; empty when there is none.
    fn query(&self) -> &[u8];
    /// Calls `f` with each value of the header `name` (lower case), in
    /// order, until `f` returns true.
    fn header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool);
}

/// Why a request cannot be keyed: the caller refuses it (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a keyed query parameter is given more than once")]
    RepeatedParameter,
}

/// A rule's key, ready to hash requests.
#[derive(Debug, Clone)]
pub struct KeySpec {
    parts: Vec<KeyPart>,
    hasher: RandomState,
}

impl KeySpec {
    pub fn new(parts: &[KeyPart]) -> KeySpec {
        KeySpec {
            parts: parts.to_vec(),
            hasher: RandomState::new(),
        }
    }

    /// The request's key, or `None` when a part is missing.
    pub fn key(&self, req: &impl Request) -> Result<Option<u64>, KeyError> {
        self.key_with(req, self.hasher.build_hasher())
    }

    /// The key hashed with `h`: a fleet-scoped rule needs the same key on
    /// every member (rate/fleet.rs), which a per-process random one is not.
    pub fn key_with(
        &self,
        req: &impl Request,
        mut h: impl Hasher,
    ) -> Result<Option<u64>, KeyError> {
        for part in &self.parts {
            match part {
                KeyPart::ClientIp { v4, v6 } => {
                    let ip = req.peer().to_canonical();
                    let prefix = if ip.is_ipv4() { *v4 } else { *v6 };
                    h.write_u8(1);
                    h.write_u128(bits(ip) & mask(ip, prefix));
                }
                KeyPart::Path => {
                    h.write_u8(2);
                    h.write(req.path());
                    h.write_usize(req.path().len());
                }
                KeyPart::Header(name) => {
                    let mut found = false;
                    req.header(name, &mut |v| {
                        h.write_u8(3);
                        h.write(v);
                        h.write_usize(v.len());
                        found = true;
                        true
                    });
                    if !found {
                        return Ok(None);
                    }
                }
                KeyPart::Cookie(name) => {
                    let mut found = false;
                    req.header("cookie", &mut |v| match cookie(v, name.as_bytes()) {
                        Some(value) => {
                            h.write_u8(4);
                            h.write(value);
                            h.write_usize(value.len());
                            found = true;
                            true
                        }
                        None => false,
                    });
                    if !found {
                        return Ok(None);
                    }
                }
                KeyPart::Query(name) => {
                    let Some(value) = query_param(req.query(), name.as_bytes())? else {
                        return Ok(None);
                    };
                    h.write_u8(5);
                    let mut len = 0usize;
                    percent_decode(value, |b| {
                        h.write_u8(b);
                        len += 1;
                    });
                    h.write_usize(len);
                }
            }
        }
        Ok(Some(h.finish()))
    }
}

impl KeySpec {
    /// The request's key as text, for the list of most-refused keys: the
    /// parts joined by spaces (`203.0.113.0/24`, `code=PROMO`,
    /// `header:x-api-key=…`). Called only for refused requests. Bytes that
    /// are not UTF-8 are shown replaced; the text is shown as text.
    pub fn describe(&self, req: &impl Request) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if !out.is_empty() {
                out.push(' ');
            }
            match part {
                KeyPart::ClientIp { v4, v6 } => {
                    let ip = req.peer().to_canonical();
                    let (prefix, full) = if ip.is_ipv4() { (*v4, 32) } else { (*v6, 128) };
                    let masked = bits(ip) & mask(ip, prefix);
                    let shown = match ip {
                        IpAddr::V4(_) => IpAddr::from((masked as u32).to_be_bytes()),
                        IpAddr::V6(_) => IpAddr::from(masked.to_be_bytes()),
                    };
                    out.push_str(&shown.to_string());
                    if prefix < full {
                        out.push_str(&format!("/{prefix}"));
                    }
                }
                KeyPart::Path => out.push_str(&String::from_utf8_lossy(req.path())),
                KeyPart::Header(name) => {
                    req.header(name, &mut |v| {
                        out.push_str(&format!("{name}={}", String::from_utf8_lossy(v)));
                        true
                    });
                }
                KeyPart::Cookie(name) => {
                    req.header("cookie", &mut |v| match cookie(v, name.as_bytes()) {
                        Some(value) => {
                            let value = String::from_utf8_lossy(value);
                            out.push_str(&format!("cookie:{name}={value}"));
                            true
                        }
                        None => false,
                    });
                }
                KeyPart::Query(name) => {
                    if let Ok(Some(value)) = query_param(req.query(), name.as_bytes()) {
                        let mut decoded = Vec::with_capacity(value.len());
                        percent_decode(value, |b| decoded.push(b));
                        out.push_str(&format!("{name}={}", String::from_utf8_lossy(&decoded)));
                    }
                }
            }
        }
        out
    }
}

/// The value of cookie `name` in one `Cookie` header value.
fn cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
    })
}

/// The raw value of the parameter whose decoded name is `name` (ASCII case
/// aside), pairs split on `&` and `;`; an error when it is given twice.
fn query_param<'a>(query: &'a [u8], name: &[u8]) -> Result<Option<&'a [u8]>, KeyError> {
    let mut found = None;
    let mut decoded = Vec::new();
    for pair in query.split(|&b| b == b'&' || b == b';') {
        let (n, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        // Only names that could decode to `name` are decoded (no allocation
        // for the others: an escape is at least as long as its byte).
        if n.len() < name.len() {
            continue;
        }
        decoded.clear();
        percent_decode(n, |b| decoded.push(b));
        if decoded.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(KeyError::RepeatedParameter);
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// Percent-decodes `%XX` and `+` (form encoding), so `code=AB%43` and
/// `code=ABC` are the same key; a malformed escape stays as written.
fn percent_decode(input: &[u8], mut out: impl FnMut(u8)) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out(b'%'),
            },
            b => out(b),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests;
