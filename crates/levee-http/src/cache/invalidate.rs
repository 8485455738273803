//! Invalidation after an unsafe method (RFC 9111 §4.4): the target's keys
//! and those of a same-origin `Location` or `Content-Location`.

use levee_cache::Field;
use levee_cache::key;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::Storage;

use super::{SCHEMES, SiteCache};
use crate::message::RequestHead;

/// After a successful request with an unsafe method (RFC 9111 §4.4): the
/// target and the same-origin `Location`/`Content-Location` are no longer
/// served from the cache. Keys are built with the request's own fields, so
/// route-added key parts (tenant header, cookie) match the entries this
/// client would hit. `https`: the client's connection has TLS. Returns the
/// keys, for the shared tier.
pub(crate) fn invalidate(
    cache: &SiteCache,
    spec: &key::KeySpec,
    req: &RequestHead,
    https: bool,
    locations: &[&[u8]],
) -> Vec<Vec<u8>> {
    let fields: Vec<Field<'_>> = req.fields.iter().collect();
    let host = req.host_name();
    let authority = req.host.map(|h| req.fields.span_of(h)).unwrap_or_default();
    let origin = Origin { https, authority };
    let same_origin = locations
        .iter()
        .filter_map(|l| same_origin_path(l, &origin));
    let store = &cache.tier.store;
    let mut keys = Vec::new();
    // Both schemes: an http and an https listener in front of one origin
    // serve the same resource.
    for target in std::iter::once(req.uri()).chain(same_origin) {
        for scheme in SCHEMES {
            let key = key::primary(spec, scheme, host, target, &fields);
            store.remove(&key);
            Counters::add(&STATS.purged, 1);
            keys.push(key);
        }
    }
    keys
}

/// The origin of a request (RFC 9110 §4.3.1): the client's scheme and
/// the `Host` it named.
struct Origin<'a> {
    https: bool,
    authority: &'a [u8],
}

impl Origin<'_> {
    /// Whether `authority` under the scheme `https` is this origin: host
    /// compared without case, a missing port the scheme's default.
    fn is(&self, https: bool, authority: &[u8]) -> bool {
        let default = if https { &b":443"[..] } else { b":80" };
        let normal = |a: &[u8]| {
            let mut a = a.to_ascii_lowercase();
            if a.ends_with(default) {
                a.truncate(a.len() - default.len());
            }
            a
        };
        https == self.https && normal(authority) == normal(self.authority)
    }
}

/// The path and query of a `Location` of the same origin as the request: a
/// path as it is, an absolute URI only when its scheme, host and port are
/// the request's (RFC 9111 §4.4 forbids invalidating another origin's).
fn same_origin_path<'a>(location: &'a [u8], origin: &Origin<'_>) -> Option<&'a [u8]> {
    if location.starts_with(b"/") && !location.starts_with(b"//") {
        return Some(location);
    }
    let (https, rest) = match location.strip_prefix(b"http://") {
        Some(rest) => (false, rest),
        None => (true, location.strip_prefix(b"https://")?),
    };
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !origin.is(https, authority) {
        return None;
    }
    Some(if path.starts_with(b"/") { path } else { b"/" })
}

#[cfg(test)]
mod tests;
