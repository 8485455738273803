//! `?mirrorlist` (HTML) and `?json`: the mirrors that have a file, the
//! client's best first, with the file's size and hash.

use serde_json::json;

use super::{Offer, escape, hex};

/// The file a list is about.
#[derive(Debug)]
pub struct Listed<'a> {
    /// The path from the tree's root, as text.
    pub path: &'a str,
    pub size: u64,
    pub sha256: Option<&'a [u8; 32]>,
    /// The local URL (always a source).
    pub origin: &'a str,
    /// The client's country, when known.
    pub client_country: Option<&'a str>,
}

pub fn html(file: &Listed<'_>, offers: &[Offer]) -> String {
    let path = escape(file.path);
    let mut h = String::with_capacity(1024 + offers.len() * 200);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    h.push_str(&format!(
        "<title>Mirrors of /{path}</title></head>\n<body>\n"
    ));
    h.push_str(&format!("<h1>Mirrors of /{path}</h1>\n<dl>\n"));
    h.push_str(&format!("<dt>Size</dt><dd>{} bytes</dd>\n", file.size));
    if let Some(sha) = file.sha256 {
        h.push_str(&format!(
            "<dt>SHA-256</dt><dd><code>{}</code></dd>\n",
            hex(sha)
        ));
    }
    if let Some(c) = file.client_country {
        h.push_str(&format!("<dt>Your country</dt><dd>{}</dd>\n", escape(c)));
    }
    h.push_str("</dl>\n<table>\n<tr><th>#</th><th>Mirror</th><th>Country</th><th>Why</th><th>URL</th></tr>\n");
    for o in offers {
        let url = escape(&o.url);
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{url}\">{url}</a></td></tr>\n",
            o.priority,
            escape(&o.mirror),
            escape(o.country.as_deref().unwrap_or("")),
            o.tier,
        ));
    }
    let origin = escape(file.origin);
    h.push_str(&format!(
        "<tr><td></td><td>origin</td><td></td><td>fallback</td><td><a href=\"{origin}\">{origin}</a></td></tr>\n"
    ));
    h.push_str("</table>\n</body></html>\n");
    h
}

pub fn json(file: &Listed<'_>, offers: &[Offer]) -> String {
    let mirrors: Vec<serde_json::Value> = offers
        .iter()
        .map(|o| {
            json!({
                "name": o.mirror,
                "url": o.url,
                "country": o.country,
                "priority": o.priority,
                "tier": o.tier,
                "distance_km": o.distance_km.map(|d| d.round()),
            })
        })
        .collect();
    let v = json!({
        "path": format!("/{}", file.path),
        "size": file.size,
        "sha256": file.sha256.map(|s| hex(s)),
        "origin": file.origin,
        "client_country": file.client_country,
        "mirrors": mirrors,
    });
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        let listed = Listed {
            path: "<x>.iso",
            size: 1,
            sha256: None,
            origin: "http://o/%3Cx%3E.iso",
            client_country: None,
        };
        let offers = [Offer {
            mirror: "<script>alert(1)</script>".into(),
            url: "http://m/\"x".into(),
            country: None,
            priority: 1,
            tier: "anywhere",
            distance_km: None,
        }];
        let h = html(&listed, &offers);
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(h.contains("Mirrors of /&lt;x&gt;.iso"));
        let j: serde_json::Value = serde_json::from_str(&json(&listed, &offers)).expect("json");
        assert_eq!(j["mirrors"][0]["name"], "<script>alert(1)</script>");
        assert_eq!(j["path"], "/<x>.iso");
    }
}
