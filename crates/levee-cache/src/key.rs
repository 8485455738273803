//! Cache keys.
//!
//! The primary key is scheme, host and target (path and query) by default;
//! a route can drop or sort query parameters and add request headers or
//! cookies. Responses with `Vary` are stored as variants under the primary
//! key, told apart by the secondary key: the values of the fields Vary
//! names, with `Accept-Encoding` normalised to the coding levee would pick,
//! so that the many spellings browsers send share one variant.

use crate::{Field, values};

/// How a route builds its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySpec {
    /// Query parameters left out of the key (e.g. `utm_source`).
    pub drop_params: Vec<String>,
    /// Sort the remaining parameters, so `?a=1&b=2` and `?b=2&a=1` share an entry.
    pub sort_params: bool,
    /// Request fields added to the key (lower case).
    pub headers: Vec<String>,
    /// Cookie names added to the key.
    pub cookies: Vec<String>,
}

/// The primary key of a request.
pub fn primary(
    spec: &KeySpec,
    scheme: &str,
    host: &[u8],
    target: &[u8],
    fields: &[Field<'_>],
) -> Vec<u8> {
    let mut key = Vec::with_capacity(scheme.len() + host.len() + target.len() + 8);
    key.extend_from_slice(scheme.as_bytes());
    key.extend_from_slice(b"://");
    key.extend(host.iter().map(u8::to_ascii_lowercase));
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    key.extend_from_slice(path);
    if let Some(query) = query {
        let mut params: Vec<&[u8]> = query
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split(|&b| b == b'=').next().unwrap_or_default();
                !spec.drop_params.iter().any(|d| d.as_bytes() == name)
            })
            .collect();
        if spec.sort_params {
            params.sort_unstable();
        }
        if !params.is_empty() {
            key.push(b'?');
            key.extend_from_slice(&params.join(&b'&'));
        }
    }
    for h in &spec.headers {
        key.extend_from_slice(b"\0h:");
        key.extend_from_slice(h.as_bytes());
        key.push(b'=');
        for v in values(fields, h) {
            key.extend_from_slice(v);
            key.push(b',');
        }
    }
    for c in &spec.cookies {
        key.extend_from_slice(b"\0c:");
        key.extend_from_slice(c.as_bytes());
        key.push(b'=');
        if let Some(v) = cookie(fields, c) {
            key.extend_from_slice(v);
        }
    }
    key
}

/// The part of the keys of the absolute URL `url` after `scheme://`: the
/// host lower-cased without its port, as [`primary`] writes it from a
/// request's `Host` (a request to any port of a host shares its keys), then
/// the path (`/` when empty) and query. `None` unless `url` is an `http`
/// or `https` URL with a host and no user information.
pub fn url_target(url: &[u8]) -> Option<Vec<u8>> {
    let scheme_end = url.windows(3).position(|w| w == b"://")?;
    let scheme = url.get(..scheme_end)?;
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let rest = url.get(scheme_end + 3..)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.contains(&b'@') {
        return None;
    }
    let host = if authority.first() == Some(&b'[') {
        let close = authority.iter().position(|&b| b == b']')?;
        authority.get(..=close)?
    } else {
        let colon = authority.iter().rposition(|&b| b == b':');
        colon.map_or(authority, |c| &authority[..c])
    };
    if host.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(url.len());
    out.extend(host.iter().map(u8::to_ascii_lowercase));
    if !target.starts_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(target);
    Some(out)
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(fields: &'a [Field<'a>], name: &str) -> Option<&'a [u8]> {
    values(fields, "cookie")
        .flat_map(|v| v.split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .find_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq] == *name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

