//! A static route's options around the file lookup of `static_files`
//! (docs/config.md, `static`): hidden files refused first, then the
//! `try_files` candidates (or the path alone), a listing for a directory
//! without an index file, and expiry fields on what is served.
//!
//! Like `static_files::resolve`, this does blocking `std::fs` calls and no
//! socket I/O.

mod listing;

use std::time::{Duration, SystemTime};

use levee_config::{Dotfiles, StaticAction, StaticOptions};

use crate::static_files::{self, StaticError, StaticOutcome, StaticRequest};

#[cfg(test)]
mod tests;

/// What a static route answers.
#[derive(Debug)]
pub(crate) enum Decided {
    /// A file, a redirect or an error, as `static_files` decides them.
    File(StaticOutcome),
    /// A page levee wrote: a directory listing.
    Page {
        content_type: &'static str,
        body: Vec<u8>,
    },
}

/// The request facts the options read beyond [`StaticRequest`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Asked<'a> {
    /// The query without `?`.
    pub query: &'a [u8],
    pub accept: Option<&'a [u8]>,
}

/// Decides the answer to `req` on a route whose action is `action`.
pub(crate) fn resolve(action: &StaticAction, req: &StaticRequest<'_>, asked: Asked<'_>) -> Decided {
    let o = &action.options;
    if let Some(status) = hidden(o, req.path) {
        return Decided::File(StaticOutcome::Error {
            status,
            fields: Vec::new(),
            cause: StaticError::Hidden,
        });
    }
    let (decided, served) = if o.try_files.is_empty() {
        (one(action, req, req.path, asked), req.path.to_vec())
    } else {
        try_files(action, req, asked)
    };
    match decided {
        Decided::File(mut outcome) => {
            expire(action, &served, &mut outcome);
            Decided::File(outcome)
        }
        page => page,
    }
}

/// The route's expiry fields for the file at `served` added to `outcome`
/// when it sends the file or a 304 for it (a precompressed sibling gets
/// its original's, static_route/compressed.rs).
pub(crate) fn expire(action: &StaticAction, served: &[u8], outcome: &mut StaticOutcome) {
    let Some(max_age) = expiry(action, served) else {
        return;
    };
    if let StaticOutcome::Send { fields, .. } | StaticOutcome::NotModified { fields } = outcome {
        expiry_fields(fields, max_age, SystemTime::now());
    }
}

/// The status a path with a hidden segment gets, if it is refused.
pub(crate) fn hidden(o: &StaticOptions, path: &[u8]) -> Option<u16> {
    let status = match o.dotfiles {
        Dotfiles::Allow => return None,
        Dotfiles::Hide => 404,
        Dotfiles::Deny => 403,
    };
    // The matched path is decoded and has no `.` or `..` segments left
    // (normal.rs), so a segment starting with `.` is a hidden name.
    if !path.split(|&b| b == b'/').any(|s| s.first() == Some(&b'.')) {
        return None;
    }
    let allowed = o.dotfiles_allow.iter().any(|p| {
        let p = p.as_bytes();
        path.starts_with(p) || p.strip_suffix(b"/").is_some_and(|dir| path == dir)
    });
    (!allowed).then_some(status)
}

/// `path` looked up, and listed when it is a directory without an index
/// and the route lists.
fn one(action: &StaticAction, req: &StaticRequest<'_>, path: &[u8], asked: Asked<'_>) -> Decided {
    let req = StaticRequest { path, ..*req };
    match static_files::resolve(action, &req) {
        StaticOutcome::Error {
            cause: StaticError::NoIndex,
            ..
        } if action.options.listing => listing::page(action, path, asked),
        outcome => Decided::File(outcome),
    }
}

/// The first `try_files` candidate that exists, else the last's answer or
/// its `=STATUS`; with the path it served.
fn try_files(
    action: &StaticAction,
    req: &StaticRequest<'_>,
    asked: Asked<'_>,
) -> (Decided, Vec<u8>) {
    let list = &action.options.try_files;
    let mut last = None;
    for (n, candidate) in list.iter().enumerate() {
        if let Some(code) = candidate.strip_prefix('=') {
            let status = code.parse().unwrap_or(404);
            let outcome = StaticOutcome::Error {
                status,
                fields: Vec::new(),
                cause: StaticError::NotFound,
            };
            return (Decided::File(outcome), req.path.to_vec());
        }
        let path = substitute(candidate, req.path);
        let decided = one(action, req, &path, asked);
        let missing = matches!(
            &decided,
            Decided::File(StaticOutcome::Error {
                cause: StaticError::NotFound | StaticError::NoIndex | StaticError::NotRegular,
                ..
            })
        );
        if !missing || n + 1 == list.len() {
            return (decided, path);
        }
        last = Some((decided, path));
    }
    // Unreachable with a non-empty list; a 404 is the safe answer anyway.
    last.unwrap_or_else(|| {
        let outcome = StaticError::NotFound;
        (
            Decided::File(StaticOutcome::Error {
                status: outcome.status(),
                fields: Vec::new(),
                cause: outcome,
            }),
            req.path.to_vec(),
        )
    })
}

/// `candidate` with `$uri` replaced by `path`. Doubled slashes are harmless:
/// the static path splitter merges them.
fn substitute(candidate: &str, path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(candidate.len() + path.len());
    let mut rest = candidate.as_bytes();
    while let Some(i) = memchr::memmem::find(rest, b"$uri") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(path);
        rest = &rest[i + 4..];
    }
    out.extend_from_slice(rest);
    out
}

/// The expiry for the file `path` names: by its extension (a directory's
/// is its first index name's), else the route's.
fn expiry(action: &StaticAction, path: &[u8]) -> Option<Duration> {
    let o = &action.options;
    if o.expires.is_none() && o.expires_by_extension.is_empty() {
        return None;
    }
    let name = match path.rsplit(|&b| b == b'/').next() {
        Some(name) if !name.is_empty() => name,
        _ => action.index.first().map_or(&b""[..], |i| i.as_bytes()),
    };
    let ext = name
        .iter()
        .rposition(|&b| b == b'.')
        .map(|i| &name[i + 1..]);
    ext.and_then(|ext| {
        o.expires_by_extension
            .iter()
            .find(|(e, _)| e.as_bytes().eq_ignore_ascii_case(ext))
            .map(|(_, d)| *d)
    })
    .or(o.expires)
}

/// `Cache-Control: max-age` and `Expires`, `max_age` after `now`.
fn expiry_fields(fields: &mut Vec<(&'static str, String)>, max_age: Duration, now: SystemTime) {
    fields.push(("Cache-Control", format!("max-age={}", max_age.as_secs())));
    // Config caps expiry at 10 years, so the date stays within httpdate's range.
    fields.push(("Expires", httpdate::fmt_http_date(now + max_age)));
}
