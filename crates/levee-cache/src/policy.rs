//! Whether a response may be stored by a shared cache (RFC 9111 §3), which
//! of its fields are stored (§3.1), and which requests invalidate stored
//! responses (§4.4).
//!
//! levee is stricter than RFC 9111 in one place, as nginx and Varnish are:
//! a response with `Set-Cookie` is not stored unless the field is named in
//! `private=` or `no-cache=`, or the route stores such responses without
//! the field ([`Rules::strip_set_cookie`]): a cookie meant for one client
//! must never reach another.

use crate::Field;
use crate::directives::{Request, Response};
use crate::freshness::{HEURISTIC_STATUSES, fmt_http_date};
use crate::targeted::Control;
use crate::{first, values};

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    Method,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    SetCookie,
    NoFreshness,
}

/// How levee reads and stores responses, from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Targeted fields levee obeys (RFC 9213 target list): lower-case
    /// names, most specific first.
    pub targets: Vec<String>,
    /// Targeted fields that stop at levee: stored (they govern the stored
    /// response after a 304 too) but never sent to clients. Lower case.
    pub hidden: Vec<String>,
    /// Store responses that carry `Set-Cookie`, without the field.
    pub strip_set_cookie: bool,
}

/// Final statuses whose caching requirements levee implements, for
/// `must-understand` (RFC 9111 §5.2.2.3): those RFC 9110 defines, less
/// 206 and 304, which levee never stores.
const UNDERSTOOD: [u16; 39] = [
    200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 305, 307, 308, 400, 401, 402, 403, 404, 405,
    406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503,
    504,
];

/// Checks a response for storing (RFC 9111 §3): GET only; any final
/// status but 206 and 304; no `no-store` (unless `must-understand` and the
/// status is understood), no `private`, no `Authorization` without a
/// directive that allows it, no `Vary: *`, no `Set-Cookie` unless it is
/// stripped; and explicit freshness, or a heuristically cacheable status.
pub fn storable(
    method: &[u8],
    request_fields: &[Field<'_>],
    status: u16,
    response_fields: &[Field<'_>],
    rules: &Rules,
) -> Result<Control, NotStored> {
    if method != b"GET" {
        return Err(NotStored::Method);
    }
    // Not final, or partial or a validation response that levee does not
    // store (§3.3, §3.4).
    if !(200..600).contains(&status) || status == 206 || status == 304 {
        return Err(NotStored::Status);
    }
    let req_cc: Vec<&[u8]> = values(request_fields, "cache-control").collect();
    let request = Request::parse(&req_cc);
    let control = Control::of(response_fields, &rules.targets);
    let cc = &control.directives;
    let understood = UNDERSTOOD.contains(&status);
    if cc.must_understand && !understood {
        return Err(NotStored::Status);
    }
    // must-understand overrides no-store for a status the cache understands.
    if request.no_store || (cc.no_store && !(cc.must_understand && understood)) {
        return Err(NotStored::NoStore);
    }
    if cc.private {
        return Err(NotStored::Private);
    }
    if first(request_fields, "authorization").is_some()
        && !(cc.public || cc.must_revalidate || cc.s_maxage.is_some())
    {
        return Err(NotStored::Authorization);
    }
    if values(response_fields, "vary")
        .any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii() == b"*"))
    {
        return Err(NotStored::VaryStar);
    }
    let strips_cookie = rules.strip_set_cookie
        || cc
            .private_fields
            .iter()
            .chain(&cc.no_cache_fields)
            .any(|f| f == "set-cookie");
    if first(response_fields, "set-cookie").is_some() && !strips_cookie {
        return Err(NotStored::SetCookie);
    }
    let expires = !control.targeted && first(response_fields, "expires").is_some();
    let explicit =
        cc.public || cc.max_age.is_some() || cc.s_maxage.is_some() || expires || cc.no_cache;
    if !explicit && !HEURISTIC_STATUSES.contains(&status) {
        return Err(NotStored::NoFreshness);
    }
    Ok(control)
}

/// Fields never stored, whatever the response says: hop-by-hop ones
/// (RFC 9110 §7.6.1), the proxy's own authentication fields (RFC 9111
/// §3.1), `Age` (replaced when served, §4) and `Content-Length` (levee
/// writes the stored body's).
const NOT_STORED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authentication-info",
    "age",
    "content-length",
];

