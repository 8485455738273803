//! Writes `[listener.tls]` back out (see `walk/tls.rs` for reading it).

use toml::{Table, Value};

use super::{duration, path};
use crate::model::{ListenerTls, UpstreamTls};

pub(super) fn listener(t: &mut Table, tls: &Option<ListenerTls>) {
    let Some(tls) = tls else { return };
    let short = ListenerTls {
        certs: Vec::new(),
        client_ca: None,
        alpn: vec!["http/1.1".into()],
        handshake_timeout: crate::model::DEFAULT_HANDSHAKE_TIMEOUT,
        hsts: None,
        auto: true,
    };
    if *tls == short {
        t.insert("tls".into(), "auto".into());
        return;
    }
    let mut out = Table::new();
    if tls.auto {
        out.insert("auto".into(), Value::Boolean(true));
    }
    let certs = tls
        .certs
        .iter()
        .map(|c| {
            let mut e = Table::new();
            e.insert("cert".into(), path(&c.cert.path));
            e.insert("key".into(), path(&c.key.path));
            if !c.names.is_empty() {
                let names = c.names.iter().map(|n| n.as_str().into()).collect();
                e.insert("names".into(), Value::Array(names));
            }
            if let Some(o) = &c.ocsp {
                e.insert("ocsp".into(), path(&o.path));
            }
            Value::Table(e)
        })
        .collect();
    out.insert("certs".into(), Value::Array(certs));
    if let Some(ca) = &tls.client_ca {
        out.insert("client_ca".into(), path(&ca.path));
    }
    if !tls.alpn.is_empty() {
        let alpn = tls.alpn.iter().map(|p| p.as_str().into()).collect();
        out.insert("alpn".into(), Value::Array(alpn));
    }
    out.insert("handshake_timeout".into(), duration(tls.handshake_timeout));
    if let Some(h) = tls.hsts {
        out.insert("hsts".into(), duration(h));
    }
    t.insert("tls".into(), Value::Table(out));
}

pub(super) fn upstream(t: &mut Table, tls: &Option<UpstreamTls>) {
    let Some(tls) = tls else { return };
    let mut out = Table::new();
    for (key, file) in [
        ("ca", &tls.ca),
        ("client_cert", &tls.client_cert),
        ("client_key", &tls.client_key),
    ] {
        if let Some(f) = file {
            out.insert(key.into(), path(&f.path));
        }
    }
    if let Some(name) = &tls.server_name {
        out.insert("server_name".into(), name.as_str().into());
    }
    t.insert("tls".into(), Value::Table(out));
}
