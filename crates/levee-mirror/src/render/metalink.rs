//! A Metalink 4 document (RFC 5854) for one file: its size, SHA-256, piece
//! hashes when it has them, and its URLs best first with their countries.
//! A test validates the output against the RFC's grammar with xmllint
//! (crates/levee/tests/mirrors_metalink.rs, schema in tests/mirrors/).

use std::fmt::Write as _;
use std::time::SystemTime;

use super::{Offer, escape, hex};

/// The media type (RFC 5854 §8).
pub const CONTENT_TYPE: &str = "application/metalink4+xml";

/// What the document says about the file.
#[derive(Debug)]
pub struct Described<'a> {
    /// The file's name (the last path segment).
    pub name: &'a str,
    pub size: u64,
    pub sha256: Option<&'a [u8; 32]>,
    /// Piece length and the SHA-256 of each piece.
    pub pieces: Option<(u64, &'a [[u8; 32]])>,
    /// Where this document itself can be fetched again.
    pub origin: &'a str,
    pub published: SystemTime,
}

pub fn render(file: &Described<'_>, offers: &[Offer]) -> String {
    let mut x = String::with_capacity(512 + offers.len() * 128);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<metalink xmlns=\"urn:ietf:params:xml:ns:metalink\">\n");
    let _ = writeln!(
        x,
        "  <generator>levee/{}</generator>",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        x,
        "  <origin dynamic=\"true\">{}</origin>",
        escape(file.origin)
    );
    let _ = writeln!(x, "  <published>{}</published>", rfc3339(file.published));
    let _ = writeln!(x, "  <file name=\"{}\">", escape(file.name));
    let _ = writeln!(x, "    <size>{}</size>", file.size);
    if let Some(sha) = file.sha256 {
        let _ = writeln!(x, "    <hash type=\"sha-256\">{}</hash>", hex(sha));
    }
    if let Some((length, pieces)) = file.pieces {
        let _ = writeln!(x, "    <pieces length=\"{length}\" type=\"sha-256\">");
        for p in pieces {
            let _ = writeln!(x, "      <hash>{}</hash>", hex(p));
        }
        x.push_str("    </pieces>\n");
    }
    for o in offers {
        x.push_str("    <url");
        if let Some(c) = &o.country {
            let _ = write!(x, " location=\"{}\"", escape(&c.to_ascii_lowercase()));
        }
        let _ = writeln!(
            x,
            " priority=\"{}\">{}</url>",
            o.priority.clamp(1, 999_999),
            escape(&o.url)
        );
    }
    x.push_str("  </file>\n</metalink>\n");
    x
}

/// `2026-12-06T23:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = levee_config::units::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-1000, 0, 59, 60, 11_016, 20_000, 20_428] {
            let (y, m, d) = levee_config::units::civil_from_days(days);
            assert_eq!(crate::listing::civil(y, m, d, 0, 0, 0), Some(days * 86_400));
        }
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_598_001);
        assert_eq!(rfc3339(t), "2026-12-06T23:00:01Z");
    }

    #[test]
    fn document_escapes_and_lists_in_order() {
        let sha = [0xab; 32];
        let pieces = [[1; 32], [2; 32]];
        let doc = render(
            &Described {
                name: "a&b.iso",
                size: 10,
                sha256: Some(&sha),
                pieces: Some((5, &pieces)),
                origin: "http://o/a&b.iso.meta4",
                published: SystemTime::UNIX_EPOCH,
            },
            &[Offer {
                mirror: "m".into(),
                url: "http://m/a&b.iso".into(),
                country: Some("DE".into()),
                priority: 1,
                tier: "country",
                distance_km: None,
            }],
        );
        assert!(doc.contains("<file name=\"a&amp;b.iso\">"));
        assert!(doc.contains("<url location=\"de\" priority=\"1\">http://m/a&amp;b.iso</url>"));
        assert!(doc.contains(&format!(
            "<hash type=\"sha-256\">{}</hash>",
            "ab".repeat(32)
        )));
        assert!(doc.contains("<pieces length=\"5\" type=\"sha-256\">"));
    }
}
