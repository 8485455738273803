//! `[mirrors.NAME]` tables and their `[[mirrors.NAME.mirror]]` entries
//! (docs/mirrors.md). The same walk reads one mirror sent to the control
//! API ([`mirror_from_toml`]), so both are held to the same rules.

use std::path::PathBuf;

use super::Mention;
use crate::error::{ConfigErrors, Sink};
use crate::model::{CONTINENTS, Mirror, MirrorSet};
use crate::tree::{Fields, Item};

pub(crate) struct DraftMirrorSet {
    pub name: Mention,
    pub set: MirrorSet,
}

pub(crate) const MIRRORS_KEYS: &[&str] = &[
    "root",
    "state_dir",
    "min_size",
    "exclude",
    "scan_interval",
    "probe_interval",
    "probe_timeout",
    "probe_jitter",
    "probe_fall",
    "probe_rise",
    "spot_check_interval",
    "geoip",
    "geoip_asn",
    "hash_rate",
    "piece_size",
    "mtime_tolerance",
    "verify_sample",
    "max_strikes",
    "top_files",
    "mirror",
];
pub(crate) const MIRROR_KEYS: &[&str] = &[
    "name",
    "http",
    "https",
    "rsync",
    "weight",
    "country",
    "continent",
    "asn",
    "latitude",
    "longitude",
    "networks",
    "allowed_countries",
    "max_bandwidth",
    "max_redirects",
    "enabled",
    "probe_path",
];

