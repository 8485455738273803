//! Path rewriting, between the route and protect phases (docs/config.md,
//! "Path rewriting"): a route's `[[route.rewrite]]` rules, then its
//! `strip_prefix` and `add_prefix`.
//!
//! Rules match the **matched path** (decoded and normalised, normal.rs),
//! as nginx's `rewrite` matches `$uri`. A new path is written back as a URI
//! (captures percent-encoded, so a decoded `?`, `%` or `;` in a capture
//! stays a character of the path) and normalised again by the same rules
//! as a client's: its dot segments resolve, a climb above the root is a
//! 400, and routing, protections and the upstream all see that one result.
//! A rewritten path is always forwarded in its normalised form.
//!
//! A route a `last` rule leaves still applies its protections first
//! (`screen::refuse`), so a rewrite never carries a request past the
//! protections of a route its path matched; the route that keeps the
//! request applies its own in the protect phase. Routes without rewrites
//! cost one branch.

use std::net::SocketAddr;
use std::sync::Arc;

use levee_config::{Part, RewriteFlag, RouteRewrite};
use regex::bytes::Captures;

use crate::exchange::{Exchange, Outcome, Reply};
use crate::message::RequestHead;
use crate::normal::{self, Normal, PathError};
use crate::site::{Routed, Site};

#[cfg(test)]
mod tests;

/// What a route's rules made of a request.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// No rule matched (`false`), or one with `break` did (`true`): this
    /// route keeps the request.
    Stay(bool),
    /// A `last` rule matched: routes are matched again.
    Again,
    /// A redirect rule matched.
    Redirect { status: u16, location: Vec<u8> },
}

/// The route that keeps the request once the rewrites of `routed` (the one
/// its path matched) and of the routes it is rewritten to have run, with
/// its forwarded path chosen. `Err`: the request was answered instead
/// (refused, redirected, a rewrite loop, no route), with the route it was
/// on.
pub(crate) async fn settle<'s>(
    ex: &mut Exchange<'_>,
    site: &'s Site,
    listener: SocketAddr,
    mut routed: &'s Arc<Routed>,
) -> Result<&'s Arc<Routed>, (Outcome, Option<&'s Routed>)> {
    let mut hops = 0u32;
    let mut rewritten = false;
    while let Some(rw) = routed.rewrite.as_deref() {
        let step = rules(rw, &mut ex.head).and_then(|step| match step {
            Step::Stay(changed) => Ok(Step::Stay(prefixes(rw, &mut ex.head)? || changed)),
            other => Ok(other),
        });
        match step {
            Err(e) => {
                tracing::debug!(error = %e, "rewritten path refused");
                return Err((ex.reply(&Reply::error(400, &[]), site).await, Some(routed)));
            }
            Ok(Step::Stay(changed)) => {
                rewritten |= changed;
                break;
            }
            Ok(Step::Again) => {
                rewritten = true;
                if let Some(refused) = crate::screen::refuse(ex, site, routed).await {
                    return Err((refused, Some(routed)));
                }
                hops += 1;
                if hops > site.limits.max_rewrites {
                    tracing::error!(
                        path = %String::from_utf8_lossy(ex.head.path()),
                        max_rewrites = site.limits.max_rewrites,
                        request_id = ?ex.id,
                        "rewrite cycle: more internal rewrites than `max_rewrites`"
                    );
                    return Err((ex.reply(&Reply::error(500, &[]), site).await, Some(routed)));
                }
                let host = ex.head.host_name();
                match site.route(listener, host, ex.head.path()) {
                    Some(next) => routed = next,
                    None => return Err((ex.reply(&Reply::error(404, &[]), site).await, None)),
                }
            }
            Ok(Step::Redirect { status, location }) => {
                if let Some(refused) = crate::screen::refuse(ex, site, routed).await {
                    return Err((refused, Some(routed)));
                }
                let fields = [("Location", location.as_slice())];
                let out = ex.reply(&Reply::error(status, &fields), site).await;
                return Err((out, Some(routed)));
            }
        }
    }
    if !rewritten {
        routed.choose_path(&mut ex.head);
    }
    Ok(routed)
}

/// The first of `rw`'s rules that matches the request's path, applied.
fn rules(rw: &RouteRewrite, head: &mut RequestHead) -> Result<Step, PathError> {
    for rule in &rw.rules {
        let Some(caps) = rule.pattern.0.captures(head.path()) else {
            continue;
        };
        let (mut uri, has_query) = expand(&rule.to.parts, &caps);
        drop(caps);
        // Without a `?` of its own the replacement keeps the query (nginx).
        // A bare `?` at its end drops the query.
        if !has_query {
            push_query(&mut uri, head.query());
        } else if memchr::memchr(b'?', &uri) == Some(uri.len() - 1) {
            uri.pop();
        }
        if let RewriteFlag::Redirect(status) = rule.flag {
            // A path is normalised as a client's would be: a capture that
            // starts with `/` must not make `//evil.example/`, which a
            // browser reads as another host.
            let location = match uri.first() {
                Some(b'/') => normalised(&uri)?,
                _ => uri,
            };
            return Ok(Step::Redirect { status, location });
        }
        set_uri(head, &uri)?;
        return Ok(match rule.flag {
            RewriteFlag::Break => Step::Stay(true),
            _ => Step::Again,
        });
    }
    Ok(Step::Stay(false))
}

