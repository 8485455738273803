//! Stored entries as bytes: the header of a disk tier file and the value
//! of a shared tier key. The same encoding serves both, so an object moves
//! between tiers without a second format.
//!
//! ```text
//! "LVC\x01" | header length u32 | body length u64 | kind u8 | key
//!   object: status u16, visible u32, head, tags, times, directives
//!   vary:   the names
//! | checksum u64 (SipHash of everything before it but the body length)
//! then the body (objects only)
//! ```
//!
//! Integers are little-endian; byte strings carry a u32 length, short
//! ones (tags, names, fields) a u16. The body length sits at a fixed
//! offset so a file written while its body streams in gets it patched at
//! the end ([`BODY_LEN_AT`]); it is outside the checksum, and a reader
//! checks it against the file's size instead. Decoding does no I/O and
//! never panics: anything short, long or inconsistent is [`Bad`].

use std::hash::Hasher;

use crate::directives::Response;
use crate::freshness::{Expires, Stored};
use crate::store::Object;

const MAGIC: &[u8; 4] = b"LVC\x01";
/// Where the body length is in a header.
pub const BODY_LEN_AT: usize = 8;
/// The longest header accepted when decoding (a head is at most what the
/// proxy accepts from an upstream, far below this).
pub const MAX_HEADER: usize = 1 << 20;

const KIND_OBJECT: u8 = 0;
const KIND_VARY: u8 = 1;

/// Bytes that are not a stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a stored cache entry (truncated, corrupt or of another version)")]
pub struct Bad;

/// What a header describes.
#[derive(Debug, Clone)]
pub enum Decoded {
    /// An object without its body (which follows the header). Boxed: a
    /// marker is far smaller.
    Object(Box<Object>),
    Vary(Vec<String>),
}

/// A decoded header.
#[derive(Debug, Clone)]
pub struct Header {
    pub key: Vec<u8>,
    pub entry: Decoded,
    /// Bytes of the header: the body starts here.
    pub len: usize,
    pub body_len: u64,
}

/// The header of `obj` stored under `key`, with `body_len` (patch it at
/// [`BODY_LEN_AT`] when the body's length is known only at its end).
pub fn object_header(key: &[u8], obj: &Object, body_len: u64) -> Vec<u8> {
    let mut w = start(key, KIND_OBJECT, 256 + obj.head.len());
    w.extend_from_slice(&obj.status.to_le_bytes());
    w.extend_from_slice(&obj.visible.to_le_bytes());
    long(&mut w, &obj.head);
    w.extend_from_slice(&(obj.tags.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for t in obj.tags.iter().take(u16::MAX as usize) {
        short(&mut w, t.as_bytes());
    }
    meta(&mut w, &obj.meta);
    finish(w, body_len)
}

/// The header of a Vary marker naming `names` under `key`.
pub fn vary_header(key: &[u8], names: &[String]) -> Vec<u8> {
    let mut w = start(key, KIND_VARY, 64);
    strings(&mut w, names);
    finish(w, 0)
}

fn start(key: &[u8], kind: u8, size: usize) -> Vec<u8> {
    let mut w = Vec::with_capacity(size + key.len());
    w.extend_from_slice(MAGIC);
    w.extend_from_slice(&0u32.to_le_bytes());
    w.extend_from_slice(&0u64.to_le_bytes());
    w.push(kind);
    long(&mut w, key);
    w
}

fn finish(mut w: Vec<u8>, body_len: u64) -> Vec<u8> {
    let len = (w.len() + 8) as u32;
    w[4..8].copy_from_slice(&len.to_le_bytes());
    w[BODY_LEN_AT..BODY_LEN_AT + 8].copy_from_slice(&body_len.to_le_bytes());
    let sum = checksum(&w);
    w.extend_from_slice(&sum.to_le_bytes());
    w
}

/// SipHash of a header's bytes but its body length (patched later).
fn checksum(header: &[u8]) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6c65_7665_6521, 0x6361_6368_6531);
    h.write(header.get(..BODY_LEN_AT).unwrap_or_default());
    h.write(header.get(BODY_LEN_AT + 8..).unwrap_or_default());
    h.finish()
}

/// How long the header at the start of `bytes` is, once its first 8
/// bytes are there (a reader that read too little reads this much).
pub fn header_len(bytes: &[u8]) -> Result<usize, Bad> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(Bad);
    }
    let len = u32::from_le_bytes(bytes.get(4..8).ok_or(Bad)?.try_into().map_err(|_| Bad)?);
    let len = len as usize;
    if !(BODY_LEN_AT + 8 + 8..=MAX_HEADER).contains(&len) {
        return Err(Bad);
    }
    Ok(len)
}

