//! Writes `[acme]` back out (see `walk/acme.rs` for reading it). Secrets
//! are written as where they come from, never as their value.

use toml::{Table, Value};

use super::{duration, path};
use crate::model::{Acme, SecretSource};

pub(super) fn root(root: &mut Table, acme: &Option<Acme>) {
    let Some(a) = acme else { return };
    let mut t = Table::new();
    t.insert("directory".into(), a.directory.as_str().into());
    if !a.contact.is_empty() {
        let list = a.contact.iter().map(|c| c.as_str().into()).collect();
        t.insert("contact".into(), Value::Array(list));
    }
    if let Some(e) = &a.eab {
        t.insert("eab_kid".into(), e.kid.as_str().into());
        t.insert("eab_hmac_file".into(), path(&e.hmac_file.path));
    }
    t.insert("storage".into(), path(&a.storage));
    if let Some(r) = &a.ca_root {
        t.insert("ca_root".into(), path(&r.path));
    }
    t.insert("key_type".into(), a.key_type.as_str().into());
    if let Some(d) = a.renew_before {
        t.insert("renew_before".into(), duration(d));
    }
    if !a.challenges.is_empty() {
        let list = a.challenges.iter().map(|c| c.as_str().into()).collect();
        t.insert("challenges".into(), Value::Array(list));
    }
    if !a.names.is_empty() {
        let list = a.names.iter().map(|n| n.as_str().into()).collect();
        t.insert("names".into(), Value::Array(list));
    }
    if let Some(d) = &a.dns {
        let mut dns = Table::new();
        dns.insert("server".into(), d.server.to_string().into());
        if let Some(z) = &d.zone {
            dns.insert("zone".into(), z.as_str().into());
        }
        if let Some(k) = &d.tsig_key {
            dns.insert("tsig_key".into(), k.as_str().into());
        }
        if let Some(f) = &d.tsig_secret_file {
            dns.insert("tsig_secret_file".into(), path(&f.path));
        }
        dns.insert("ttl".into(), Value::Integer(i64::from(d.ttl)));
        t.insert("dns".into(), Value::Table(dns));
    }
    if let Some(o) = &a.on_demand {
        let mut od = Table::new();
        if let Some(ask) = &o.ask {
            od.insert("ask".into(), ask.as_str().into());
        }
        od.insert("ask_timeout".into(), duration(o.ask_timeout));
        if !o.allow.is_empty() {
            let list = o.allow.iter().map(|n| n.as_str().into()).collect();
            od.insert("allow".into(), Value::Array(list));
        }
        od.insert("per_name".into(), duration(o.per_name));
        od.insert(
            "max_per_hour".into(),
            Value::Integer(i64::from(o.max_per_hour)),
        );
        t.insert("on_demand".into(), Value::Table(od));
    }
    match &a.fleet_key {
        Some(SecretSource::File(f)) => {
            t.insert("fleet_key_file".into(), path(&f.path));
        }
        Some(SecretSource::Env(v)) => {
            t.insert("fleet_key_env".into(), v.as_str().into());
        }
        None => {}
    }
    t.insert(
        "max_orders_per_hour".into(),
        Value::Integer(i64::from(a.max_orders_per_hour)),
    );
    t.insert(
        "max_orders_per_name".into(),
        Value::Integer(i64::from(a.max_orders_per_name)),
    );
    root.insert("acme".into(), Value::Table(t));
}
