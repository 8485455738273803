//! What the redirector answers besides the redirect itself: header values
//! (`Link: rel=duplicate`, RFC 6249; `Repr-Digest`, RFC 9530; `Digest`,
//! RFC 3230), the Metalink 4 document (RFC 5854, [`metalink`]) and the
//! mirror list in HTML and JSON ([`list`]). Pure functions over plain
//! data; names and paths are escaped for where they go.

pub mod list;
pub mod metalink;

use std::fmt::Write as _;

use base64::Engine as _;

/// One URL of a file, as the documents list it.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub mirror: String,
    pub url: String,
    /// Upper case, when known.
    pub country: Option<String>,
    /// 1 is best.
    pub priority: u32,
    pub tier: &'static str,
    pub distance_km: Option<f64>,
}

/// `path` (relative, raw bytes) percent-encoded for a URL, with `/` kept.
pub fn url_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `base` + `/` + the encoded path.
pub fn join(base: &str, path: &[u8]) -> String {
    let mut url = String::with_capacity(base.len() + path.len() + 8);
    url.push_str(base);
    url.push('/');
    url.push_str(&url_path(path));
    url
}

/// Text for XML or HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `Repr-Digest` (RFC 9530) and `Digest` (RFC 3230) of a SHA-256.
pub fn digest_fields(sha256: &[u8; 32]) -> [(&'static str, String); 2] {
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha256);
    [
        ("Repr-Digest", format!("sha-256=:{b64}:")),
        ("Digest", format!("SHA-256={b64}")),
    ]
}

/// One `Link` value per alternative (RFC 6249: `rel=duplicate`, `pri`,
/// `geo`), then the Metalink (`rel=describedby`).
pub fn link_fields(alternatives: &[Offer], metalink_path: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(alternatives.len() + 1);
    for o in alternatives {
        let mut v = format!("<{}>; rel=duplicate; pri={}", o.url, o.priority);
        if let Some(c) = &o.country {
            let _ = write!(v, "; geo={}", c.to_ascii_lowercase());
        }
        out.push(("Link", v));
    }
    out.push((
        "Link",
        format!("<{metalink_path}>; rel=describedby; type=\"application/metalink4+xml\""),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escapes_and_fields() {
        assert_eq!(
            join("http://m/pub", b"a b/c%d.iso"),
            "http://m/pub/a%20b/c%25d.iso"
        );
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let d = digest_fields(&[0; 32]);
        assert_eq!(
            d[0].1,
            "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
        );
        assert_eq!(
            d[1].1,
            "SHA-256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        );
        let links = link_fields(
            &[Offer {
                mirror: "m".into(),
                url: "http://m/f".into(),
                country: Some("DE".into()),
                priority: 2,
                tier: "country",
                distance_km: None,
            }],
            "/f.meta4",
        );
        assert_eq!(links[0].1, "<http://m/f>; rel=duplicate; pri=2; geo=de");
        assert_eq!(
            links[1].1,
            "</f.meta4>; rel=describedby; type=\"application/metalink4+xml\""
        );
    }
}
