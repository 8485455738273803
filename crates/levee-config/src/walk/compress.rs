//! `[compress]` and a route's `compress` (`true`, `false` or a table of
//! the same keys, over `[compress]`'s).

use crate::error::Sink;
use crate::model::{Coding, Compress, CompressConfig};
use crate::tree::{Fields, Item};

pub(crate) const COMPRESS_KEYS: &[&str] = &[
    "enabled",
    "prefer",
    "types",
    "min_length",
    "gzip_level",
    "brotli_level",
    "brotli_window",
    "zstd_level",
    "zstd_window",
    "precompressed",
];

/// `[compress]`.
pub(crate) fn site(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> CompressConfig {
    let mut c = CompressConfig::default();
    let Some(fields) = Fields::of(sink, item, COMPRESS_KEYS) else {
        return c;
    };
    if let Some(b) = fields.get("enabled").and_then(|i| i.bool(sink)) {
        c.enabled = b;
    }
    settings(sink, &fields, &mut c.settings);
    c
}

/// A route's `compress` key (`None`: left out), over the site's settings.
pub(crate) fn route(
    sink: &mut Sink<'_>,
    item: Option<&Item<'_, '_>>,
    site: &CompressConfig,
) -> Option<Compress> {
    let Some(item) = item else {
        return site.enabled.then(|| site.settings.clone());
    };
    if let toml::de::DeValue::Boolean(on) = item.value.get_ref() {
        return on.then(|| site.settings.clone());
    }
    if !matches!(item.value.get_ref(), toml::de::DeValue::Table(_)) {
        item.error(sink, "expected true, false or a table of `[compress]` keys");
        return None;
    }
    let route_keys = &COMPRESS_KEYS[1..];
    let fields = Fields::of(sink, item, route_keys)?;
    let mut c = site.settings.clone();
    settings(sink, &fields, &mut c);
    Some(c)
}

/// The keys `[compress]` and a route's table share, applied over `c`.
fn settings(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, c: &mut Compress) {
    if let Some(i) = fields.get("prefer")
        && let Some(prefer) = prefer(sink, i)
    {
        c.prefer = prefer;
    }
    if let Some(i) = fields.get("types")
        && let Some(types) = types(sink, i)
    {
        c.types = types;
    }
    if let Some(n) = fields.get("min_length").and_then(|i| i.size(sink)) {
        c.min_length = n;
    }
    let level = |sink: &mut Sink<'_>, key: &str, min: u64, max: u64| {
        let n = fields.get(key)?.int_in(sink, min, max)?;
        u32::try_from(n).ok()
    };
    if let Some(n) = level(sink, "gzip_level", 1, 9) {
        c.gzip_level = n;
    }
    if let Some(n) = level(sink, "brotli_level", 0, 11) {
        c.brotli_level = n;
    }
    if let Some(n) = level(sink, "brotli_window", 10, 24) {
        c.brotli_window = n;
    }
    if let Some(n) = level(sink, "zstd_level", 1, 19) {
        c.zstd_level = i32::try_from(n).unwrap_or(3);
    }
    if let Some(n) = level(sink, "zstd_window", 10, 27) {
        c.zstd_window = n;
    }
    if let Some(b) = fields.get("precompressed").and_then(|i| i.bool(sink)) {
        c.precompressed = b;
    }
}

fn prefer(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Vec<Coding>> {
    let mut out = Vec::new();
    for entry in item.array(sink)? {
        let token = entry.str(sink)?;
        match Coding::from_token(token) {
            Some(c) if out.contains(&c) => {
                entry.error(sink, format!("`{token}` is listed twice"));
                return None;
            }
            Some(c) => out.push(c),
            None => {
                entry.error(
                    sink,
                    format!("`{token}`: expected \"zstd\", \"br\" or \"gzip\""),
                );
                return None;
            }
        }
    }
    Some(out)
}

fn types(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for entry in item.array(sink)? {
        let text = entry.text(sink)?;
        let t = text.trim().to_ascii_lowercase();
        let valid = t.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && !a.contains('*') && !t.contains([';', ' '])
        });
        if !valid {
            entry.error(
                sink,
                format!("`{text}`: expected a MIME type such as \"text/html\" or \"text/*\", without parameters"),
            );
            return None;
        }
        out.push(t);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::model::{Coding, Compress};
    use crate::tests::{errors_of, ok};

    const BASE: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";

    #[test]
    fn routes_compress_only_when_asked_and_tables_override_the_site() {
        let c = ok(&format!("{BASE}[[route]]\nrespond = \"hi\"\n"));
        assert_eq!(c.routes[0].compress, None);
        assert_eq!(c.compress.settings, Compress::default());
        let c = ok(&format!(
            "{BASE}[compress]\nenabled = true\ngzip_level = 4\n\
             [[route]]\npath = \"/a\"\nrespond = \"a\"\n\
             [[route]]\npath = \"/b\"\nrespond = \"b\"\ncompress = false\n\
             [[route]]\npath = \"/c\"\nrespond = \"c\"\n\
             compress = {{ prefer = [\"gzip\"], min_length = \"1k\", types = [\"Text/*\"] }}\n"
        ));
        let a = c.routes[0].compress.as_ref().unwrap();
        assert_eq!(a.gzip_level, 4);
        assert_eq!(c.routes[1].compress, None);
        let r = c.routes[2].compress.as_ref().unwrap();
        assert_eq!(r.prefer, [Coding::Gzip]);
        assert_eq!((r.min_length, r.gzip_level), (1024, 4));
        assert_eq!(r.types, ["text/*"]);
        // Written out and read back, the same settings.
        assert_eq!(ok(&crate::to_toml(&c)), c);
    }

    #[test]
    fn bad_compress_values_name_their_key() {
        let e = errors_of(&format!(
            "{BASE}[compress]\ngzip_level = 12\nprefer = [\"lzma\"]\n\
             [[route]]\nrespond = \"hi\"\ncompress = {{ types = [\"html\"], enabled = true }}\n"
        ));
        let all = e.join("\n");
        assert!(all.contains("compress.gzip_level"), "{all}");
        assert!(all.contains("compress.prefer[0]: `lzma`"), "{all}");
        assert!(all.contains("route[0].compress"), "{all}");
        assert!(all.contains("`html`: expected a MIME type"), "{all}");
    }
}