/// Decodes the header at the start of `bytes` (which may go on with the body).
pub fn decode(bytes: &[u8]) -> Result<Header, Bad> {
    let len = header_len(bytes)?;
    let header = bytes.get(..len).ok_or(Bad)?;
    let (content, sum) = header.split_at(len - 8);
    if checksum(content).to_le_bytes() != sum {
        return Err(Bad);
    }
    let mut r = Reader(content.get(BODY_LEN_AT..).ok_or(Bad)?);
    let body_len = r.u64()?;
    let kind = r.u8()?;
    let key = r.long()?.to_vec();
    let entry = match kind {
        KIND_OBJECT => {
            let status = r.u16()?;
            let visible = r.u32()?;
            let head = Box::from(r.long()?);
            let n = r.u16()?;
            let mut tags = Vec::with_capacity(n as usize);
            for _ in 0..n {
                tags.push(Box::from(r.text()?));
            }
            let meta = r.meta()?;
            Decoded::Object(Box::new(Object {
                status,
                visible,
                head,
                body: Default::default(),
                meta,
                tags: tags.into(),
            }))
        }
        KIND_VARY => Decoded::Vary(r.strings()?),
        _ => return Err(Bad),
    };
    if !r.0.is_empty() {
        return Err(Bad);
    }
    Ok(Header {
        key,
        entry,
        len,
        body_len,
    })
}

fn long(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_le_bytes());
    w.extend_from_slice(b);
}

/// A short string; longer than u16 is cut (names and tags never are).
fn short(w: &mut Vec<u8>, b: &[u8]) {
    let b = b.get(..b.len().min(u16::MAX as usize)).unwrap_or_default();
    w.extend_from_slice(&(b.len() as u16).to_le_bytes());
    w.extend_from_slice(b);
}

fn strings(w: &mut Vec<u8>, list: &[String]) {
    w.extend_from_slice(&(list.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for s in list.iter().take(u16::MAX as usize) {
        short(w, s.as_bytes());
    }
}

fn opt(w: &mut Vec<u8>, v: Option<u64>) {
    w.push(u8::from(v.is_some()));
    w.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
}

fn meta(w: &mut Vec<u8>, m: &Stored) {
    w.extend_from_slice(&m.status.to_le_bytes());
    w.extend_from_slice(&m.request_time.to_le_bytes());
    w.extend_from_slice(&m.response_time.to_le_bytes());
    opt(w, m.date);
    w.extend_from_slice(&m.age.to_le_bytes());
    match m.expires {
        None => opt(w, None),
        Some(Expires::At(at)) => opt(w, Some(at)),
        Some(Expires::Invalid) => {
            w.push(2);
            w.extend_from_slice(&0u64.to_le_bytes());
        }
    }
    opt(w, m.last_modified);
    let d = &m.directives;
    opt(w, d.max_age);
    opt(w, d.s_maxage);
    opt(w, d.stale_while_revalidate);
    opt(w, d.stale_if_error);
    let flags = [
        d.no_store,
        d.no_cache,
        d.private,
        d.must_revalidate,
        d.proxy_revalidate,
        d.public,
        d.must_understand,
        d.no_transform,
    ]
    .iter()
    .enumerate()
    .fold(0u16, |acc, (i, &f)| acc | (u16::from(f) << i));
    w.extend_from_slice(&flags.to_le_bytes());
    strings(w, &d.no_cache_fields);
    strings(w, &d.private_fields);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        if self.0.len() < n {
            return Err(Bad);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Bad> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Bad> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| Bad)?,
        ))
    }

    fn u32(&mut self) -> Result<u32, Bad> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| Bad)?,
        ))
    }

    fn u64(&mut self) -> Result<u64, Bad> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Bad)?,
        ))
    }

    fn long(&mut self) -> Result<&'a [u8], Bad> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> Result<&'a str, Bad> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| Bad)
    }

    fn strings(&mut self) -> Result<Vec<String>, Bad> {
        let n = self.u16()?;
        (0..n).map(|_| self.text().map(str::to_owned)).collect()
    }

    fn opt(&mut self) -> Result<(u8, u64), Bad> {
        let tag = self.u8()?;
        let v = self.u64()?;
        Ok((tag, v))
    }

    fn some(&mut self) -> Result<Option<u64>, Bad> {
        match self.opt()? {
            (0, _) => Ok(None),
            (1, v) => Ok(Some(v)),
            _ => Err(Bad),
        }
    }

    fn meta(&mut self) -> Result<Stored, Bad> {
        let status = self.u16()?;
        let request_time = self.u64()?;
        let response_time = self.u64()?;
        let date = self.some()?;
        let age = self.u64()?;
        let expires = match self.opt()? {
            (0, _) => None,
            (1, at) => Some(Expires::At(at)),
            (2, _) => Some(Expires::Invalid),
            _ => return Err(Bad),
        };
        let last_modified = self.some()?;
        let max_age = self.some()?;
        let s_maxage = self.some()?;
        let stale_while_revalidate = self.some()?;
        let stale_if_error = self.some()?;
        let flags = self.u16()?;
        let flag = |i: u16| flags & (1 << i) != 0;
        let no_cache_fields = self.strings()?.into();
        let private_fields = self.strings()?.into();
        Ok(Stored {
            status,
            request_time,
            response_time,
            date,
            age,
            expires,
            last_modified,
            directives: Response {
                max_age,
                s_maxage,
                no_store: flag(0),
                no_cache: flag(1),
                no_cache_fields,
                private: flag(2),
                private_fields,
                must_revalidate: flag(3),
                proxy_revalidate: flag(4),
                public: flag(5),
                stale_while_revalidate,
                stale_if_error,
                must_understand: flag(6),
                no_transform: flag(7),
            },
        })
    }
}

#[cfg(test)]
mod tests;