/// `strip_prefix`, then `add_prefix`; `true` when the path changed.
fn prefixes(rw: &RouteRewrite, head: &mut RequestHead) -> Result<bool, PathError> {
    if rw.strip_prefix.is_none() && rw.add_prefix.is_none() {
        return Ok(false);
    }
    let path = head.path();
    let mut rest = path;
    if let Some(prefix) = &rw.strip_prefix {
        let prefix = prefix.trim_end_matches('/').as_bytes();
        if let Some(after) = path.strip_prefix(prefix)
            && (after.is_empty() || after.first() == Some(&b'/'))
        {
            rest = after;
        }
    }
    let add = rw
        .add_prefix
        .as_deref()
        .map_or("", |p| p.trim_end_matches('/'));
    if rest.len() == path.len() && add.is_empty() {
        return Ok(false);
    }
    let mut uri = Vec::with_capacity(path.len() + add.len() + 8);
    uri.extend_from_slice(add.as_bytes());
    if rest.is_empty() {
        uri.push(b'/');
    } else {
        encode(&mut uri, rest, PATH_KEEP);
    }
    push_query(&mut uri, head.query());
    set_uri(head, &uri)?;
    Ok(true)
}

/// `parts` with `caps` put in, as a URI (path, and a query when the
/// replacement has a `?`: then `true`).
fn expand(parts: &[Part], caps: &Captures<'_>) -> (Vec<u8>, bool) {
    let mut uri = Vec::with_capacity(64);
    let mut in_query = false;
    for part in parts {
        match part {
            Part::Literal(text) => {
                for &b in text.as_bytes() {
                    in_query |= b == b'?';
                    if LITERAL_KEEP(b) {
                        uri.push(b);
                    } else {
                        escape(&mut uri, b);
                    }
                }
            }
            Part::Capture(group) => {
                let text = caps.get(*group).map_or(&[][..], |m| m.as_bytes());
                let keep = if in_query { QUERY_KEEP } else { PATH_KEEP };
                encode(&mut uri, text, keep);
            }
        }
    }
    (uri, in_query)
}

/// Appends `?query` when there is a query.
fn push_query(uri: &mut Vec<u8>, query: &[u8]) {
    if !query.is_empty() {
        uri.push(b'?');
        uri.extend_from_slice(query);
    }
}

/// Makes `uri` (a new path and query) the request's: normalised as a
/// client's path is, matched on from now on, and forwarded.
fn set_uri(head: &mut RequestHead, uri: &[u8]) -> Result<(), PathError> {
    head.normal = Some(Box::new(normal_forms(uri)?));
    Ok(())
}

/// The forwarded form of `uri` (path and query), normalised.
fn normalised(uri: &[u8]) -> Result<Vec<u8>, PathError> {
    let forward = normal_forms(uri)?.forward;
    Ok(forward.map_or_else(|| uri.to_vec(), Vec::from))
}

/// Both forms of `uri`; the forwarded one always set, with the query.
fn normal_forms(uri: &[u8]) -> Result<Normal, PathError> {
    let (path, query) = match memchr::memchr(b'?', uri) {
        Some(i) => uri.split_at(i),
        None => (uri, &[][..]),
    };
    let (matched, forward) = match normal::normalise(path, query)? {
        Some(n) => (n.matched, n.forward.unwrap_or_else(|| uri.into())),
        None => (path.into(), uri.into()),
    };
    Ok(Normal {
        matched,
        forward: Some(forward),
    })
}

/// Characters a capture keeps as they are in a path: unreserved, `/`, and
/// sub-delimiters but `;` (a path parameter to the normaliser).
const PATH_KEEP: fn(u8) -> bool =
    |b| b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,=:@".contains(&b);

/// In a query a capture also escapes `&`, `=` and `+`, so it stays one value.
const QUERY_KEEP: fn(u8) -> bool = |b| b.is_ascii_alphanumeric() || b"-._~/!$'()*,:@".contains(&b);

/// A replacement's own text is a URI as written (its `%XX` escapes, `?`,
/// `&` and `;` mean what they say); only what no URI may hold is escaped.
const LITERAL_KEEP: fn(u8) -> bool = |b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b);

fn encode(out: &mut Vec<u8>, text: &[u8], keep: fn(u8) -> bool) {
    for &b in text {
        if keep(b) {
            out.push(b);
        } else {
            escape(out, b);
        }
    }
}

fn escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}
