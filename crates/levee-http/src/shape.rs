//! Request and response shaping (docs/config.md, "Header rules"): a
//! route's header rules on the request sent upstream (`send`, through
//! proxy/headers.rs) and on the response sent to the client (`respond`
//! and, with `always`, `answer`), the upstream's `Server` hidden, and the
//! request id (id.rs) passed upstream and returned to the client.
//!
//! Responses are dressed where their head is written, whatever made it: an
//! HTTP/1 head as bytes ([`h1_head`]), an HTTP/2 head as a header map
//! ([`h2_head`]), both from one [`Dress`], so both protocols agree.

pub(crate) mod id;
pub(crate) mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use levee_config::{HeaderRules, Piece, RouteShape, Template, Var};

pub(crate) use id::{IdField, RequestId};
pub(crate) use pages::{PageError, Pages};

/// The fields levee hides from an upstream's response by default: they
/// name the backend's software and version, which helps an attacker more
/// than a client (`hide_upstream_server`).
const UPSTREAM_SOFTWARE: [&str; 2] = ["server", "x-powered-by"];

/// A route's shaping, built once per (re)load.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    request: Option<Rules>,
    response: Option<Rules>,
    /// The response rules apply to levee's own responses too.
    always: bool,
    /// Drop the upstream's `Server` and `X-Powered-By`.
    hide_upstream: bool,
    /// Error pages: the site's with the route's over them.
    pub(crate) pages: Pages,
    /// A server's error with a page gets the page (`intercept_errors`).
    intercept: bool,
}

impl Shape {
    /// The shaping of a route with `shape`, `hide` being `[http]`'s
    /// `hide_upstream_server` and `pages` its error pages; reads the
    /// route's page files.
    pub(crate) fn build(shape: &RouteShape, hide: bool, pages: &Pages) -> Result<Shape, PageError> {
        Ok(Shape {
            request: Rules::build(&shape.request),
            response: Rules::build(&shape.response),
            always: shape.always,
            hide_upstream: shape.hide_upstream_server.unwrap_or(hide),
            pages: Pages::load(pages, &shape.error_pages)?,
            intercept: shape.intercept_errors,
        })
    }

    /// A server's `status` is answered with the route's page instead.
    pub(crate) fn intercepts(&self, status: u16) -> bool {
        self.intercept && self.pages.get(status).is_some()
    }

    /// The rules for the request sent upstream, if any.
    pub(crate) fn request(&self) -> Option<&Rules> {
        self.request.as_ref()
    }
}

/// One direction's rules, compiled: the names dropped (every `remove`, and
/// every `set`, which replaces), then the fields written.
#[derive(Debug)]
pub(crate) struct Rules {
    drop: Vec<Name>,
    write: Vec<(Name, Template)>,
}

/// A field name as written (HTTP/1) and as HTTP/2 wants it (lower case).
#[derive(Debug)]
pub(crate) struct Name {
    pub written: Box<[u8]>,
    pub h2: HeaderName,
}

impl Name {
    /// `None` for a name that is not a token (the config checked it).
    pub(crate) fn new(name: &str) -> Option<Name> {
        Some(Name {
            written: name.as_bytes().into(),
            h2: HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()?,
        })
    }

    pub(crate) fn is(&self, name: &[u8]) -> bool {
        self.written.eq_ignore_ascii_case(name)
    }
}

impl Rules {
    fn build(rules: &HeaderRules) -> Option<Rules> {
        if rules.is_empty() {
            return None;
        }
        let drop = rules
            .remove
            .iter()
            .map(String::as_str)
            .chain(rules.set.iter().map(|r| r.name.as_str()))
            .filter_map(Name::new)
            .collect();
        let write = rules
            .set
            .iter()
            .chain(&rules.add)
            .filter_map(|r| Some((Name::new(&r.name)?, r.value.clone())))
            .collect();
        Some(Rules { drop, write })
    }

