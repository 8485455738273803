//! Writes a route's rewrite keys back out (see `walk/rewrite.rs` for reading them).

use toml::{Table, Value};

use super::int;
use crate::model::{RewriteFlag, RouteRewrite};

pub(super) fn route(t: &mut Table, r: &RouteRewrite) {
    if let Some(p) = &r.strip_prefix {
        t.insert("strip_prefix".into(), p.as_str().into());
    }
    if let Some(p) = &r.add_prefix {
        t.insert("add_prefix".into(), p.as_str().into());
    }
    if r.rules.is_empty() {
        return;
    }
    let rules = r
        .rules
        .iter()
        .map(|rule| {
            let mut one = Table::new();
            one.insert("match".into(), rule.pattern.0.as_str().into());
            one.insert("to".into(), rule.to.text.as_str().into());
            one.insert("flag".into(), rule.flag.as_str().into());
            if let RewriteFlag::Redirect(status) = rule.flag {
                one.insert("status".into(), int(u64::from(status)));
            }
            Value::Table(one)
        })
        .collect();
    t.insert("rewrite".into(), Value::Array(rules));
}
