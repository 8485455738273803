//! Shaping keys: a route's `request_headers`, `response_headers`,
//! `hide_upstream_server`, `error_pages` and `intercept_errors`, the sticky
//! cookie's attributes, and the `[http]` table (request ids, the site-wide
//! `hide_upstream_server` and `error_pages`).

use crate::error::Sink;
use crate::model::{
    CookieAttributes, ErrorPage, HeaderRule, HeaderRules, Http, PageSource, RequestIdTrust,
    RouteShape, SameSite, Template,
};
use crate::tree::{Fields, Item};

/// The route keys read here.
pub(crate) const ROUTE_KEYS: &[&str] = &[
    "request_headers",
    "response_headers",
    "hide_upstream_server",
    "error_pages",
    "intercept_errors",
];
pub(crate) const PAGE_KEYS: &[&str] = &["file", "body", "content_type", "json_file", "json"];
const RULE_KEYS: &[&str] = &["set", "add", "remove"];
const RESPONSE_RULE_KEYS: &[&str] = &["set", "add", "remove", "always"];
pub(crate) const HTTP_KEYS: &[&str] = &[
    "hide_upstream_server",
    "request_id",
    "request_id_header",
    "request_id_trust",
    "error_pages",
];

/// Fields levee alone writes: the framing and the connection's own fields
/// (a rule could desynchronise the peer's framing or smuggle a request),
/// and `Host` (`preserve_host` chooses it; HTTP/2 servers get it as
/// `:authority`).
const RESERVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
    "host",
];

/// A route's shaping keys (`is_proxy`: only a proxy route sends a request
/// upstream or gets a response from one).
pub(crate) fn route_shape(
    sink: &mut Sink<'_>,
    fields: &Fields<'_, '_>,
    is_proxy: bool,
) -> RouteShape {
    let mut shape = RouteShape::default();
    if let Some(i) = fields.get("request_headers") {
        if !is_proxy {
            i.error(sink, "`request_headers` only applies to `proxy` routes");
        } else if let Some(f) = Fields::of(sink, i, RULE_KEYS) {
            shape.request = rules(sink, &f);
        }
    }
    if let Some(i) = fields.get("response_headers")
        && let Some(f) = Fields::of(sink, i, RESPONSE_RULE_KEYS)
    {
        shape.response = rules(sink, &f);
        shape.always = f.get("always").and_then(|a| a.bool(sink)).unwrap_or(false);
        if !is_proxy && !shape.always && !shape.response.is_empty() {
            i.error(
                sink,
                "this route answers itself: its response rules apply only with `always = true`",
            );
        }
    }
    if let Some(i) = fields.get("hide_upstream_server") {
        if !is_proxy {
            i.error(
                sink,
                "`hide_upstream_server` only applies to `proxy` routes",
            );
        }
        shape.hide_upstream_server = i.bool(sink);
    }
    if let Some(i) = fields.get("error_pages") {
        shape.error_pages = error_pages(sink, i);
    }
    if let Some(i) = fields.get("intercept_errors") {
        if !is_proxy {
            i.error(sink, "`intercept_errors` only applies to `proxy` routes");
        }
        shape.intercept_errors = i.bool(sink).unwrap_or(false);
    }
    shape
}

/// A table whose keys are the user's (field names, statuses): each key
/// with its value as an [`Item`] of its own.
fn entries<'t, 'i>(sink: &mut Sink<'_>, item: &Item<'t, 'i>) -> Vec<(&'t str, Item<'t, 'i>)> {
    let Some(table) = item.table(sink) else {
        return Vec::new();
    };
    table
        .iter()
        .map(|(name, value)| {
            let text: &'t str = name.get_ref().as_ref();
            let entry = Item {
                key: crate::tree::child(&item.key, text),
                key_span: name.span(),
                value,
            };
            (text, entry)
        })
        .collect()
}

