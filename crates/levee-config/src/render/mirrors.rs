//! Writes `[mirrors.NAME]` back out (see `walk/mirrors.rs` for reading it).

use toml::{Table, Value};

use super::{duration, int, path, size};
use crate::model::{Mirror, MirrorSet};

fn strings(t: &mut Table, key: &str, list: impl Iterator<Item = String>) {
    let values: Vec<Value> = list.map(Value::String).collect();
    if !values.is_empty() {
        t.insert(key.into(), Value::Array(values));
    }
}

pub(super) fn root(root: &mut Table, sets: &[MirrorSet]) {
    if sets.is_empty() {
        return;
    }
    let mut all = Table::new();
    for s in sets {
        let mut t = Table::new();
        t.insert("root".into(), path(&s.root));
        t.insert("state_dir".into(), path(&s.state_dir));
        t.insert("min_size".into(), size(s.min_size));
        strings(&mut t, "exclude", s.exclude.iter().cloned());
        for (key, d) in [
            ("scan_interval", s.scan_interval),
            ("probe_interval", s.probe_interval),
            ("probe_timeout", s.probe_timeout),
            ("spot_check_interval", s.spot_check_interval),
            ("mtime_tolerance", s.mtime_tolerance),
        ] {
            t.insert(key.into(), duration(d));
        }
        for (key, n) in [
            ("probe_jitter", s.probe_jitter),
            ("probe_fall", s.probe_fall),
            ("probe_rise", s.probe_rise),
            ("verify_sample", s.verify_sample),
            ("max_strikes", s.max_strikes),
            ("top_files", s.top_files),
        ] {
            t.insert(key.into(), int(u64::from(n)));
        }
        if let Some(p) = &s.geoip {
            t.insert("geoip".into(), path(p));
        }
        if let Some(p) = &s.geoip_asn {
            t.insert("geoip_asn".into(), path(p));
        }
        t.insert("hash_rate".into(), size(s.hash_rate));
        t.insert("piece_size".into(), size(s.piece_size));
        let mirrors: Vec<Value> = s.mirrors.iter().map(|m| Value::Table(mirror(m))).collect();
        if !mirrors.is_empty() {
            t.insert("mirror".into(), Value::Array(mirrors));
        }
        all.insert(s.name.clone(), Value::Table(t));
    }
    root.insert("mirrors".into(), Value::Table(all));
}

/// One mirror as a table: the file's `[[mirrors.NAME.mirror]]` entries,
/// and what `levee ctl` and the control API show.
pub fn mirror(m: &Mirror) -> Table {
    let mut t = Table::new();
    t.insert("name".into(), m.name.as_str().into());
    for (key, v) in [("http", &m.http), ("https", &m.https), ("rsync", &m.rsync)] {
        if let Some(v) = v {
            t.insert(key.into(), v.as_str().into());
        }
    }
    t.insert("weight".into(), int(u64::from(m.weight)));
    if let Some(c) = &m.country {
        t.insert("country".into(), c.as_str().into());
    }
    if let Some(c) = &m.continent {
        t.insert("continent".into(), c.as_str().into());
    }
    if !m.asn.is_empty() {
        let asn = m.asn.iter().map(|a| int(u64::from(*a))).collect();
        t.insert("asn".into(), Value::Array(asn));
    }
    if let Some((lat, long)) = m.location {
        t.insert("latitude".into(), Value::Float(lat));
        t.insert("longitude".into(), Value::Float(long));
    }
    strings(
        &mut t,
        "networks",
        m.networks.iter().map(ToString::to_string),
    );
    strings(
        &mut t,
        "allowed_countries",
        m.allowed_countries.iter().cloned(),
    );
    t.insert("max_bandwidth".into(), size(m.max_bandwidth));
    t.insert("max_redirects".into(), int(u64::from(m.max_redirects)));
    t.insert("enabled".into(), m.enabled.into());
    if let Some(p) = &m.probe_path {
        t.insert("probe_path".into(), p.as_str().into());
    }
    t
}
