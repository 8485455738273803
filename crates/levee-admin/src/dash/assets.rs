//! The dashboard's files, embedded at build time (`build.rs`), and how they
//! are answered: gzip when the browser takes it, cached for a year under
//! their bundle hash, and every page with a strict Content-Security-Policy.

use crate::server::Reply;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

// The issue's budget: the whole page, compressed, within 150 KB. A build
// that grows past it fails here.
const _: () = assert!(
    COMPRESSED_TOTAL <= 150 * 1024,
    "the dashboard must weigh at most 150 KB compressed"
);

/// The page's policy: its own scripts, styles and connections only; no
/// inline script or style, no plugin, no framing (clickjacking), no
/// `<base>` rewriting, forms posted nowhere else.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Finds `name` (`app.js`, `vendor/uPlot.min.css`).
pub fn find(name: &str) -> Option<&'static Asset> {
    FILES.iter().find(|a| a.name == name)
}

/// Answers with `asset`; `immutable` for the hashed URLs.
pub fn reply(asset: &Asset, gzip_ok: bool, immutable: bool) -> Reply {
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        // The page names the current bundle; it must be asked for again.
        "no-cache"
    };
    let reply = if gzip_ok {
        Reply::new(200, asset.content_type, asset.gzip.to_vec())
            .with_header("Content-Encoding", "gzip".to_owned())
    } else {
        Reply::new(200, asset.content_type, asset.raw.to_vec())
    };
    reply
        .with_header("Cache-Control", cache.to_owned())
        .with_header("Vary", "Accept-Encoding".to_owned())
}

/// Whether an `Accept-Encoding` value takes gzip (and does not refuse it
/// with `q=0`).
pub fn accepts_gzip(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !refused
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("deflate")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn the_page_names_its_bundle_and_its_gzip_copies_are_whole() {
        let index = find("index.html").expect("index");
        let text = std::str::from_utf8(index.raw).expect("UTF-8");
        assert!(text.contains(&format!("/assets/{BUNDLE}/app.js")), "{text}");
        assert!(!text.contains("{{ASSETS}}"));
        assert!(
            !text.contains("<script>") && !text.contains("style="),
            "no inline script or style"
        );
        for a in FILES {
            let mut d = flate2::read::GzDecoder::new(a.gzip);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut back).expect("gzip");
            assert_eq!(back, a.raw, "{}", a.name);
        }
    }
}