    /// A field of that name is dropped (removed, or replaced by a `set`).
    pub(crate) fn drops(&self, name: &[u8]) -> bool {
        self.drop.iter().any(|n| n.is(name))
    }

    /// Each field the rules write, its value expanded with `vars`.
    pub(crate) fn each(&self, vars: &Vars<'_>, mut f: impl FnMut(&Name, &[u8])) {
        let mut value = Vec::new();
        for (name, template) in &self.write {
            value.clear();
            expand(template, vars, &mut value);
            f(name, &value);
        }
    }
}

/// What a template's variables stand for in one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub client: IpAddr,
    pub https: bool,
    /// The request's host as it came (validated by the head's parser).
    pub host: &'a [u8],
    pub id: &'a [u8],
    pub upstream: Option<SocketAddr>,
}

/// `template` with `vars` filled in, appended to `out`. A variable's value
/// never carries a control character onto the wire: every source is
/// checked already (the head's parser refuses them in `Host`, ids are
/// visible ASCII, addresses are formatted here), and any that slipped
/// through is dropped here.
pub(crate) fn expand(template: &Template, vars: &Vars<'_>, out: &mut Vec<u8>) {
    use std::io::Write as _;
    for piece in &template.pieces {
        let start = out.len();
        match piece {
            Piece::Literal(text) => {
                out.extend_from_slice(text.as_bytes());
                continue;
            }
            Piece::Var(Var::Client) => {
                let _ = write!(out, "{}", vars.client);
            }
            Piece::Var(Var::Scheme) => {
                out.extend_from_slice(if vars.https { b"https" } else { b"http" });
            }
            Piece::Var(Var::Host) => out.extend_from_slice(vars.host),
            Piece::Var(Var::RequestId) => out.extend_from_slice(vars.id),
            Piece::Var(Var::Upstream) => {
                if let Some(a) = vars.upstream {
                    let _ = write!(out, "{a}");
                }
            }
        }
        let mut keep = start;
        for i in start..out.len() {
            let b = out.get(i).copied().unwrap_or(0);
            if b == b'\t' || (b >= 0x20 && b != 0x7f) {
                if let Some(slot) = out.get_mut(keep) {
                    *slot = b;
                }
                keep += 1;
            }
        }
        out.truncate(keep);
    }
}

/// What shapes the request sent upstream (proxy/headers.rs): the route's
/// request rules, the id's field and value, the variables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upward<'a> {
    pub rules: Option<&'a Rules>,
    pub id: Option<(&'a IdField, &'a [u8])>,
    pub vars: Vars<'a>,
}

impl Upward<'_> {
    /// Nothing to add (tests).
    #[cfg(test)]
    pub(crate) fn none(client: IpAddr) -> Upward<'static> {
        Upward {
            rules: None,
            id: None,
            vars: Vars {
                client,
                https: false,
                host: b"",
                id: b"",
                upstream: None,
            },
        }
    }
}

/// What a fetch without a client (a background refresh, cache/fetch.rs)
/// sends upstream on behalf of the request that started it: that
/// request's route rules and id, owned, since the fetch outlives it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Held {
    shape: Option<Arc<Shape>>,
    id: Option<(Arc<IdField>, RequestId)>,
}

impl Held {
    /// What `shaping` and `id` send upstream.
    pub(crate) fn of(shaping: &Shaping<'_>, id: &RequestId) -> Held {
        Held {
            shape: shaping.shape.cloned(),
            id: shaping
                .id_field
                .filter(|_| !id.is_none())
                .map(|f| (f.clone(), *id)),
        }
    }

    /// The [`Upward`] for `head` from `origin`, sent to `upstream`.
    pub(crate) fn upward<'a>(
        &'a self,
        head: &'a crate::message::RequestHead,
        origin: &crate::origin::Origin,
        upstream: SocketAddr,
    ) -> Upward<'a> {
        let id = self.id.as_ref().map(|(f, id)| (&**f, id.as_bytes()));
        Upward {
            rules: self.shape.as_deref().and_then(|s| s.request()),
            id,
            vars: Vars {
                client: origin.ip,
                https: origin.https,
                host: host_of(head),
                id: id.map_or(&[][..], |(_, v)| v),
                upstream: Some(upstream),
            },
        }
    }
}