/// The field names a response varies on, lower-cased and sorted; `None` for `Vary: *`.
pub fn vary_names(response_fields: &[Field<'_>]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for v in values(response_fields, "vary") {
        for name in v
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|n| !n.is_empty())
        {
            if name == b"*" {
                return None;
            }
            names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// The secondary key of a request for a response varying on `names`.
pub fn secondary(names: &[String], request_fields: &[Field<'_>]) -> Vec<u8> {
    let mut key = Vec::new();
    for name in names {
        key.extend_from_slice(name.as_bytes());
        key.push(b'=');
        if name == "accept-encoding" {
            key.extend_from_slice(normalise_encoding(values(request_fields, name)));
        } else {
            let mut first = true;
            for v in values(request_fields, name) {
                if !first {
                    key.push(b',');
                }
                first = false;
                key.extend(v.iter().filter(|b| !b.is_ascii_whitespace()));
            }
        }
        key.push(0);
    }
    key
}

/// `br`, `gzip` or `identity`: the best coding the request accepts (q=0 excluded).
fn normalise_encoding<'a>(values: impl Iterator<Item = &'a [u8]>) -> &'static [u8] {
    let (mut br, mut gzip) = (false, false);
    for v in values {
        for item in v.split(|&b| b == b',') {
            let mut parts = item.split(|&b| b == b';').map(<[u8]>::trim_ascii);
            let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p: Vec<u8> = p
                    .iter()
                    .filter(|b| !b.is_ascii_whitespace())
                    .copied()
                    .collect();
                p == b"q=0" || p == b"q=0.0" || p == b"q=0.00" || p == b"q=0.000"
            });
            if refused {
                continue;
            }
            match coding.as_slice() {
                b"br" => br = true,
                b"gzip" | b"x-gzip" => gzip = true,
                _ => {}
            }
        }
    }
    if br {
        b"br"
    } else if gzip {
        b"gzip"
    } else {
        b"identity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_keys() {
        let spec = KeySpec::default();
        assert_eq!(
            primary(&spec, "http", b"Example.COM", b"/a?x=1", &[]),
            b"http://example.com/a?x=1"
        );
        let spec = KeySpec {
            drop_params: vec!["utm_source".into()],
            sort_params: true,
            headers: vec!["x-tenant".into()],
            cookies: vec!["lang".into()],
        };
        let fields: [Field<'_>; 2] = [(b"X-Tenant", b"t1"), (b"Cookie", b"sid=9; lang=fr")];
        let a = primary(&spec, "http", b"h", b"/p?b=2&utm_source=x&a=1", &fields);
        let b = primary(&spec, "http", b"h", b"/p?a=1&b=2", &fields);
        assert_eq!(a, b);
        assert!(a.ends_with(b"\0c:lang=fr"));
        assert_ne!(
            a,
            primary(&spec, "http", b"h", b"/p?a=1&b=2", &[(b"X-Tenant", b"t2")])
        );
    }

    /// A purge names a URL as a client would, port included; the key was
    /// written from the request's host without it.
    #[test]
    fn purge_urls_match_their_keys() {
        let key = primary(&KeySpec::default(), "http", b"Site", b"/x?a=1", &[]);
        let target = url_target(b"http://SITE:8080/x?a=1").expect("a URL");
        assert_eq!([&b"http://"[..], &target].concat(), key);
        assert_eq!(url_target(b"https://site"), Some(b"site/".to_vec()));
        assert_eq!(url_target(b"http://site?q"), Some(b"site/?q".to_vec()));
        assert_eq!(
            url_target(b"http://[::1]:8080/a"),
            Some(b"[::1]/a".to_vec())
        );
        assert_eq!(url_target(b"site/x"), None);
        assert_eq!(url_target(b"ftp://site/x"), None);
        assert_eq!(url_target(b"http://u@site/x"), None);
        assert_eq!(url_target(b"http://:80/x"), None);
    }

    #[test]
    fn vary_and_encodings() {
        assert_eq!(
            vary_names(&[(b"Vary", b"Accept-Encoding, Accept-Language")]),
            Some(vec!["accept-encoding".into(), "accept-language".into()])
        );
        assert_eq!(vary_names(&[(b"Vary", b"*")]), None);
        let names = vec!["accept-encoding".to_string()];
        let k = |v: &'static [u8]| secondary(&names, &[(b"Accept-Encoding", v)]);
        assert_eq!(k(b"gzip, deflate"), k(b"deflate,GZIP"));
        assert_eq!(k(b"gzip, deflate, br"), k(b"br"));
        assert_eq!(k(b"gzip;q=0, identity"), secondary(&names, &[]));
        assert_ne!(k(b"gzip"), k(b"br"));
    }
}
