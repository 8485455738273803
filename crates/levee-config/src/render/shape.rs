//! Writes the shaping keys back out: a route's header rules and
//! `hide_upstream_server`, and `[http]`.

use toml::{Table, Value};

use crate::model::{CookieAttributes, HeaderRules, Http, RouteShape};

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