/// `error_pages`: a table of status = page table.
fn error_pages(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Vec<ErrorPage> {
    let mut pages = Vec::new();
    for (status_text, entry) in entries(sink, item) {
        let status = match status_text.parse::<u16>() {
            Ok(s) if (400..=599).contains(&s) => s,
            _ => {
                sink.error(
                    entry.key_span.clone(),
                    &entry.key,
                    format!("`{status_text}` is not an error status (400 to 599)"),
                );
                continue;
            }
        };
        let Some(f) = Fields::of(sink, &entry, PAGE_KEYS) else {
            continue;
        };
        let Some(body) = source(sink, &f, "file", "body", true) else {
            continue;
        };
        let content_type = f
            .get("content_type")
            .and_then(|i| i.text(sink))
            .map(str::to_owned);
        let json = source(sink, &f, "json_file", "json", false);
        pages.push(ErrorPage {
            status,
            body,
            content_type,
            json,
        });
    }
    pages
}

/// A page's bytes: a file path under `file_key` or text under `inline_key`
/// (exactly one when `required`, at most one otherwise).
fn source(
    sink: &mut Sink<'_>,
    f: &Fields<'_, '_>,
    file_key: &str,
    inline_key: &str,
    required: bool,
) -> Option<PageSource> {
    match (f.get(file_key), f.get(inline_key)) {
        (Some(_), Some(i)) => {
            i.error(
                sink,
                format!("set `{file_key}` or `{inline_key}`, not both"),
            );
            None
        }
        (Some(i), None) => i.text(sink).map(|p| PageSource::File(p.into())),
        (None, Some(i)) => i.str(sink).map(|t| PageSource::Inline(t.to_owned())),
        (None, None) => {
            if required {
                sink.error(
                    f.span.clone(),
                    &f.key,
                    format!("an error page needs `{file_key}` or `{inline_key}`"),
                );
            }
            None
        }
    }
}

fn rules(sink: &mut Sink<'_>, f: &Fields<'_, '_>) -> HeaderRules {
    let mut out = HeaderRules::default();
    for (key, list) in [("set", &mut out.set), ("add", &mut out.add)] {
        let Some(item) = f.get(key) else { continue };
        for (name_str, entry) in entries(sink, item) {
            if let Some(rule) = rule(sink, &entry, name_str) {
                list.push(rule);
            }
        }
    }
    if let Some(item) = f.get("remove")
        && let Some(names) = item.one_or_many(sink)
    {
        for (entry, name) in names {
            if field_name(sink, &entry, name) {
                out.remove.push(name.to_owned());
            }
        }
    }
    out
}

fn rule(sink: &mut Sink<'_>, entry: &Item<'_, '_>, name: &str) -> Option<HeaderRule> {
    let name_ok = field_name(sink, entry, name);
    let text = entry.str(sink)?;
    // Tab is the one control character a field value may hold; CR, LF and
    // NUL would end the field or the head.
    if text.chars().any(|c| c.is_control() && c != '\t') {
        entry.error(sink, "a field value must not contain control characters");
        return None;
    }
    let value = Template::parse(text)
        .map_err(|message| entry.error(sink, message))
        .ok()?;
    name_ok.then(|| HeaderRule {
        name: name.to_owned(),
        value,
    })
}

/// Checks a field name: an HTTP token, not one levee alone writes.
fn field_name(sink: &mut Sink<'_>, at: &Item<'_, '_>, name: &str) -> bool {
    if !is_token(name) {
        sink.error(
            at.key_span.clone(),
            &at.key,
            format!("`{name}` is not a valid field name (letters, digits and !#$%&'*+-.^_`|~)"),
        );
        return false;
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        let why = if lower == "host" {
            "`Host` is chosen by `preserve_host`"
        } else {
            "levee writes the connection and framing fields itself"
        };
        sink.error(
            at.key_span.clone(),
            &at.key,
            format!("`{name}` cannot be set by a rule: {why}"),
        );
        return false;
    }
    true
}

/// An HTTP token (RFC 9110 §5.6.2).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(super::upstream::is_tchar)
}

/// The sticky cookie's attributes of an upstream; an error at each one
/// when the upstream is not `balance = "sticky"`.
pub(crate) fn sticky_attributes(
    sink: &mut Sink<'_>,
    fields: &Fields<'_, '_>,
    sticky: bool,
) -> CookieAttributes {
    let mut a = CookieAttributes::default();
    for key in [
        "sticky_cookie_secure",
        "sticky_cookie_same_site",
        "sticky_cookie_max_age",
    ] {
        if let Some(i) = fields.get(key)
            && !sticky
        {
            i.error(
                sink,
                format!("`{key}` is only allowed with balance = \"sticky\""),
            );
        }
    }
    if let Some(b) = fields
        .get("sticky_cookie_secure")
        .and_then(|i| i.bool(sink))
    {
        a.secure = b;
    }
    if let Some(i) = fields.get("sticky_cookie_same_site") {
        a.same_site = match i.str(sink) {
            Some("Strict") => Some(SameSite::Strict),
            Some("Lax") => Some(SameSite::Lax),
            Some("None") if a.secure => Some(SameSite::None),
            Some("None") => {
                // Browsers drop a SameSite=None cookie that is not Secure.
                i.error(sink, "`SameSite=None` needs `sticky_cookie_secure = true`: browsers refuse it otherwise");
                None
            }
            Some(other) => {
                i.error(
                    sink,
                    format!("`{other}`: expected \"Strict\", \"Lax\" or \"None\""),
                );
                None
            }
            None => None,
        };
    }
    if let Some(i) = fields.get("sticky_cookie_max_age") {
        a.max_age = i.positive_duration(sink);
    }
    a
}

/// `[http]`.
pub(crate) fn http(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Http {
    let mut http = Http::default();
    let Some(f) = Fields::of(sink, item, HTTP_KEYS) else {
        return http;
    };
    if let Some(b) = f.get("hide_upstream_server").and_then(|i| i.bool(sink)) {
        http.hide_upstream_server = b;
    }
    if let Some(b) = f.get("request_id").and_then(|i| i.bool(sink)) {
        http.request_id = b;
    }
    if let Some(i) = f.get("request_id_header")
        && let Some(name) = i.str(sink)
    {
        if is_token(name) && !RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            http.request_id_header = name.to_owned();
        } else {
            i.error(sink, format!("`{name}` is not a field name levee can set"));
        }
    }
    if let Some(i) = f.get("error_pages") {
        http.error_pages = error_pages(sink, i);
    }
    if let Some(i) = f.get("request_id_trust")
        && let Some(text) = i.str(sink)
    {
        match text {
            "trusted_proxies" => http.request_id_trust = RequestIdTrust::TrustedProxies,
            "any" => http.request_id_trust = RequestIdTrust::Any,
            "none" => http.request_id_trust = RequestIdTrust::None,
            other => i.error(
                sink,
                format!("`{other}`: expected \"trusted_proxies\", \"any\" or \"none\""),
            ),
        }
    }
    http
}

#[cfg(test)]
mod tests;
