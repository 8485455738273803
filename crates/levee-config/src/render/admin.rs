//! Writes `[admin]` back out (see `walk/admin.rs` for reading it). Only
//! where the token is read from is written, never a secret.

use toml::{Table, Value};

use super::{duration, int, path};
use crate::model::{Admin, TokenSource};

pub(super) fn root(root: &mut Table, admin: &Option<Admin>) {
    let Some(admin) = admin else { return };
    let mut t = Table::new();
    t.insert("address".into(), admin.address.to_string().into());
    match &admin.token {
        Some(TokenSource::File(f)) => {
            t.insert("token_file".into(), path(&f.path));
        }
        Some(TokenSource::Env(e)) => {
            t.insert("token_env".into(), e.name.as_str().into());
        }
        None => {}
    }
    if let Some(f) = &admin.password_file {
        t.insert("password_file".into(), path(&f.path));
    }
    let strings = |list: &[String]| Value::Array(list.iter().map(|s| s.as_str().into()).collect());
    if !admin.hosts.is_empty() {
        t.insert("hosts".into(), strings(&admin.hosts));
    }
    if !admin.origins.is_empty() {
        t.insert("origins".into(), strings(&admin.origins));
    }
    t.insert("session_lifetime".into(), duration(admin.session_lifetime));
    t.insert("max_sessions".into(), int(admin.max_sessions as u64));
    root.insert("admin".into(), Value::Table(t));
}
