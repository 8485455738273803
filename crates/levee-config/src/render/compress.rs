//! `[compress]` and a route's `compress`, written back as TOML.

use toml::{Table, Value};

use super::{int, size};
use crate::model::{Compress, CompressConfig};

/// `[compress]`.
pub(super) fn site(root: &mut Table, c: &CompressConfig) {
    let mut t = settings(&c.settings);
    t.insert("enabled".into(), c.enabled.into());
    root.insert("compress".into(), Value::Table(t));
}

/// A route's `compress`: its whole settings, or `false` where the site
/// would have compressed it.
pub(super) fn route(t: &mut Table, c: Option<&Compress>, site: &CompressConfig) {
    match c {
        Some(c) => {
            t.insert("compress".into(), Value::Table(settings(c)));
        }
        None if site.enabled => {
            t.insert("compress".into(), false.into());
        }
        None => {}
    }
}

fn settings(c: &Compress) -> Table {
    let mut t = Table::new();
    let prefer = c.prefer.iter().map(|p| p.token().into()).collect();
    t.insert("prefer".into(), Value::Array(prefer));
    let types = c.types.iter().map(|p| p.as_str().into()).collect();
    t.insert("types".into(), Value::Array(types));
    t.insert("min_length".into(), size(c.min_length));
    for (key, n) in [
        ("gzip_level", c.gzip_level),
        ("brotli_level", c.brotli_level),
        ("brotli_window", c.brotli_window),
        ("zstd_window", c.zstd_window),
    ] {
        t.insert(key.into(), int(u64::from(n)));
    }
    t.insert("zstd_level".into(), Value::Integer(i64::from(c.zstd_level)));
    t.insert("precompressed".into(), c.precompressed.into());
    t
}
