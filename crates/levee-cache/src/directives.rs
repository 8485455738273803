//! `Cache-Control` directives (RFC 9111 §5.2), for requests and responses.
//!
//! Unknown directives are ignored (RFC 9111 §5.2.3); a directive with an
//! invalid argument is treated as the strictest reading (an invalid
//! `max-age` counts as 0, as RFC 9111 §4.2.1 says for invalid freshness
//! information). A directive given twice keeps its first value (§4.2.1).

/// Response directives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    /// `no-cache` without fields: store, but revalidate before every use.
    pub no_cache: bool,
    /// `no-cache="a, b"`: these fields must not be sent from a stored response without revalidation.
    pub no_cache_fields: Box<[String]>,
    /// `private` without fields: a shared cache must not store it.
    pub private: bool,
    /// `private="a, b"`: store, but without these fields.
    pub private_fields: Box<[String]>,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub public: bool,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    pub must_understand: bool,
    pub no_transform: bool,
}

/// Request directives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub max_age: Option<u64>,
    /// `max-stale` alone accepts any staleness (`Some(u64::MAX)`).
    pub max_stale: Option<u64>,
    pub min_fresh: Option<u64>,
    pub no_cache: bool,
    pub no_store: bool,
    pub only_if_cached: bool,
}

/// One directive: lower-cased name and optional (unquoted) argument.
fn each(values: &[&[u8]], mut f: impl FnMut(&str, Option<&str>)) {
    for value in values {
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        for item in split_list(text) {
            let (name, arg) = match item.split_once('=') {
                Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                None => (item.trim(), None),
            };
            if !name.is_empty() {
                f(&name.to_ascii_lowercase(), arg);
            }
        }
    }
}

/// Splits on commas that are not inside a quoted string.
fn split_list(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Delta-seconds: digits only; larger than 2^31 is capped there (RFC 9111 §1.2.2).
/// Invalid: `Some(0)`, the strictest reading.
fn seconds(arg: Option<&str>) -> Option<u64> {
    let arg = arg?;
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Some(0);
    }
    Some(arg.parse::<u64>().unwrap_or(u64::MAX).min(1 << 31))
}

/// Sets `slot` unless an earlier occurrence did.
fn keep_first(slot: &mut Option<u64>, value: Option<u64>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn field_list(arg: Option<&str>) -> Vec<String> {
    arg.map(|a| {
        a.split(',')
            .map(|f| f.trim().to_ascii_lowercase())
            .filter(|f| !f.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

impl Response {
    pub fn parse(values: &[&[u8]]) -> Response {
        let mut r = Response::default();
        // Boxed when done: stored with every object, a slice is a word
        // smaller than a Vec.
        let (mut no_cache_fields, mut private_fields) = (Vec::new(), Vec::new());
        each(values, |name, arg| match name {
            "max-age" => keep_first(&mut r.max_age, seconds(arg)),
            "s-maxage" => keep_first(&mut r.s_maxage, seconds(arg)),
            "no-store" => r.no_store = true,
            "no-cache" => match arg {
                Some(_) => no_cache_fields.extend(field_list(arg)),
                None => r.no_cache = true,
            },
            "private" => match arg {
                Some(_) => private_fields.extend(field_list(arg)),
                None => r.private = true,
            },
            "must-revalidate" => r.must_revalidate = true,
            "proxy-revalidate" => r.proxy_revalidate = true,
            "public" => r.public = true,
            "stale-while-revalidate" => keep_first(&mut r.stale_while_revalidate, seconds(arg)),
            "stale-if-error" => keep_first(&mut r.stale_if_error, seconds(arg)),
            "must-understand" => r.must_understand = true,
            "no-transform" => r.no_transform = true,
            _ => {}
        });
        r.no_cache_fields = no_cache_fields.into_boxed_slice();
        r.private_fields = private_fields.into_boxed_slice();
        r
    }
}

impl Request {
    pub fn parse(values: &[&[u8]]) -> Request {
        let mut r = Request::default();
        each(values, |name, arg| match name {
            "max-age" => keep_first(&mut r.max_age, seconds(arg)),
            "max-stale" => {
                r.max_stale = Some(if arg.is_some() {
                    seconds(arg).unwrap_or(0)
                } else {
                    u64::MAX
                })
            }
            "min-fresh" => keep_first(&mut r.min_fresh, seconds(arg)),
            "no-cache" => r.no_cache = true,
            "no-store" => r.no_store = true,
            "only-if-cached" => r.only_if_cached = true,
            _ => {}
        });
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_directives() {
        let r = Response::parse(&[
            b"public, max-age=60, s-maxage=\"120\"",
            b"private=\"Set-Cookie, X-A\", no-cache",
        ]);
        assert_eq!(r.max_age, Some(60));
        assert_eq!(r.s_maxage, Some(120));
        assert!(r.public && r.no_cache && !r.private);
        assert_eq!(&r.private_fields[..], ["set-cookie", "x-a"]);
        let r = Response::parse(&[b"max-age=abc, stale-while-revalidate=30, MUST-REVALIDATE"]);
        assert_eq!(r.max_age, Some(0));
        assert_eq!(r.stale_while_revalidate, Some(30));
        assert!(r.must_revalidate);
        assert_eq!(
            Response::parse(&[b"max-age=99999999999"]).max_age,
            Some(1 << 31)
        );
    }

    /// RFC 9111 §5.2.3: unknown directives are ignored, their quoted
    /// arguments included (a `max-age` inside one is not a directive).
    #[test]
    fn s5_2_3_unknown_directives_are_ignored() {
        let r = Response::parse(&[b"foo, ext=\"max-age=3600, no-store\", max-age=5, bar=1"]);
        assert_eq!(
            r,
            Response {
                max_age: Some(5),
                ..Response::default()
            }
        );
        assert_eq!(
            Request::parse(&[b"x-fancy=\"no-store\", max-age=9"]),
            Request {
                max_age: Some(9),
                ..Request::default()
            }
        );
    }

    #[test]
    fn request_directives() {
        let r = Request::parse(&[b"max-stale, min-fresh=5, only-if-cached"]);
        assert_eq!(r.max_stale, Some(u64::MAX));
        assert_eq!(r.min_fresh, Some(5));
        assert!(r.only_if_cached);
        assert_eq!(Request::parse(&[b"max-stale=10"]).max_stale, Some(10));
        assert!(Request::parse(&[b"no-cache"]).no_cache);
    }
}
