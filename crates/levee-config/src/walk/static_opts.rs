//! A `static` route's options beyond root, index and symlinks: `dotfiles`,
//! `dotfiles_allow`, `expires`, `expires_by_extension`, `listing`,
//! `try_files`.

use std::time::Duration;

use toml::de::DeValue;

use crate::error::Sink;
use crate::model::{Dotfiles, StaticOptions};
use crate::names;
use crate::tree::{Fields, Item, child};

/// The route keys read here; they belong to `static` routes only.
pub(crate) const KEYS: &[&str] = &[
    "dotfiles",
    "dotfiles_allow",
    "expires",
    "expires_by_extension",
    "listing",
    "try_files",
];

pub(crate) fn options(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> StaticOptions {
    let mut o = StaticOptions::default();
    if let Some(i) = fields.get("dotfiles") {
        match i.str(sink) {
            Some("hide") => o.dotfiles = Dotfiles::Hide,
            Some("deny") => o.dotfiles = Dotfiles::Deny,
            Some("allow") => o.dotfiles = Dotfiles::Allow,
            Some(other) => i.error(
                sink,
                format!("`{other}`: expected \"hide\" (404), \"deny\" (403) or \"allow\""),
            ),
            None => {}
        }
    }
    if let Some(list) = fields.get("dotfiles_allow").and_then(|i| i.array(sink)) {
        o.dotfiles_allow.clear();
        for entry in &list {
            let Some(p) = entry.text(sink) else { continue };
            match names::check_route_path(p) {
                Ok(()) => o.dotfiles_allow.push(p.to_owned()),
                Err(message) => entry.error(sink, message),
            }
        }
    }
    if let Some(d) = fields.get("expires").and_then(|i| expiry(sink, i)) {
        o.expires = Some(d);
    }
    if let Some(i) = fields.get("expires_by_extension") {
        o.expires_by_extension = by_extension(sink, i);
    }
    if let Some(b) = fields.get("listing").and_then(|i| i.bool(sink)) {
        o.listing = b;
    }
    if let Some(list) = fields.get("try_files").and_then(|i| i.array(sink)) {
        let last = list.len().saturating_sub(1);
        for (n, entry) in list.iter().enumerate() {
            let Some(c) = entry.text(sink) else { continue };
            if let Some(code) = c.strip_prefix('=') {
                match code.parse::<u16>() {
                    Ok(400..=599) if n == last => o.try_files.push(c.to_owned()),
                    Ok(400..=599) => entry.error(sink, "`=STATUS` must be the last candidate"),
                    _ => entry.error(sink, "`=STATUS` takes a status from 400 to 599"),
                }
                continue;
            }
            // `$uri` is a normalised path; what is around it must keep it one.
            let probe = c.replace("$uri", "/x");
            match names::check_route_path(&probe) {
                Ok(()) => o.try_files.push(c.to_owned()),
                Err(_) => entry.error(
                    sink,
                    format!(
                        "`{c}`: expected `$uri`, `$uri/`, a path starting with `/` (written as a route path), or `=STATUS`"
                    ),
                ),
            }
        }
    }
    o
}

/// The longest expiry: nginx's `expires max` is 10 years, and dates
/// further ahead than year 9999 cannot be written in `Expires`.
const MOST_EXPIRY: Duration = Duration::from_secs(3650 * 86_400);

/// A duration, or whole days as `"7d"` (nginx writes expiry in days; other
/// durations in the config do not take them).
fn expiry(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Duration> {
    let days = match item.value.get_ref() {
        DeValue::String(s) => s
            .strip_suffix(['d', 'D'])
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        _ => None,
    };
    let d = match days {
        Some(n) => Duration::from_secs(n.parse::<u64>().unwrap_or(u64::MAX).saturating_mul(86_400)),
        None => item.duration(sink)?,
    };
    if d > MOST_EXPIRY {
        item.error(sink, "must be at most 10 years (\"3650d\")");
        return None;
    }
    Some(d)
}

/// `{ css = "30d", html = "0s" }`: lower-case extensions without the dot.
fn by_extension(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Vec<(String, Duration)> {
    let Some(table) = item.table(sink) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in table.iter() {
        let ext: &str = name.get_ref().as_ref();
        let entry = Item {
            key: child(&item.key, ext),
            key_span: name.span(),
            value,
        };
        if ext.is_empty() || ext.contains(['.', '/']) || ext.chars().any(char::is_control) {
            sink.error(
                name.span(),
                &entry.key,
                "an extension is written without its dot, such as `css`",
            );
            continue;
        }
        if let Some(d) = expiry(sink, &entry) {
            out.push((ext.to_ascii_lowercase(), d));
        }
    }
    out
}

#[cfg(test)]
mod tests;
