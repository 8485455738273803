//! A HEAD miss fills the cache, as nginx's `proxy_cache_convert_head`:
//! levee leads the key's flight and fetches the response with GET (a
//! clientless exchange, `cache/fetch.rs`), stores it, and answers the
//! HEAD from the store. The client gets its head once the body is stored;
//! the next GET (or HEAD) is a hit.
//!
//! An uncacheable response answers the HEAD with its head (its body is not
//! read), and the key is remembered (hit-for-miss), so its later HEADs go
//! upstream as HEADs. When the fetch fails without a stale response to
//! stand in, or the body turns out too large to store, the HEAD goes to
//! the upstream as it came.

use std::sync::Arc;

use bytes::Bytes;
use levee_cache::flight::Lead;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::Object;
use levee_upstream::Group;

use super::fetch::{self, Behalf, Fetched};
use super::fill::Fill;
use super::{RouteCache, SiteCache, hit};
use crate::exchange::{Exchange, Next, Outcome};
use crate::h1::{HeadLimits, Parsed, parse_request};
use crate::message::RequestHead;
use crate::proxy;
use crate::site::Site;
use levee_cache::tiers::Source;

/// What a request the store did not answer carries on with (cache.rs),
/// and a HEAD miss needs besides the request.
pub(super) struct Miss<'a> {
    pub cache: &'a SiteCache,
    pub route: &'a RouteCache,
    pub group: &'a Arc<Group>,
    pub preserve_host: bool,
    pub key: Vec<u8>,
    pub fwd: &'static str,
    pub stale: Option<(Arc<Object>, Vec<u8>)>,
    /// The tier `stale` came from.
    pub source: Source,
}

/// Fetches for `req` (a HEAD) with GET, as the lead of its key's flight,
/// and answers from what was stored; `None` when the HEAD must go to the
/// upstream itself.
pub(super) async fn fetch_as_get(
    ex: &mut Exchange<'_>,
    site: &Site,
    m: Miss<'_>,
    lead: Lead<'_>,
) -> Option<Outcome> {
    let get = as_get(&ex.head)?;
    let https = ex.origin.https;
    let mut fill = Fill::new(m.cache, m.key.clone(), m.route, m.fwd, m.stale, https);
    fill.stale_from(m.source);
    fill.lead(lead);
    fill.validate();
    let behalf = Behalf {
        origin: ex.origin,
        preserve_host: m.preserve_host,
        proxy_header: proxy::proxy_header(m.group, ex),
        shaping: ex.held(),
    };
    let fetched = fetch::fetch(m.group, &get, &behalf, &site.timeouts, &mut fill).await;
    let detail = match fetched {
        Ok(Fetched::Stored) => format!("fwd={}; stored", m.fwd),
        Ok(Fetched::Answer) => String::new(),
        Ok(Fetched::Uncacheable { head, status_line }) => {
            fill.finish().await;
            Counters::add(&STATS.misses, 1);
            let (sent, keep_alive) = ex.send_upstream_head(&head, &status_line, site).await;
            let next = if sent && keep_alive {
                Next::KeepAlive
            } else {
                Next::Close
            };
            return Some(Outcome::of(head.status, next));
        }
        Err(e) => {
            tracing::debug!(error = %e, "HEAD miss fetched as GET failed");
            // Unreachable upstream: a stale response may stand in, else
            // the HEAD tries the upstream itself.
            if !fill.fall_back(502) {
                return None;
            }
            String::new()
        }
    };
    fill.finish().await;
    let answer = match fill.answer() {
        Some(answer) => answer.clone(),
        None => {
            let fields: Vec<levee_cache::Field<'_>> = ex.head.fields.iter().collect();
            let (obj, source) = super::tiers::after_wait(m.cache, &m.key, &fields).await?;
            super::fill::Answer {
                obj,
                detail,
                extra: Vec::new(),
                source,
            }
        }
    };
    Counters::add(&STATS.misses, 1);
    let served = super::Served::from(&answer);
    Some(hit(ex, site, m.route, &served).await)
}

/// The GET that fetches for a HEAD: the same head with the method replaced.
fn as_get(req: &RequestHead) -> Option<RequestHead> {
    let raw = req.fields.raw();
    let method = req.method;
    let mut text = Vec::with_capacity(raw.len());
    text.extend_from_slice(raw.get(..method.start as usize)?);
    text.extend_from_slice(b"GET");
    text.extend_from_slice(raw.get(method.end as usize..)?);
    // The head was accepted already; a shorter method keeps it within any limit.
    let limits = HeadLimits {
        max_request_line: text.len(),
        max_header_bytes: text.len(),
        max_headers: req.fields.len() + 1,
    };
    match parse_request(&text, 0, &limits) {
        Ok(Parsed::Complete(parts, len)) => {
            let text = Bytes::from(text);
            let mut get = parts.into_head(text.slice(..len));
            // The route's `forward_path` and any rewrite, which the parse
            // of the client's text does not know.
            get.normal.clone_from(&req.normal);
            Some(get)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_becomes_the_same_get() {
        let text = b"HEAD /a?b=1 HTTP/1.1\r\nHost: site\r\nAccept-Encoding: gzip\r\n\r\n";
        let limits = HeadLimits {
            max_request_line: 8192,
            max_header_bytes: 8192,
            max_headers: 10,
        };
        let Ok(Parsed::Complete(parts, len)) = parse_request(text, 0, &limits) else {
            panic!("a request head");
        };
        let head = parts.into_head(Bytes::copy_from_slice(&text[..len]));
        let get = as_get(&head).expect("converts");
        assert_eq!(get.method(), b"GET");
        assert_eq!(get.uri(), b"/a?b=1");
        assert_eq!(get.host_name(), head.host_name());
        assert_eq!(get.fields.get("accept-encoding"), Some(&b"gzip"[..]));
    }
}
