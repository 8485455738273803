//! Writes `[dns]` back out (see `walk/dns.rs` for reading it).

use toml::{Table, Value};

use super::{duration, int, path};
use crate::model::Dns;

pub(super) fn root(root: &mut Table, dns: &Option<Dns>) {
    let Some(d) = dns else { return };
    let mut t = Table::new();
    let strings = |list: Vec<String>| Value::Array(list.into_iter().map(Value::String).collect());
    t.insert(
        "listen".into(),
        strings(d.listen.iter().map(ToString::to_string).collect()),
    );
    t.insert("threads".into(), int(d.threads as u64));
    if let Some(f) = &d.tsig_keys {
        t.insert("tsig_keys".into(), path(&f.path));
    }
    if let Some(f) = &d.geoip {
        t.insert("geoip".into(), path(&f.path));
    }
    for (key, n) in [
        ("rrl_rate", d.rrl.rate),
        ("rrl_burst", d.rrl.burst),
        ("rrl_slip", d.rrl.slip),
        ("rrl_prefix_v4", u32::from(d.rrl.prefix_v4)),
        ("rrl_prefix_v6", u32::from(d.rrl.prefix_v6)),
        ("rrl_max_keys", d.rrl.max_keys),
        ("max_udp_size", u32::from(d.max_udp_size)),
        ("max_tcp_connections", d.max_tcp_connections),
        ("probe_rise", d.probe.rise),
        ("probe_fall", d.probe.fall),
    ] {
        t.insert(key.into(), int(u64::from(n)));
    }
    t.insert("cookies".into(), d.cookies.into());
    for (key, v) in [
        ("tcp_idle_timeout", d.tcp_idle_timeout),
        ("probe_interval", d.probe.interval),
        ("probe_timeout", d.probe.timeout),
    ] {
        t.insert(key.into(), duration(v));
    }
    let zones = d
        .zones
        .iter()
        .map(|z| {
            let mut zt = Table::new();
            zt.insert("name".into(), z.name.as_str().into());
            zt.insert("ttl".into(), duration(z.ttl));
            // Absolute, with the final dot: read back as they are.
            zt.insert(
                "ns".into(),
                strings(z.ns.iter().map(|n| format!("{n}.")).collect()),
            );
            if let Some(p) = &z.primary {
                zt.insert("primary".into(), format!("{p}.").into());
            }
            zt.insert("contact".into(), z.contact.as_str().into());
            for (key, v) in [
                ("refresh", z.refresh),
                ("retry", z.retry),
                ("expire", z.expire),
                ("negative_ttl", z.negative_ttl),
            ] {
                zt.insert(key.into(), duration(v));
            }
            if !z.records.is_empty() {
                zt.insert(
                    "records".into(),
                    strings(z.records.iter().map(|r| r.text.clone()).collect()),
                );
            }
            if !z.secondaries.is_empty() {
                zt.insert(
                    "secondaries".into(),
                    strings(
                        z.secondaries
                            .iter()
                            .map(|s| s.address.to_string())
                            .collect(),
                    ),
                );
            }
            if let Some(k) = &z.tsig_key {
                zt.insert("tsig_key".into(), k.as_str().into());
            }
            let fleet: Vec<Value> = z
                .fleet
                .iter()
                .map(|f| {
                    let mut ft = Table::new();
                    ft.insert("name".into(), format!("{}.", f.owner).into());
                    ft.insert("ttl".into(), duration(f.ttl));
                    ft.insert("max_answers".into(), int(u64::from(f.max_answers)));
                    ft.insert("order".into(), f.order.as_str().into());
                    ft.insert("geo".into(), f.geo.into());
                    if let Some(p) = f.probe_port {
                        ft.insert("probe_port".into(), int(u64::from(p)));
                    }
                    Value::Table(ft)
                })
                .collect();
            if !fleet.is_empty() {
                zt.insert("fleet".into(), Value::Array(fleet));
            }
            Value::Table(zt)
        })
        .collect();
    t.insert("zone".into(), Value::Array(zones));
    root.insert("dns".into(), Value::Table(t));
}
