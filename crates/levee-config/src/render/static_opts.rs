//! Writes a static route's options back out (see `walk/static_opts.rs` for reading them).

use toml::{Table, Value};

use super::duration;
use crate::model::StaticOptions;

pub(super) fn route(t: &mut Table, o: &StaticOptions) {
    t.insert("dotfiles".into(), o.dotfiles.as_str().into());
    let allow = o.dotfiles_allow.iter().map(|p| p.as_str().into()).collect();
    t.insert("dotfiles_allow".into(), Value::Array(allow));
    if let Some(d) = o.expires {
        t.insert("expires".into(), duration(d));
    }
    if !o.expires_by_extension.is_empty() {
        let mut by = Table::new();
        for (ext, d) in &o.expires_by_extension {
            by.insert(ext.clone(), duration(*d));
        }
        t.insert("expires_by_extension".into(), Value::Table(by));
    }
    t.insert("listing".into(), o.listing.into());
    if !o.try_files.is_empty() {
        let list = o.try_files.iter().map(|c| c.as_str().into()).collect();
        t.insert("try_files".into(), Value::Array(list));
    }
}
