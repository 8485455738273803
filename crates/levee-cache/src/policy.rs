//! Whether a response may be stored by a shared cache (RFC 9111 §3), and
//! which stored fields must be dropped (`private="…"`, `no-cache="…"` are
//! honoured by storing without them).
//!
//! levee is stricter than RFC 9111 in one place, as nginx and Varnish are:
//! a response with `Set-Cookie` is not stored unless the field is named in
//! `private=` or `no-cache=` (so it is stripped) — a cookie meant for one
//! client must never reach another.

use crate::directives::{Request, Response};
use crate::freshness::HEURISTIC_STATUSES;
use crate::{Field, first, values};

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

/// Statuses levee stores: final, understood, and complete representations.
const STORABLE: [u16; 14] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// Checks a GET response for storing. `request_fields` are the request's.
pub fn storable(
    method: &[u8],
    request_fields: &[Field<'_>],
    status: u16,
    response_fields: &[Field<'_>],
) -> Result<Response, NotStored> {
    if method != b"GET" {
        return Err(NotStored::Method);
    }
    if !STORABLE.contains(&status) {
        return Err(NotStored::Status);
    }
    let req_cc: Vec<&[u8]> = values(request_fields, "cache-control").collect();
    let request = Request::parse(&req_cc);
    let resp_cc: Vec<&[u8]> = values(response_fields, "cache-control").collect();
    let cc = Response::parse(&resp_cc);
    if request.no_store || cc.no_store {
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
    let strips_cookie = cc
        .private_fields
        .iter()
        .chain(&cc.no_cache_fields)
        .any(|f| f == "set-cookie");
    if first(response_fields, "set-cookie").is_some() && !strips_cookie {
        return Err(NotStored::SetCookie);
    }
    let explicit = cc.public
        || cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || first(response_fields, "expires").is_some()
        || cc.no_cache;
    if !explicit && !HEURISTIC_STATUSES.contains(&status) {
        return Err(NotStored::NoFreshness);
    }
    Ok(cc)
}

/// Fields that are not stored: hop-by-hop ones and those `private=`/`no-cache=` name.
pub fn drop_when_storing(name: &[u8], cc: &Response) -> bool {
    const HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "age",
    ];
    let Ok(name) = std::str::from_utf8(name) else {
        return true;
    };
    let lower = name.to_ascii_lowercase();
    HOP.contains(&lower.as_str())
        || cc.private_fields.contains(&lower)
        || cc.no_cache_fields.contains(&lower)
}

/// After a successful unsafe request (RFC 9111 §4.4): whether the target,
/// and its `Location`/`Content-Location`, must be invalidated.
pub fn invalidates(method: &[u8], status: u16) -> bool {
    matches!(method, b"POST" | b"PUT" | b"DELETE" | b"PATCH") && (200..400).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(req: &[Field<'_>], status: u16, resp: &[Field<'_>]) -> Result<Response, NotStored> {
        storable(b"GET", req, status, resp)
    }

    #[test]
    fn storable_responses() {
        assert!(check(&[], 200, &[(b"Cache-Control", b"max-age=60")]).is_ok());
        assert!(
            check(&[], 200, &[(b"Last-Modified", b"x")]).is_ok(),
            "heuristic status"
        );
        assert_eq!(check(&[], 302, &[]), Err(NotStored::NoFreshness));
        assert!(check(&[], 302, &[(b"Cache-Control", b"max-age=5")]).is_ok());
        assert_eq!(storable(b"POST", &[], 200, &[]), Err(NotStored::Method));
        assert_eq!(check(&[], 206, &[]), Err(NotStored::Status));
        assert_eq!(check(&[], 500, &[]), Err(NotStored::Status));
    }

    #[test]
    fn refusals() {
        let cc = |v: &'static [u8]| [(&b"Cache-Control"[..], v)];
        assert_eq!(
            check(&[], 200, &cc(b"no-store, max-age=60")),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(&cc(b"no-store"), 200, &cc(b"max-age=60")),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(&[], 200, &cc(b"private, max-age=60")),
            Err(NotStored::Private)
        );
        assert!(check(&[], 200, &cc(b"private=\"x-user\", max-age=60")).is_ok());
        let auth = [(&b"Authorization"[..], &b"Basic x"[..])];
        assert_eq!(
            check(&auth, 200, &cc(b"max-age=60")),
            Err(NotStored::Authorization)
        );
        assert!(check(&auth, 200, &cc(b"s-maxage=60")).is_ok());
        assert!(check(&auth, 200, &cc(b"public, max-age=60")).is_ok());
        let vary = [
            (&b"Cache-Control"[..], &b"max-age=60"[..]),
            (b"Vary", b"Accept, *"),
        ];
        assert_eq!(check(&[], 200, &vary), Err(NotStored::VaryStar));
        let cookie = [
            (&b"Cache-Control"[..], &b"max-age=60"[..]),
            (b"Set-Cookie", b"a=b"),
        ];
        assert_eq!(check(&[], 200, &cookie), Err(NotStored::SetCookie));
        let stripped = [
            (
                &b"Cache-Control"[..],
                &b"max-age=60, private=set-cookie"[..],
            ),
            (b"Set-Cookie", b"a=b"),
        ];
        let kept = check(&[], 200, &stripped).expect("stored without the cookie");
        assert!(drop_when_storing(b"Set-Cookie", &kept));
        assert!(!drop_when_storing(b"ETag", &kept));
    }

    #[test]
    fn invalidation() {
        assert!(invalidates(b"POST", 201));
        assert!(invalidates(b"DELETE", 204));
        assert!(!invalidates(b"POST", 500));
        assert!(!invalidates(b"GET", 200));
    }
}