/// The request's host as it came (validated by the head's parser).
fn host_of(head: &crate::message::RequestHead) -> &[u8] {
    head.host
        .map(|h| head.fields.span_of(h))
        .unwrap_or_default()
}

/// What an exchange carries for shaping once it is routed (serve.rs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shaping<'a> {
    /// The route's; `None` before routing (and for no route).
    pub shape: Option<&'a Arc<Shape>>,
    /// The request id's field; `None` when ids are off.
    pub id_field: Option<&'a Arc<IdField>>,
    /// The server chosen, for `{upstream}`.
    pub upstream: Option<SocketAddr>,
}

/// How a response head is dressed before it goes out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dress<'a> {
    /// `Strict-Transport-Security: max-age`, when it is added.
    pub hsts: Option<u64>,
    /// A response levee made itself (an error, a redirect, `respond`, a
    /// static file), not a server's (relayed or from the cache).
    pub own: bool,
    pub shape: Option<&'a Shape>,
    /// The request id's field and value, returned to the client.
    pub id: Option<(&'a IdField, &'a [u8])>,
    pub vars: Vars<'a>,
}

impl<'a> Dress<'a> {
    /// The same, for a response levee made itself.
    pub(crate) fn own(self) -> Dress<'a> {
        Dress { own: true, ..self }
    }

    /// The same, without HSTS (levee's error answers never set it).
    pub(crate) fn no_hsts(self) -> Dress<'a> {
        Dress { hsts: None, ..self }
    }

    pub(crate) fn rules(&self) -> Option<&'a Rules> {
        let shape = self.shape?;
        if self.own && !shape.always {
            return None;
        }
        shape.response.as_ref()
    }

    fn hides(&self, name: &[u8]) -> bool {
        !self.own
            && self.shape.is_some_and(|s| s.hide_upstream)
            && UPSTREAM_SOFTWARE
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// A field of the head that does not go out as it is (`rules` are
    /// [`Dress::rules`], looked up once per head).
    pub(crate) fn drops(&self, name: &[u8], rules: Option<&Rules>) -> bool {
        self.hides(name)
            || self.id.is_some_and(|(f, _)| f.name.is(name))
            || rules.is_some_and(|r| r.drops(name))
    }

    /// `Strict-Transport-Security`, the line that follows the status line.
    pub(crate) fn hsts_line(&self, out: &mut Vec<u8>) {
        if let Some(max_age) = self.hsts {
            crate::respond::hsts_line(out, max_age);
        }
    }

    /// The lines a dressed head ends with, before its empty line: the
    /// rules' fields, then the request id.
    pub(crate) fn tail(&self, out: &mut Vec<u8>, rules: Option<&Rules>) {
        if let Some(r) = rules {
            r.each(&self.vars, |name, value| {
                crate::h1::write::field(out, &name.written, value);
            });
        }
        if let Some((field, value)) = self.id {
            crate::h1::write::field(out, &field.name.written, value);
        }
    }

    /// Whole header `lines` levee adds (a sticky cookie, the cache's),
    /// less those the dress drops.
    pub(crate) fn lines(&self, out: &mut Vec<u8>, lines: &[u8], rules: Option<&Rules>) {
        if self.shape.is_none() && self.id.is_none() {
            out.extend_from_slice(lines);
            return;
        }
        for line in lines.split_inclusive(|&b| b == b'\n') {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if !self.drops(name, rules) {
                out.extend_from_slice(line);
            }
        }
    }
}

