//! The bytes the replay reads and writes itself, past hickory: a query's
//! header, question and OPT record, and the COOKIE option written into a
//! stored reply per query.
//!
//! ```text
//! query:  ID │ flags, QD 1, AN 0, NS 0, AR 0|1 │ question │ [OPT: root, 41, size, TTL, options]
//!              └──────────── Query::head ─────────────────┘          └ ext. RCODE, version 0, DO
//! reply:  stored bytes, the query's ID over the first two, and with a
//!         cookie: OPT RDLENGTH 28 ─ COOKIE 10, 24, client cookie, server cookie
//! ```
//!
//! Anything else (a compressed or odd name before an OPT, an OPT of
//! another version or with an option but one COOKIE, a signature, bytes
//! after the OPT) is not read: hickory decodes it on the full way.

/// The record type of OPT, and the option code of COOKIE (RFC 7873).
const OPT: u16 = 41;
const COOKIE: u16 = 10;
/// An OPT record less its options: the root, TYPE, CLASS, TTL, RDLENGTH.
const OPT_FIXED: usize = 11;
/// A COOKIE option as levee answers it: code, length, the client cookie
/// (8 bytes) and the server cookie (16).
pub(super) const ANSWERED_COOKIE: usize = 4 + 24;

/// A query the replay may answer: one question, and no other record but
/// an OPT with no option but one COOKIE.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Query<'a> {
    /// The header less its ID, and the question as sent: what, with the
    /// OPT's TTL field, its reply depends on.
    pub head: &'a [u8],
    pub edns: Option<Opt<'a>>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Opt<'a> {
    /// The UDP payload size offered.
    pub size: u16,
    /// The TTL field: extended RCODE, version (0), flags (DO).
    pub ttl: [u8; 4],
    /// The COOKIE option's data, when there is one.
    pub cookie: Option<&'a [u8]>,
}

impl<'a> Query<'a> {
    /// The key its reply is stored under: the head, and for EDNS the TTL
    /// field (version, DO), built in `scratch`; not the size, which only
    /// decides whether a stored reply fits.
    pub(super) fn key<'k>(&self, scratch: &'k mut Vec<u8>) -> &'k [u8]
    where
        'a: 'k,
    {
        let Some(opt) = &self.edns else {
            return self.head;
        };
        scratch.clear();
        scratch.extend_from_slice(self.head);
        scratch.extend_from_slice(&opt.ttl);
        scratch
    }
}

/// Reads `bytes` as a query the replay may answer, or `None`.
pub(super) fn read(bytes: &[u8]) -> Option<Query<'_>> {
    let header = bytes.get(..12)?;
    // QR clear, opcode QUERY; QDCOUNT 1, ANCOUNT and NSCOUNT 0, ARCOUNT 0 or 1.
    if header[2] & 0xf8 != 0 || header[4..11] != [0, 1, 0, 0, 0, 0, 0] || header[11] > 1 {
        return None;
    }
    if header[11] == 0 {
        // Nothing to find after the question: all but the ID is the head
        // (bytes after the question too, which hickory ignores).
        return Some(Query {
            head: &bytes[2..],
            edns: None,
        });
    }
    let end = question_end(bytes)?;
    let head = bytes.get(2..end)?;
    let edns = opt(bytes.get(end..)?)?;
    Some(Query {
        head,
        edns: Some(edns),
    })
}

/// Where the question ends: a name of plain labels (no compression
/// pointer), its type and class.
fn question_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = usize::from(*bytes.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 || at + len - 12 > 255 {
            return None;
        }
        at += len;
    }
    let end = at + 4;
    (end <= bytes.len()).then_some(end)
}

/// The OPT record that ends a query.
fn opt(rr: &[u8]) -> Option<Opt<'_>> {
    let fixed = rr.get(..OPT_FIXED)?;
    let be = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
    // The root's name, TYPE OPT, version 0 (another: BADVERS, the full way).
    if fixed[0] != 0 || be(1) != OPT || fixed[6] != 0 {
        return None;
    }
    let mut options = &rr[OPT_FIXED..];
    if options.len() != usize::from(be(9)) {
        return None;
    }
    let mut cookie = None;
    while !options.is_empty() {
        let head = options.get(..4)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let data = options.get(4..4 + len)?;
        if code != COOKIE || cookie.is_some() {
            return None;
        }
        cookie = Some(data);
        options = &options[4 + len..];
    }
    Some(Opt {
        size: be(3),
        ttl: [fixed[5], fixed[6], fixed[7], fixed[8]],
        cookie,
    })
}

/// What of `reply` (the full path's, to a query read by [`read`]) is
/// stored: all of it, but for an answered COOKIE option, which is cut
/// (the OPT's RDLENGTH back to 0), as it is written per query. `None`
/// when the reply does not end as levee's do: no OPT for a query without,
/// else the OPT last, with that option alone or none.
pub(super) fn stored(reply: &[u8], edns: bool, cookie: bool) -> Option<Box<[u8]>> {
    let arcount = reply.get(10..12)?;
    if !edns {
        return (arcount == [0, 0]).then(|| reply.into());
    }
    let options = if cookie { ANSWERED_COOKIE } else { 0 };
    let opt_at = reply.len().checked_sub(OPT_FIXED + options)?;
    let (kept, cut) = reply.split_at(opt_at + OPT_FIXED);
    let fixed = &kept[opt_at..];
    let rdlength = (options as u16).to_be_bytes();
    if arcount != [0, 1] || fixed[..3] != [0, 0, OPT as u8] || fixed[9..] != rdlength {
        return None;
    }
    if cookie && cut[..4] != [0, COOKIE as u8, 0, 24] {
        return None;
    }
    let mut kept: Box<[u8]> = kept.into();
    let n = kept.len();
    kept[n - 2..].copy_from_slice(&[0, 0]);
    Some(kept)
}

/// The reply to send: `stored` with the query's `id`, and `cookie` (the
/// client's and the server's) as the OPT's option when there is one.
#[inline]
pub(super) fn write(stored: &[u8], id: [u8; 2], cookie: Option<&[u8; 24]>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(stored);
    out[..2].copy_from_slice(&id);
    if let Some(c) = cookie {
        let n = out.len();
        out[n - 2..].copy_from_slice(&(ANSWERED_COOKIE as u16).to_be_bytes());
        out.extend_from_slice(&[0, COOKIE as u8, 0, 24]);
        out.extend_from_slice(c);
    }
}