pub(crate) fn mirror_sets(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Vec<DraftMirrorSet> {
    super::named(sink, item, "a mirror set name")
        .into_iter()
        .filter_map(|(name, entry)| {
            let set = mirror_set(sink, &entry, &name.text)?;
            Some(DraftMirrorSet { name, set })
        })
        .collect()
}

fn mirror_set(sink: &mut Sink<'_>, item: &Item<'_, '_>, name: &str) -> Option<MirrorSet> {
    let fields = Fields::of(sink, item, MIRRORS_KEYS)?;
    let root = fields.require(sink, "root").and_then(|i| i.text(sink));
    let state_dir = fields.require(sink, "state_dir").and_then(|i| i.text(sink));
    let mut set = MirrorSet::new(
        name,
        PathBuf::from(root.unwrap_or_default()),
        PathBuf::from(state_dir.unwrap_or_default()),
    );
    if let Some(n) = fields.get("min_size").and_then(|i| i.size(sink)) {
        set.min_size = n;
    }
    if let Some(i) = fields.get("exclude") {
        for (item, pattern) in i.one_or_many(sink).unwrap_or_default() {
            if pattern.is_empty() || pattern.chars().any(char::is_control) {
                item.error(sink, "a pattern must be non-empty text");
            } else {
                set.exclude.push(pattern.to_owned());
            }
        }
    }
    for (key, slot) in [
        ("scan_interval", &mut set.scan_interval),
        ("probe_interval", &mut set.probe_interval),
        ("probe_timeout", &mut set.probe_timeout),
        ("spot_check_interval", &mut set.spot_check_interval),
    ] {
        if let Some(d) = fields.get(key).and_then(|i| i.positive_duration(sink)) {
            *slot = d;
        }
    }
    if let Some(d) = fields.get("mtime_tolerance").and_then(|i| i.duration(sink)) {
        set.mtime_tolerance = d;
    }
    for (key, slot, min, max) in [
        ("probe_jitter", &mut set.probe_jitter, 0, 100),
        ("probe_fall", &mut set.probe_fall, 1, 100),
        ("probe_rise", &mut set.probe_rise, 1, 100),
        ("verify_sample", &mut set.verify_sample, 0, 1_000_000),
        ("max_strikes", &mut set.max_strikes, 1, 1_000_000),
        ("top_files", &mut set.top_files, 1, 10_000),
    ] {
        if let Some(n) = fields.get(key).and_then(|i| i.int_in(sink, min, max)) {
            *slot = n as u32;
        }
    }
    set.geoip = fields
        .get("geoip")
        .and_then(|i| i.text(sink))
        .map(PathBuf::from);
    set.geoip_asn = fields
        .get("geoip_asn")
        .and_then(|i| i.text(sink))
        .map(PathBuf::from);
    for (key, slot) in [
        ("hash_rate", &mut set.hash_rate),
        ("piece_size", &mut set.piece_size),
    ] {
        if let Some(i) = fields.get(key)
            && let Some(n) = i.size(sink)
        {
            if n < 1024 {
                i.error(sink, "must be at least 1k");
            } else {
                *slot = n;
            }
        }
    }
    if let Some(i) = fields.get("mirror") {
        if i.value.get_ref().is_table() {
            i.error(
                sink,
                "expected an array of tables: write [[mirrors.NAME.mirror]]",
            );
        } else {
            for entry in i.array(sink).unwrap_or_default() {
                let Some(m) = mirror(sink, &entry) else {
                    continue;
                };
                if set.mirrors.iter().any(|o| o.name == m.name) {
                    entry.error(sink, format!("duplicate mirror name `{}`", m.name));
                }
                set.mirrors.push(m);
            }
        }
    }
    (root.is_some() && state_dir.is_some()).then_some(set)
}

/// One mirror table; `None` when its name is missing.
fn mirror(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Mirror> {
    let fields = Fields::of(sink, item, MIRROR_KEYS)?;
    let name = fields.require(sink, "name").and_then(|i| {
        let n = i.text(sink)?;
        if n.contains(['/', '"', '\\']) {
            i.error(sink, "a mirror name must not contain `/`, `\"` or `\\`");
            return None;
        }
        Some(n)
    });
    let mut m = Mirror::new(name.unwrap_or_default());
    for (key, slot) in [
        ("http", &mut m.http),
        ("https", &mut m.https),
        ("rsync", &mut m.rsync),
    ] {
        if let Some(i) = fields.get(key)
            && let Some(text) = i.text(sink)
        {
            match base_url(key, text) {
                Ok(url) => *slot = Some(url),
                Err(message) => i.error(sink, message),
            }
        }
    }
    if m.http.is_none()
        && m.https.is_none()
        && fields.get("http").is_none()
        && fields.get("https").is_none()
    {
        sink.error(
            fields.span.clone(),
            &fields.key,
            "a mirror needs a base URL: set `http`, `https` or both",
        );
    }
    if let Some(n) = fields.get("weight").and_then(|i| i.int_in(sink, 1, 1000)) {
        m.weight = n as u32;
    }
    m.country = fields.get("country").and_then(|i| country(sink, i));
    m.continent = fields.get("continent").and_then(|i| {
        let text = i.str(sink)?.to_ascii_uppercase();
        if CONTINENTS.contains(&text.as_str()) {
            Some(text)
        } else {
            i.error(
                sink,
                format!("expected a continent code: {}", CONTINENTS.join(", ")),
            );
            None
        }
    });
    if let Some(i) = fields.get("asn") {
        let items = match i.value.get_ref() {
            toml::de::DeValue::Array(_) => i.array(sink).unwrap_or_default(),
            _ => vec![Item {
                key: i.key.clone(),
                key_span: i.key_span.clone(),
                value: i.value,
            }],
        };
        for a in &items {
            if let Some(n) = a.int_in(sink, 1, u64::from(u32::MAX)) {
                m.asn.push(n as u32);
            }
        }
    }
    let lat = fields.get("latitude").and_then(|i| degrees(sink, i, 90.0));
    let long = fields
        .get("longitude")
        .and_then(|i| degrees(sink, i, 180.0));
    match (lat, long, fields.get("latitude"), fields.get("longitude")) {
        (Some(a), Some(b), _, _) => m.location = Some((a, b)),
        (Some(_), None, _, None) => {
            if let Some(i) = fields.get("latitude") {
                i.error(sink, "`latitude` needs `longitude` too");
            }
        }
        (None, Some(_), None, _) => {
            if let Some(i) = fields.get("longitude") {
                i.error(sink, "`longitude` needs `latitude` too");
            }
        }
        _ => {}
    }
    m.networks = fields
        .get("networks")
        .map(|i| super::tls::networks(sink, i))
        .unwrap_or_default();
    if let Some(i) = fields.get("allowed_countries") {
        for (item, _) in i.one_or_many(sink).unwrap_or_default() {
            if let Some(c) = country(sink, &item) {
                m.allowed_countries.push(c);
            }
        }
    }
    if let Some(n) = fields.get("max_bandwidth").and_then(|i| i.size(sink)) {
        m.max_bandwidth = n;
    }
    if let Some(n) = fields
        .get("max_redirects")
        .and_then(|i| i.int_in(sink, 0, u64::from(u32::MAX)))
    {
        m.max_redirects = n as u32;
    }
    if let Some(b) = fields.get("enabled").and_then(|i| i.bool(sink)) {
        m.enabled = b;
    }
    m.probe_path = fields.get("probe_path").and_then(|i| {
        let p = i.text(sink)?;
        if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
            i.error(
                sink,
                "expected a path from the tree's root such as \"/pub/README\"",
            );
            return None;
        }
        Some(p.to_owned())
    });
    name.map(|_| m)
}

fn country(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<String> {
    let text = item.str(sink)?;
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Some(text.to_ascii_uppercase())
    } else {
        item.error(
            sink,
            format!("`{text}` is not a two-letter country code (ISO 3166-1) such as \"DE\""),
        );
        None
    }
}

fn degrees(sink: &mut Sink<'_>, item: &Item<'_, '_>, max: f64) -> Option<f64> {
    let value = match item.value.get_ref() {
        toml::de::DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        toml::de::DeValue::Integer(_) => item.integer(sink).map(|n| n as f64),
        _ => None,
    };
    match value {
        Some(v) if v.is_finite() && v.abs() <= max => Some(v),
        _ => {
            item.error(
                sink,
                format!("expected a number of degrees from -{max} to {max}"),
            );
            None
        }
    }
}

/// Checks a mirror's base URL of `scheme` and returns it without a
/// trailing `/`: `scheme://host[:port][/path]`, no user, query or fragment.
pub fn base_url(scheme: &str, text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("`{text}` is not a {scheme} base URL: {why}");
    let rest = text
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
        .ok_or_else(|| bad(&format!("it must start with {scheme}://")))?;
    if text.contains(['?', '#', ' ', '"', '<', '>', '\\']) {
        return Err(bad("no query, fragment, space, quote or backslash"));
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if super::basics::has_userinfo(text) {
        // Not `bad`: it would repeat the password.
        return Err(format!(
            "not a {scheme} base URL: {}",
            super::basics::USERINFO
        ));
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => match &authority[end + 1..] {
                "" => (&authority[..=end], None),
                p => (&authority[..=end], Some(p.strip_prefix(':').unwrap_or("x"))),
            },
            None => return Err(bad("an unclosed `[`")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    if !host_ok {
        return Err(bad("the host is not a name or an address"));
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Err(bad("the port must be 1-65535"));
    }
    if scheme == "rsync" && path.trim_matches('/').is_empty() {
        return Err(bad("it must name a module, as in rsync://host/module"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// Reads one mirror written as a TOML table (the control API turns its
/// JSON body into one), with the rules of `[[mirrors.NAME.mirror]]`.
pub fn mirror_from_toml(text: &str, key: &str) -> Result<Mirror, ConfigErrors> {
    let file = std::path::Path::new("<api>");
    let root = toml::de::DeTable::parse(text)
        .map_err(|e| ConfigErrors::from(crate::validate::syntax_error(text, file, &e)))?;
    let mut sink = Sink::new(text, file);
    let value = toml::Spanned::new(
        root.span(),
        toml::de::DeValue::Table(root.get_ref().clone()),
    );
    let item = Item {
        key: key.to_owned(),
        key_span: root.span(),
        value: &value,
    };
    let m = mirror(&mut sink, &item);
    match m {
        Some(m) if !sink.has_errors() => Ok(m),
        _ => Err(ConfigErrors {
            errors: sink.finish(),
        }),
    }
}

#[cfg(test)]
mod tests;