/// The field names `Connection` lists: hop-by-hop as well (RFC 9110 §7.6.1).
pub fn connection_tokens<'a>(fields: &'a [Field<'a>]) -> Vec<&'a [u8]> {
    values(fields, "connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether the field `name` of a response is stored: not one of
/// [`NOT_STORED`], not named in `Connection` (`connection`), not named by
/// `private=`/`no-cache=`, and not `Set-Cookie` on a route that strips it.
pub fn is_stored(name: &[u8], connection: &[&[u8]], cc: &Response, rules: &Rules) -> bool {
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    !(NOT_STORED.contains(&lower.as_str())
        || connection
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
        || cc.private_fields.contains(&lower)
        || cc.no_cache_fields.contains(&lower)
        || (rules.strip_set_cookie && lower == "set-cookie"))
}

/// A stored head: the lines sent to clients, then the hidden ones (targeted
/// fields that stop at levee), as `Name: value\r\n` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub lines: Box<[u8]>,
    /// Bytes of `lines` that are sent to clients.
    pub visible: u32,
}

impl Head {
    /// `fields` as they are, all visible.
    pub fn plain<'a>(fields: impl Iterator<Item = Field<'a>>) -> Head {
        let mut lines = Vec::new();
        for (name, value) in fields {
            push_line(&mut lines, name, value);
        }
        Head {
            visible: u32::try_from(lines.len()).unwrap_or(u32::MAX),
            lines: lines.into_boxed_slice(),
        }
    }
}

/// The head to store for a response with `fields`, governed by `cc`: the
/// fields [`is_stored`] keeps, with a `Date` (the time it arrived) when
/// the upstream sent none (RFC 9110 §6.6.1).
pub fn stored_head(fields: &[Field<'_>], cc: &Response, rules: &Rules, arrived: u64) -> Head {
    let connection = connection_tokens(fields);
    let kept = || {
        fields
            .iter()
            .copied()
            .filter(|(n, _)| is_stored(n, &connection, cc, rules))
    };
    let hidden = |n: &[u8]| {
        rules
            .hidden
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(n))
    };
    let mut lines = Vec::with_capacity(256);
    for (name, value) in kept().filter(|(n, _)| !hidden(n)) {
        push_line(&mut lines, name, value);
    }
    if first(fields, "date").is_none() {
        push_line(&mut lines, b"Date", fmt_http_date(arrived).as_bytes());
    }
    let visible = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    for (name, value) in kept().filter(|(n, _)| hidden(n)) {
        push_line(&mut lines, name, value);
    }
    // Exact size: the grown Vec's spare capacity would stay allocated.
    Head {
        lines: lines.into_boxed_slice(),
        visible,
    }
}

fn push_line(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// The stored fields after a 304 (or a HEAD's 200) that confirms them
/// (RFC 9111 §3.2, §4.3.4): each field the new response carries replaces
/// the stored ones of its name, except those never stored and the ones its
/// own `Connection` names. `Set-Cookie` in a 304 is meant for the client
/// that asked, not for the stored response: it is never merged.
pub fn updated_fields<'a>(stored: &[Field<'a>], update: &[Field<'a>]) -> Vec<Field<'a>> {
    let connection = connection_tokens(update);
    let none = Rules {
        strip_set_cookie: true,
        ..Rules::default()
    };
    let fresh: Vec<Field<'a>> = update
        .iter()
        .copied()
        .filter(|(n, _)| is_stored(n, &connection, &Response::default(), &none))
        .collect();
    stored
        .iter()
        .copied()
        .filter(|(n, _)| !fresh.iter().any(|(u, _)| u.eq_ignore_ascii_case(n)))
        .chain(fresh.iter().copied())
        .collect()
}

/// Methods RFC 9110 §9.2.1 defines as safe; any other, known or not, may
/// change state at the origin.
const SAFE: [&[u8]; 4] = [b"GET", b"HEAD", b"OPTIONS", b"TRACE"];

/// Whether `method` is safe (RFC 9110 §9.2.1): it cannot change what the
/// origin stores.
pub fn is_safe(method: &[u8]) -> bool {
    SAFE.contains(&method)
}

/// After a response to `method` with `status` (RFC 9111 §4.4): whether the
/// target, and its same-origin `Location`/`Content-Location`, must be
/// invalidated. Any method not known to be safe does, on a non-error status.
pub fn invalidates(method: &[u8], status: u16) -> bool {
    !is_safe(method) && (200..400).contains(&status)
}

#[cfg(test)]
mod tests;
