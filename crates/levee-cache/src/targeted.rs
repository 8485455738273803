//! Targeted cache control (RFC 9213): `CDN-Cache-Control` and the
//! operator's own field (`Levee-Cache-Control` by default), which override
//! `Cache-Control` for levee's own caching.
//!
//! A targeted field is a Structured Field Dictionary (RFC 8941) whose
//! members are cache directives. A field that does not parse, is empty, or
//! gives a directive a value of the wrong type is ignored as a whole
//! (RFC 9213 §2.1), and the next field of the target list, then
//! `Cache-Control` with `Expires`, governs instead (§2.2). `s-maxage` and
//! `proxy-revalidate` are ignored in a targeted field: the field already
//! names the cache it is for.

use crate::directives::Response;
use crate::{Field, values};

/// What governs levee's caching of one response (RFC 9213 §2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    pub directives: Response,
    /// A targeted field governs: `Cache-Control` and `Expires` are ignored.
    pub targeted: bool,
}

impl Control {
    /// The first valid, non-empty field of `targets` (lower-case names,
    /// most specific first), else `Cache-Control`.
    pub fn of(fields: &[Field<'_>], targets: &[String]) -> Control {
        for target in targets {
            let mut lines = values(fields, target).peekable();
            if lines.peek().is_none() {
                continue;
            }
            // Field lines combine into one value, as for any list field.
            let mut joined = Vec::new();
            for line in lines {
                if !joined.is_empty() {
                    joined.extend_from_slice(b", ");
                }
                joined.extend_from_slice(line);
            }
            if let Some(directives) = parse(&joined) {
                return Control {
                    directives,
                    targeted: true,
                };
            }
        }
        let cc: Vec<&[u8]> = values(fields, "cache-control").collect();
        Control {
            directives: Response::parse(&cc),
            targeted: false,
        }
    }
}

/// A bare item's value, as far as cache directives need it.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Integer(i64),
    String(String),
    Boolean(bool),
    /// Decimal, token, byte sequence or inner list: valid, never a directive's type.
    Other,
}

/// The directives of one targeted field value; `None` when it is empty,
/// does not parse, or gives a known directive a value of the wrong type.
pub fn parse(value: &[u8]) -> Option<Response> {
    let members = dictionary(value)?;
    if members.is_empty() {
        return None;
    }
    let mut r = Response::default();
    let (mut no_cache_fields, mut private_fields) = (Vec::new(), Vec::new());
    for (key, item) in members {
        match key.as_str() {
            "max-age" => r.max_age = Some(seconds(&item)?),
            "stale-while-revalidate" => r.stale_while_revalidate = Some(seconds(&item)?),
            "stale-if-error" => r.stale_if_error = Some(seconds(&item)?),
            "no-store" => r.no_store = flag(&item)?,
            "must-revalidate" => r.must_revalidate = flag(&item)?,
            "public" => r.public = flag(&item)?,
            "must-understand" => r.must_understand = flag(&item)?,
            "no-transform" => r.no_transform = flag(&item)?,
            "no-cache" => r.no_cache = flag_or_fields(&item, &mut no_cache_fields)?,
            "private" => r.private = flag_or_fields(&item, &mut private_fields)?,
            // s-maxage, proxy-revalidate and extensions: ignored.
            _ => {}
        }
    }
    r.no_cache_fields = no_cache_fields.into_boxed_slice();
    r.private_fields = private_fields.into_boxed_slice();
    Some(r)
}

/// Delta-seconds: a non-negative Integer, capped at 2^31 (RFC 9111 §1.2.2).
fn seconds(item: &Item) -> Option<u64> {
    match *item {
        Item::Integer(n) if n >= 0 => Some(n.unsigned_abs().min(1 << 31)),
        _ => None,
    }
}

/// A directive without an argument: a Boolean (`?0` turns it off).
fn flag(item: &Item) -> Option<bool> {
    match *item {
        Item::Boolean(b) => Some(b),
        _ => None,
    }
}

/// `no-cache` and `private`: a Boolean, or a String naming fields (which
/// leaves the unqualified directive off).
fn flag_or_fields(item: &Item, into: &mut Vec<String>) -> Option<bool> {
    match item {
        Item::Boolean(b) => Some(*b),
        Item::String(s) => {
            into.extend(
                s.split(',')
                    .map(|f| f.trim().to_ascii_lowercase())
                    .filter(|f| !f.is_empty()),
            );
            Some(false)
        }
        _ => None,
    }
}

/// An RFC 8941 Dictionary: its members in order, a later duplicate
/// replacing an earlier one's value (§4.2.2).
fn dictionary(input: &[u8]) -> Option<Vec<(String, Item)>> {
    let mut p = Parser { input, at: 0 };
    p.skip(|b| b == b' ');
    let mut members: Vec<(String, Item)> = Vec::new();
    while !p.done() {
        let key = p.key()?;
        let item = if p.eat(b'=') {
            let item = p.item_or_inner_list()?;
            p.parameters()?;
            item
        } else {
            p.parameters()?;
            Item::Boolean(true)
        };
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some(member) => member.1 = item,
            None => members.push((key, item)),
        }
        p.skip(|b| b == b' ' || b == b'\t');
        if p.done() {
            break;
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip(|b| b == b' ' || b == b'\t');
        if p.done() {
            // A trailing comma.
            return None;
        }
    }
    Some(members)
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.at >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    /// `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> Option<String> {
        let start = self.at;
        if !self
            .peek()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        {
            return None;
        }
        self.skip(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
        let key = self.input.get(start..self.at)?;
        Some(String::from_utf8_lossy(key).into_owned())
    }

    fn item_or_inner_list(&mut self) -> Option<Item> {
        if !self.eat(b'(') {
            return self.bare_item();
        }
        loop {
            self.skip(|b| b == b' ');
            if self.eat(b')') {
                return Some(Item::Other);
            }
            self.bare_item()?;
            self.parameters()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip(|b| b == b' ');
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn bare_item(&mut self) -> Option<Item> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b'?' => {
                self.at += 1;
                let b = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.at += 1;
                Some(Item::Boolean(b))
            }
            b':' => {
                self.at += 1;
                self.skip(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                self.eat(b':').then_some(Item::Other)
            }
            b if b.is_ascii_alphabetic() || b == b'*' => {
                self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
                Some(Item::Other)
            }
            _ => None,
        }
    }

    /// An Integer (at most 15 digits) or a Decimal (at most 12 digits, a
    /// dot, 1 to 3 digits).
    fn number(&mut self) -> Option<Item> {
        let negative = self.eat(b'-');
        let start = self.at;
        self.skip(|b| b.is_ascii_digit());
        let int = self.input.get(start..self.at)?;
        if int.is_empty() {
            return None;
        }
        if self.eat(b'.') {
            let frac_start = self.at;
            self.skip(|b| b.is_ascii_digit());
            let frac = self.at - frac_start;
            return (int.len() <= 12 && (1..=3).contains(&frac)).then_some(Item::Other);
        }
        if int.len() > 15 {
            return None;
        }
        let n: i64 = std::str::from_utf8(int).ok()?.parse().ok()?;
        Some(Item::Integer(if negative { -n } else { n }))
    }

    /// A String: printable ASCII between quotes, `\"` and `\\` escaped.
    fn string(&mut self) -> Option<Item> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return Some(Item::String(out)),
                b'\\' => {
                    let escaped = self.peek().filter(|&e| e == b'"' || e == b'\\')?;
                    self.at += 1;
                    out.push(char::from(escaped));
                }
                0x20..=0x7e => out.push(char::from(b)),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
