//! The `Range` request field (RFC 9110 §14.2) applied to a file of known size.
//! Pure: bytes and a size in, a decision out.
//!
//! Anything we choose not to honour degrades to a full 200 response, which
//! RFC 9110 always allows: a header that does not parse, a unit other than
//! `bytes`, more than [`MAX_RANGES`] ranges, or ranges that overlap (a classic
//! amplification trick: `bytes=0-,0-,0-,...`).

/// More ranges than this and the whole file is sent instead.
pub(crate) const MAX_RANGES: usize = 16;

/// A satisfiable byte range: `len` is never zero and `start + len <= size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    /// Offset of the last byte, as written in `Content-Range`.
    pub(crate) fn last(self) -> u64 {
        self.start + (self.len - 1)
    }

    /// The `Content-Range` value for this range of a `size`-byte file.
    pub(crate) fn content_range(self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.last())
    }
}

/// What to do with a `Range` field for a file of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeDecision {
    /// Ignore the field and send the whole file with 200.
    Full,
    /// Send these ranges with 206, in the order asked for. Never empty,
    /// never overlapping.
    Partial(Vec<ByteRange>),
    /// No range overlaps the file: 416.
    Unsatisfiable,
}

/// One `range-spec` as written, before it meets the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-n`: the final `n` bytes.
    Suffix(u64),
}

/// Applies a `Range` field value to a file of `size` bytes.
pub(crate) fn decide(field: &[u8], size: u64) -> RangeDecision {
    let Some(specs) = parse(field) else {
        return RangeDecision::Full;
    };
    let ranges: Vec<ByteRange> = specs
        .iter()
        .filter_map(|spec| satisfy(*spec, size))
        .collect();
    if ranges.is_empty() {
        return RangeDecision::Unsatisfiable;
    }
    if overlapping(&ranges) {
        return RangeDecision::Full;
    }
    RangeDecision::Partial(ranges)
}

/// `None` when the field is not a valid `bytes` ranges-specifier or names
/// more than [`MAX_RANGES`] ranges.
fn parse(field: &[u8]) -> Option<Vec<Spec>> {
    let field = field.trim_ascii();
    let (unit, set) = field.split_at_checked(6)?;
    if !unit.eq_ignore_ascii_case(b"bytes=") {
        return None;
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1.2: empty list elements are accepted and ignored.
    for element in set.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if element.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGES {
            return None;
        }
        specs.push(parse_spec(element)?);
    }
    (!specs.is_empty()).then_some(specs)
}

fn parse_spec(spec: &[u8]) -> Option<Spec> {
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.is_empty() {
        return Some(Spec::Suffix(parse_u64(last)?));
    }
    let first = parse_u64(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(parse_u64(last)?)
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// Non-empty ASCII digits; values past `u64::MAX` saturate, which is still
/// correct: such an offset is past the end of any file.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn satisfy(spec: Spec, size: u64) -> Option<ByteRange> {
    match spec {
        Spec::From { first, last } => {
            if first >= size {
                return None;
            }
            let last = last.map_or(size - 1, |last| last.min(size - 1));
            Some(ByteRange {
                start: first,
                len: last - first + 1,
            })
        }
        Spec::Suffix(n) => {
            let len = n.min(size);
            (len > 0).then(|| ByteRange {
                start: size - len,
                len,
            })
        }
    }
}

fn overlapping(ranges: &[ByteRange]) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable_by_key(|r| r.start);
    sorted.windows(2).any(|pair| match pair {
        [a, b] => b.start <= a.last(),
        _ => false,
    })
}

#[cfg(test)]
mod tests;
