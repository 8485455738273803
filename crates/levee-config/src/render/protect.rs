//! Writes the protection keys back out (see `walk/protect.rs` for reading them).

use toml::{Table, Value};

use super::{duration, int, size};
use crate::model::{AccessList, ListenerProtect, Protect, RouteProtect, Scope};

fn access(t: &mut Table, list: &AccessList) {
    for (key, nets) in [("allow", &list.allow), ("deny", &list.deny)] {
        if !nets.is_empty() {
            let nets = nets.iter().map(|n| n.to_string().into()).collect();
            t.insert(key.into(), Value::Array(nets));
        }
    }
}

pub(super) fn listener(t: &mut Table, p: &ListenerProtect) {
    access(t, &p.access);
    t.insert("max_connections".into(), int(u64::from(p.max_connections)));
    t.insert(
        "max_connections_per_ip".into(),
        int(u64::from(p.max_connections_per_ip)),
    );
    t.insert(
        "max_connections_per_prefix".into(),
        int(u64::from(p.max_connections_per_prefix)),
    );
    t.insert(
        "client_prefix_v4".into(),
        int(u64::from(p.client_prefix_v4)),
    );
    t.insert(
        "client_prefix_v6".into(),
        int(u64::from(p.client_prefix_v6)),
    );
}

pub(super) fn route(t: &mut Table, p: &RouteProtect) {
    access(t, &p.access);
    if let Some(auth) = &p.auth {
        t.insert(
            "auth_basic_file".into(),
            auth.file.to_string_lossy().into_owned().into(),
        );
        t.insert("auth_realm".into(), auth.realm.as_str().into());
    }
    if !p.rate_limits.is_empty() {
        let names = p.rate_limits.iter().map(|n| n.as_str().into()).collect();
        t.insert("rate_limit".into(), Value::Array(names));
    }
}

pub(super) fn root(root: &mut Table, p: &Protect) {
    let mut t = Table::new();
    t.insert("min_progress".into(), size(p.min_progress));
    t.insert("progress_window".into(), duration(p.progress_window));
    t.insert("shed_idle_at".into(), int(u64::from(p.shed_idle_at)));
    root.insert("protect".into(), Value::Table(t));
    let mut rules = Table::new();
    for r in &p.rate_limits {
        let mut t = Table::new();
        let key = r.key.iter().map(|k| k.to_string().into()).collect();
        t.insert("key".into(), Value::Array(key));
        let per = match duration(r.per) {
            Value::String(s) => s,
            _ => String::new(),
        };
        t.insert("rate".into(), format!("{}/{per}", r.requests).into());
        t.insert("burst".into(), int(u64::from(r.burst)));
        t.insert("nodelay".into(), r.nodelay.into());
        t.insert("dry_run".into(), r.dry_run.into());
        t.insert("max_keys".into(), int(u64::from(r.max_keys)));
        t.insert("status".into(), int(u64::from(r.status)));
        if r.scope == Scope::Fleet {
            t.insert("scope".into(), "fleet".into());
        }
        rules.insert(r.name.clone(), Value::Table(t));
    }
    if !rules.is_empty() {
        root.insert("rate_limit".into(), Value::Table(rules));
    }
}
