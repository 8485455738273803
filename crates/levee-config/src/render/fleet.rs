//! Writes `[fleet]` back out (see `walk/fleet.rs` for reading it). The
//! credentials are written as where they come from, never as their value.

use toml::{Table, Value};

use super::{duration, path};
use crate::model::{CredentialSource, Fleet, RedisTarget};

pub(super) fn root(root: &mut Table, fleet: &Option<Fleet>) {
    let Some(f) = fleet else { return };
    let mut t = Table::new();
    t.insert("name".into(), f.name.as_str().into());
    if let Some(i) = &f.instance {
        t.insert("instance".into(), i.as_str().into());
    }
    let list = |addrs: &[crate::model::RedisAddr]| {
        Value::Array(addrs.iter().map(|a| a.to_string().into()).collect())
    };
    match &f.redis {
        RedisTarget::Single(a) => {
            t.insert("redis".into(), a.to_string().into());
        }
        RedisTarget::Sentinel { master, sentinels } => {
            t.insert("sentinel".into(), list(sentinels));
            t.insert("master".into(), master.as_str().into());
        }
        RedisTarget::Cluster(seeds) => {
            t.insert("cluster".into(), list(seeds));
        }
    }
    if let Some(ca) = &f.ca_file {
        t.insert("ca_file".into(), path(&ca.path));
    }
    match f.credentials.as_ref().map(|c| &c.source) {
        Some(CredentialSource::File(p)) => {
            t.insert("credentials_file".into(), path(p));
        }
        Some(CredentialSource::Env(var)) => {
            t.insert("credentials_env".into(), var.as_str().into());
        }
        None => {}
    }
    t.insert("timeout".into(), duration(f.timeout));
    t.insert("heartbeat".into(), duration(f.heartbeat));
    t.insert("heartbeat_ttl".into(), duration(f.heartbeat_ttl));
    if !f.public_addresses.is_empty() {
        let list = f.public_addresses.iter().map(|a| a.to_string().into());
        t.insert("public_addresses".into(), Value::Array(list.collect()));
    }
    t.insert("weight".into(), super::int(u64::from(f.weight)));
    root.insert("fleet".into(), Value::Table(t));
}
