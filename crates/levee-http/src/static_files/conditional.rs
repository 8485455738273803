//! Validators for a file (`ETag`, `Last-Modified`) and the conditional
//! request fields that test them (RFC 9110 §13). Pure: no clock, no I/O.
//!
//! Only the fields a static GET/HEAD needs are evaluated: `If-None-Match`,
//! `If-Modified-Since` and `If-Range`. `If-Match` and `If-Unmodified-Since`
//! guard state-changing requests, which a static route refuses anyway.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 9999-12-31T23:59:59Z, the last instant an IMF-fixdate can express.
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// The validators of one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Validators {
    /// Strong entity-tag, quotes included: `"{mtime_hex}-{size_hex}"` as nginx
    /// writes it, so caches warmed by nginx stay valid.
    pub etag: String,
    /// IMF-fixdate of `mtime_secs`.
    pub last_modified: String,
    /// Modification time in whole seconds, clamped to what HTTP can express.
    mtime_secs: u64,
}

impl Validators {
    /// `mtime` is `None` when the platform cannot report it; the file is then
    /// dated at the epoch rather than left without validators.
    pub(super) fn new(mtime: Option<SystemTime>, size: u64) -> Self {
        let mtime_secs = mtime
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs().min(MAX_HTTP_DATE_SECS));
        // In range by the clamp above, so httpdate cannot panic.
        let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime_secs));
        Self {
            etag: format!("\"{mtime_secs:x}-{size:x}\""),
            last_modified,
            mtime_secs,
        }
    }

    /// RFC 9110 §13.2.2 steps 3 and 4 for a GET or HEAD: `true` means 304.
    /// `If-None-Match`, when present, decides alone.
    pub(super) fn not_modified(
        &self,
        if_none_match: Option<&[u8]>,
        if_modified_since: Option<&[u8]>,
    ) -> bool {
        if let Some(list) = if_none_match {
            return self.none_match_fails(list);
        }
        if_modified_since
            .and_then(parse_date_secs)
            .is_some_and(|since| self.mtime_secs <= since)
    }

    /// RFC 9110 §13.1.5: `true` when the `Range` field may be honoured.
    /// Entity-tags compare strongly; a date must equal `Last-Modified` exactly.
    pub(super) fn if_range_holds(&self, if_range: &[u8]) -> bool {
        let value = if_range.trim_ascii();
        if value.starts_with(b"\"") || value.starts_with(b"W/") {
            return match parse_entity_tags(value).as_deref() {
                Some([tag]) => !tag.weak && tag.opaque == self.etag.as_bytes(),
                _ => false,
            };
        }
        parse_date_secs(value) == Some(self.mtime_secs)
    }

    /// Weak comparison against a `*` or a list of entity-tags. A list that
    /// does not parse matches nothing, so the client gets the full response.
    fn none_match_fails(&self, list: &[u8]) -> bool {
        let list = list.trim_ascii();
        if list == b"*" {
            return true;
        }
        parse_entity_tags(list)
            .is_some_and(|tags| tags.iter().any(|tag| tag.opaque == self.etag.as_bytes()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The quoted string, quotes included.
    opaque: &'a [u8],
}

/// Parses `1#entity-tag`. `None` on any syntax error. Commas may appear
/// inside an opaque-tag, so the list is scanned rather than split.
fn parse_entity_tags(mut rest: &[u8]) -> Option<Vec<EntityTag<'_>>> {
    let mut tags = Vec::new();
    loop {
        rest = rest.trim_ascii_start();
        while let Some(after) = rest.strip_prefix(b",") {
            rest = after.trim_ascii_start();
        }
        if rest.is_empty() {
            break;
        }
        let (weak, body) = match rest.strip_prefix(b"W/") {
            Some(body) => (true, body),
            None => (false, rest),
        };
        let inner = body.strip_prefix(b"\"")?;
        let close = inner.iter().position(|&b| b == b'"')?;
        if !inner[..close].iter().all(|&b| is_etagc(b)) {
            return None;
        }
        // The opening quote, `close` bytes, the closing quote.
        let (opaque, after) = body.split_at(close + 2);
        tags.push(EntityTag { weak, opaque });
        rest = after.trim_ascii_start();
        if !(rest.is_empty() || rest.starts_with(b",")) {
            return None;
        }
    }
    (!tags.is_empty()).then_some(tags)
}

/// `etagc = %x21 / %x23-7E / obs-text`
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// An HTTP-date as whole seconds since the epoch. Invalid dates are `None`,
/// and RFC 9110 says to ignore the field then.
fn parse_date_secs(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value.trim_ascii()).ok()?;
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

#[cfg(test)]
mod tests;
