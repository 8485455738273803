//! Writes the shaping keys back out: a route's header rules and
//! `hide_upstream_server`, and `[http]`.

use toml::{Table, Value};

use crate::model::{CookieAttributes, ErrorPage, HeaderRules, Http, PageSource, RouteShape};

/// A route's `request_headers`, `response_headers` and `hide_upstream_server`.
pub(super) fn route(t: &mut Table, shape: &RouteShape) {
    if !shape.request.is_empty() {
        t.insert(
            "request_headers".into(),
            Value::Table(rules(&shape.request)),
        );
    }
    if !shape.response.is_empty() || shape.always {
        let mut r = rules(&shape.response);
        r.insert("always".into(), shape.always.into());
        t.insert("response_headers".into(), Value::Table(r));
    }
    if let Some(hide) = shape.hide_upstream_server {
        t.insert("hide_upstream_server".into(), hide.into());
    }
    if !shape.error_pages.is_empty() {
        t.insert("error_pages".into(), pages(&shape.error_pages));
    }
    if shape.intercept_errors {
        t.insert("intercept_errors".into(), true.into());
    }
}

fn pages(pages: &[ErrorPage]) -> Value {
    let mut t = Table::new();
    for p in pages {
        let mut page = Table::new();
        let mut put = |file: &str, inline: &str, s: &PageSource| match s {
            PageSource::File(path) => page.insert(file.into(), super::path(path)),
            PageSource::Inline(text) => page.insert(inline.into(), text.as_str().into()),
        };
        put("file", "body", &p.body);
        if let Some(json) = &p.json {
            put("json_file", "json", json);
        }
        if let Some(ct) = &p.content_type {
            page.insert("content_type".into(), ct.as_str().into());
        }
        t.insert(p.status.to_string(), Value::Table(page));
    }
    Value::Table(t)
}

fn rules(rules: &HeaderRules) -> Table {
    let mut t = Table::new();
    for (key, list) in [("set", &rules.set), ("add", &rules.add)] {
        if !list.is_empty() {
            let fields = list
                .iter()
                .map(|r| (r.name.clone(), Value::from(r.value.text.as_str())))
                .collect();
            t.insert(key.into(), Value::Table(fields));
        }
    }
    if !rules.remove.is_empty() {
        let names = rules.remove.iter().map(|n| n.as_str().into()).collect();
        t.insert("remove".into(), Value::Array(names));
    }
    t
}

/// `[http]`.
pub(super) fn http(root: &mut Table, http: &Http) {
    let mut t = Table::new();
    t.insert(
        "hide_upstream_server".into(),
        http.hide_upstream_server.into(),
    );
    t.insert("request_id".into(), http.request_id.into());
    t.insert(
        "request_id_header".into(),
        http.request_id_header.as_str().into(),
    );
    t.insert(
        "request_id_trust".into(),
        http.request_id_trust.as_str().into(),
    );
    if !http.error_pages.is_empty() {
        t.insert("error_pages".into(), pages(&http.error_pages));
    }
    root.insert("http".into(), Value::Table(t));
}

/// A sticky upstream's cookie attributes.
pub(super) fn sticky_attributes(t: &mut Table, a: &CookieAttributes) {
    t.insert("sticky_cookie_secure".into(), a.secure.into());
    if let Some(same_site) = a.same_site {
        t.insert("sticky_cookie_same_site".into(), same_site.as_str().into());
    }
    if let Some(max_age) = a.max_age {
        t.insert("sticky_cookie_max_age".into(), super::duration(max_age));
    }
}