/// Dresses an HTTP/1 response head in `out` (a head, or a head with its
/// body): fields hidden or dropped by the rules taken out, the rules'
/// fields and the request id added at the head's end, HSTS after the
/// status line.
///
/// A head levee writes itself is dressed as it is written instead
/// (`h1::head::client_head`, relayed responses: no second pass over it).
/// Here, for heads made whole first (levee's own, the cache's): one pass
/// over the lines comparing each name with `Server`, `X-Powered-By` and
/// the id's field, then the dress's lines put in before the empty line
/// with one move of what follows.
pub(crate) fn h1_head(out: &mut Vec<u8>, d: &Dress<'_>) {
    let rules = d.rules();
    if d.shape.is_some() || d.id.is_some() {
        let Some(status_end) = memchr::memchr(b'\n', out).map(|i| i + 1) else {
            return;
        };
        let Some(end) = crate::h1::parse::head_end(out, 0).map(|e| e - 2) else {
            return;
        };
        // Compacted in place: kept lines move down over dropped ones.
        let (mut read, mut write) = (status_end, status_end);
        while read < end {
            let line_end = memchr::memchr(b'\n', out.get(read..end).unwrap_or_default())
                .map_or(end, |i| read + i + 1);
            let line = out.get(read..line_end).unwrap_or_default();
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if !d.drops(name, rules) {
                out.copy_within(read..line_end, write);
                write += line_end - read;
            }
            read = line_end;
        }
        let mut lines = crate::reuse::head(128);
        d.tail(&mut lines, rules);
        replace(out, write..end, &lines);
        crate::reuse::give_head(lines);
    }
    if d.hsts.is_some() {
        let mut line = crate::reuse::head(64);
        d.hsts_line(&mut line);
        let at = memchr::memchr(b'\n', out).map_or(out.len(), |i| i + 1);
        replace(out, at..at, &line);
        crate::reuse::give_head(line);
    }
}

/// `out` with `range` replaced by `with`: what follows moves once, and
/// bytes are copied, not pushed one by one (`Vec::splice` did, and cost
/// more than the rest of the dress).
fn replace(out: &mut Vec<u8>, range: std::ops::Range<usize>, with: &[u8]) {
    let (start, end, len) = (range.start, range.end, out.len());
    if start > end || end > len {
        return;
    }
    let new_end = start + with.len();
    if new_end > end {
        out.resize(len + (new_end - end), 0);
    }
    out.copy_within(end..len, new_end);
    out.truncate(len - (end - start) + with.len());
    if let Some(slot) = out.get_mut(start..new_end) {
        slot.copy_from_slice(with);
    }
}

/// The same for an HTTP/2 response head.
pub(crate) fn h2_head(headers: &mut HeaderMap, d: &Dress<'_>) {
    let rules = d.rules();
    if !d.own && d.shape.is_some_and(|s| s.hide_upstream) {
        for name in UPSTREAM_SOFTWARE {
            headers.remove(name);
        }
    }
    if let Some(r) = rules {
        for name in &r.drop {
            headers.remove(&name.h2);
        }
        r.each(&d.vars, |name, value| {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                headers.append(name.h2.clone(), v);
            }
        });
    }
    if let Some((field, value)) = d.id
        && let Ok(v) = HeaderValue::from_bytes(value)
    {
        headers.insert(field.name.h2.clone(), v);
    }
    crate::exchange::h2::head::add_hsts(headers, d.hsts);
}

impl<'a> Dress<'a> {
    /// How a response head of an exchange is dressed: borrows the
    /// exchange's fields one by one, so its end stays free to write.
    pub(crate) fn of(
        head: &'a crate::message::RequestHead,
        origin: &crate::origin::Origin,
        id: &'a RequestId,
        shaping: &Shaping<'a>,
        hsts: Option<u64>,
    ) -> Dress<'a> {
        Dress {
            hsts,
            own: false,
            shape: shaping.shape.map(|s| &**s),
            id: shaping
                .id_field
                .filter(|_| !id.is_none())
                .map(|f| (&**f, id.as_bytes())),
            vars: Vars {
                client: origin.ip,
                https: origin.https,
                host: host_of(head),
                id: id.as_bytes(),
                upstream: shaping.upstream,
            },
        }
    }
}

#[cfg(test)]
mod tests;
