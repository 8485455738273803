//! A directory listing (`listing = true`), HTML or JSON: names HTML-escaped
//! in the page and percent-encoded in its links, hidden files left out
//! (unless `dotfiles = "allow"`), symlinks out of the root left out (unless
//! `follow_symlinks`), at most [`MOST_ENTRIES`] entries.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use levee_config::{Dotfiles, StaticAction};

use super::{Asked, Decided};
use crate::static_files::path::CleanPath;
use crate::static_files::{StaticError, StaticOutcome};

/// Most entries listed: a bound on the page a huge directory makes.
const MOST_ENTRIES: usize = 10_000;

/// One entry of a listing.
#[derive(Debug)]
pub(super) struct Entry {
    pub name: Vec<u8>,
    pub directory: bool,
    pub size: u64,
    /// Seconds since the epoch.
    pub modified: u64,
}

/// The listing of directory `path` (decoded, ending in `/`).
pub(super) fn page(action: &StaticAction, path: &[u8], asked: Asked<'_>) -> Decided {
    match entries(action, path) {
        Ok(list) => {
            if wants_json(asked) {
                Decided::Page {
                    content_type: "application/json",
                    body: json(&list),
                }
            } else {
                Decided::Page {
                    content_type: "text/html; charset=utf-8",
                    body: html(path, &list),
                }
            }
        }
        Err(cause) => Decided::File(StaticOutcome::Error {
            status: cause.status(),
            fields: Vec::new(),
            cause,
        }),
    }
}

/// `?format=json` or `?format=html` decides; else an `Accept` that prefers
/// JSON, by the error pages' rule (`shape::pages::prefers_json`).
fn wants_json(asked: Asked<'_>) -> bool {
    for pair in asked.query.split(|&b| b == b'&') {
        match pair {
            b"format=json" => return true,
            b"format=html" => return false,
            _ => {}
        }
    }
    crate::shape::pages::prefers_json(asked.accept.into_iter())
}

fn entries(action: &StaticAction, path: &[u8]) -> Result<Vec<Entry>, StaticError> {
    let clean = CleanPath::parse(path)?;
    let dir = clean.under(&action.root);
    let root = std::fs::canonicalize(&action.root)?;
    let inside = |p: &Path| action.follow_symlinks || p.starts_with(&root);
    if !inside(&std::fs::canonicalize(&dir)?) {
        return Err(StaticError::OutsideRoot(dir));
    }
    let show_hidden = action.options.dotfiles == Dotfiles::Allow;
    let mut list = Vec::new();
    for item in std::fs::read_dir(&dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().as_bytes().to_vec();
        if name.first() == Some(&b'.') && !show_hidden {
            continue;
        }
        let full = item.path();
        // What a link points to is listed, if it stays inside the root.
        if item.file_type().is_ok_and(|t| t.is_symlink())
            && !std::fs::canonicalize(&full).is_ok_and(|real| inside(&real))
        {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&full) else {
            continue;
        };
        if !meta.is_dir() && !meta.is_file() {
            continue;
        }
        list.push(Entry {
            name,
            directory: meta.is_dir(),
            size: if meta.is_dir() { 0 } else { meta.len() },
            // Clamped to year 9999, the last httpdate can write.
            modified: meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs().min(253_402_300_799)),
        });
        if list.len() == MOST_ENTRIES {
            break;
        }
    }
    list.sort_by(|a, b| b.directory.cmp(&a.directory).then(a.name.cmp(&b.name)));
    Ok(list)
}

/// `<`, `>`, `&`, `"` and `'` as entities; bytes that are not UTF-8 as U+FFFD.
fn html_escape(out: &mut String, text: &[u8]) {
    for c in String::from_utf8_lossy(text).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Every byte but unreserved ones percent-encoded: a name is one segment.
fn url_encode(out: &mut String, name: &[u8]) {
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

pub(super) fn html(path: &[u8], list: &[Entry]) -> Vec<u8> {
    let mut title = String::new();
    html_escape(&mut title, path);
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    if path != b"/" {
        out.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for e in list {
        let slash = if e.directory { "/" } else { "" };
        out.push_str("<li><a href=\"./");
        url_encode(&mut out, &e.name);
        out.push_str(slash);
        out.push_str("\">");
        html_escape(&mut out, &e.name);
        out.push_str(slash);
        out.push_str("</a>");
        if !e.directory {
            let _ = write!(out, " {}", e.size);
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul></body></html>\n");
    out.into_bytes()
}

/// `text` as a JSON string: quotes, backslashes and control characters
/// escaped; bytes that are not UTF-8 as U+FFFD.
fn json_string(out: &mut String, text: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(text).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // `<` too, so the document is safe inside HTML as well.
            c if c.is_control() || c == '<' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn json(list: &[Entry]) -> Vec<u8> {
    let mut out = String::from("[");
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_string(&mut out, &e.name);
        let kind = if e.directory { "directory" } else { "file" };
        let _ = write!(
            out,
            ",\"type\":\"{kind}\",\"size\":{},\"modified\":\"{}\"}}",
            e.size,
            httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(e.modified))
        );
    }
    out.push_str("]\n");
    out.into_bytes()
}
