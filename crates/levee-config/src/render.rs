//! Writes a [`Config`] back out as a config file: the inverse of
//! [`crate::parse`], used by [`crate::validate`] and handy for showing the
//! effective configuration.

use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

mod acme;
mod admin;
mod cache;
mod compress;
mod dns;
mod fleet;
mod mail;
pub(crate) mod mirrors;
mod protect;
mod redact;
mod rewrite;
mod shape;
mod static_opts;
mod tls;

use crate::model::{
    AccessLogFormat, AccessLogTarget, Action, Balance, CheckKind, Config, ErrorLogTarget, HashKey,
    HostMatch,
};

/// The config as TOML text, with every key written out (defaults included).
/// `parse(&to_toml(c), ..)` gives back `c` for any config that passes
/// [`crate::validate`].
pub fn to_toml(config: &Config) -> String {
    toml::to_string(&table(config)).unwrap_or_default()
}

/// [`to_toml`] with the secrets a file may hold replaced by
/// [`redact::REDACTED`]: what any view of the config shows (`levee config
/// dump`, the dashboard's config view). Secrets kept in files or variables
/// (tokens, credentials) are shown by where they come from, as always.
pub fn to_toml_redacted(config: &Config) -> String {
    let mut root = table(config);
    redact::secrets(&mut root);
    toml::to_string(&root).unwrap_or_default()
}

/// What `levee config dump` prints (like `nginx -T`): the effective
/// config, every default filled in, secrets redacted
/// ([`to_toml_redacted`]).
pub fn dump(config: &Config) -> String {
    let source = config.source.as_ref().map_or_else(
        || crate::validate::BUILTIN_SOURCE.to_owned(),
        |p| p.display().to_string(),
    );
    let text = to_toml_redacted(config);
    format!("# levee config dump of {source}: defaults filled in, secrets redacted\n{text}")
}

fn table(config: &Config) -> Table {
    let mut root = Table::new();
    root.insert("workers".into(), int(config.workers as u64));
    if let Some(pid) = &config.pid_file {
        root.insert("pid_file".into(), path(pid));
    }
    if let Some(user) = &config.user {
        root.insert("user".into(), user.as_str().into());
    }
    if let Some(group) = &config.group {
        root.insert("group".into(), group.as_str().into());
    }
    if let Some(socket) = &config.control_socket {
        root.insert("control_socket".into(), path(socket));
    }

    let mut log = Table::new();
    let access = match &config.log.access {
        AccessLogTarget::Off => "off".into(),
        AccessLogTarget::Stdout => "stdout".into(),
        AccessLogTarget::Stderr => "stderr".into(),
        AccessLogTarget::File(p) => p.to_string_lossy().into_owned(),
    };
    log.insert("access".into(), Value::String(access));
    let format = match config.log.format {
        AccessLogFormat::Combined => "combined",
        AccessLogFormat::Json => "json",
    };
    log.insert("format".into(), format.into());
    log.insert("level".into(), config.log.level.as_str().into());
    let error = match &config.log.error {
        ErrorLogTarget::Stderr => "stderr".into(),
        ErrorLogTarget::Stdout => "stdout".into(),
        ErrorLogTarget::File(p) => p.to_string_lossy().into_owned(),
    };
    log.insert("error".into(), Value::String(error));
    log.insert(
        "error_format".into(),
        config.log.error_format.as_str().into(),
    );
    root.insert("log".into(), Value::Table(log));

    let l = &config.limits;
    let mut limits = Table::new();
    limits.insert("max_request_line".into(), size(l.max_request_line as u64));
    limits.insert("max_header_bytes".into(), size(l.max_header_bytes as u64));
    limits.insert("max_headers".into(), int(l.max_headers as u64));
    limits.insert("max_body".into(), size(l.max_body));
    limits.insert(
        "max_requests_per_connection".into(),
        int(l.max_requests_per_connection),
    );
    limits.insert("max_rewrites".into(), int(u64::from(l.max_rewrites)));
    root.insert("limits".into(), Value::Table(limits));

    let h = &config.http2;
    let mut http2 = Table::new();
    for (name, n) in [
        ("max_concurrent_streams", h.max_concurrent_streams),
        ("max_pending_resets", h.max_pending_resets),
        ("max_error_resets", h.max_error_resets),
    ] {
        http2.insert(name.into(), int(u64::from(n)));
    }
    for (name, n) in [
        ("max_header_list_size", h.max_header_list_size),
        ("initial_stream_window", h.initial_stream_window),
        ("initial_connection_window", h.initial_connection_window),
        ("max_frame_size", h.max_frame_size),
    ] {
        http2.insert(name.into(), size(u64::from(n)));
    }
    root.insert("http2".into(), Value::Table(http2));
    compress::site(&mut root, &config.compress);
    shape::http(&mut root, &config.http);

    let t = &config.timeouts;
    let mut timeouts = Table::new();
    for (name, d) in [
        ("request_head", t.request_head),
        ("keepalive", t.keepalive),
        ("client_body", t.client_body),
        ("client_send", t.client_send),
        ("upstream_connect", t.upstream_connect),
        ("upstream_read", t.upstream_read),
        ("upstream_write", t.upstream_write),
        ("grace", t.grace),
        ("tunnel_idle", t.tunnel_idle),
    ] {
        timeouts.insert(name.into(), duration(d));
    }
    root.insert("timeouts".into(), Value::Table(timeouts));

    let listeners = config
        .listeners
        .iter()
        .map(|l| {
            let mut t = Table::new();
            t.insert("name".into(), l.name.as_str().into());
            t.insert("address".into(), l.address.to_string().into());
            t.insert("backlog".into(), int(u64::from(l.backlog)));
            protect::listener(&mut t, &l.protect);
            tls::listener(&mut t, &l.tls);
            if l.h2_only {
                t.insert("http2".into(), "only".into());
            } else if l.h2c {
                t.insert("http2".into(), "prior-knowledge".into());
            }
            if !l.proxy_protocol.is_empty() {
                let nets = l.proxy_protocol.iter().map(|n| n.to_string().into());
                t.insert("proxy_protocol".into(), Value::Array(nets.collect()));
            }
            if !l.trusted.networks.is_empty() {
                let nets = l.trusted.networks.iter().map(|n| n.to_string().into());
                t.insert("trusted_proxies".into(), Value::Array(nets.collect()));
                let header = l.trusted.header.as_str();
                t.insert("forwarded_header".into(), header.into());
            }
            if let Some(m) = &l.mail {
                mail::listener(&mut t, m);
            }
            Value::Table(t)
        })
        .collect();
    root.insert("listener".into(), Value::Array(listeners));

    let routes = config
        .routes
        .iter()
        .map(|r| route(r, &config.compress))
        .collect();
    root.insert("route".into(), Value::Array(routes));

    let mut upstreams = Table::new();
    for u in &config.upstreams {
        let mut t = Table::new();
        let servers = u
            .servers
            .iter()
            .map(|s| {
                let mut st = Table::new();
                st.insert("address".into(), s.address.as_str().into());
                st.insert("weight".into(), int(u64::from(s.weight)));
                if s.backup {
                    st.insert("backup".into(), true.into());
                }
                Value::Table(st)
            })
            .collect();
        t.insert("servers".into(), Value::Array(servers));
        t.insert("keepalive".into(), int(u.keepalive as u64));
        t.insert("keepalive_timeout".into(), duration(u.keepalive_timeout));
        upstream_policy(&mut t, u);
        tls::upstream(&mut t, &u.tls);
        if let Some(v) = u.proxy_protocol {
            t.insert("proxy_protocol".into(), format!("v{v}").into());
        }
        if u.protocol.is_http2() {
            t.insert("protocol".into(), u.protocol.as_str().into());
        }
        upstreams.insert(u.name.clone(), Value::Table(t));
    }
    root.insert("upstream".into(), Value::Table(upstreams));
    admin::root(&mut root, &config.admin);

    protect::root(&mut root, &config.protect);
    if let Some(r) = &config.resolver {
        let mut t = Table::new();
        let servers = r.servers.iter().map(|a| a.to_string().into()).collect();
        t.insert("servers".into(), Value::Array(servers));
        if let Some(valid) = r.valid {
            t.insert("valid".into(), duration(valid));
        }
        t.insert("timeout".into(), duration(r.timeout));
        root.insert("resolver".into(), Value::Table(t));
    }
    cache::root(&mut root, &config.cache);
    fleet::root(&mut root, &config.fleet);
    acme::root(&mut root, &config.acme);
    mirrors::root(&mut root, &config.mirrors);
    dns::root(&mut root, &config.dns);
    root
}

/// Balancing, health and retry keys of an upstream.
fn upstream_policy(t: &mut Table, u: &crate::model::Upstream) {
    let balance = match &u.balance {
        Balance::RoundRobin => "round_robin",
        Balance::LeastConn => "least_conn",
        Balance::Latency => "latency",
        Balance::Hash(key) => {
            let key = match key {
                HashKey::ClientIp => "client_ip".to_owned(),
                HashKey::Uri => "uri".to_owned(),
                HashKey::Header(h) => format!("header:{h}"),
                HashKey::Cookie(c) => format!("cookie:{c}"),
            };
            t.insert("hash_key".into(), key.into());
            "hash"
        }
        Balance::Sticky { cookie, attributes } => {
            t.insert("sticky_cookie".into(), cookie.as_str().into());
            shape::sticky_attributes(t, attributes);
            "sticky"
        }
    };
    t.insert("balance".into(), balance.into());
    t.insert("max_fails".into(), int(u64::from(u.passive.max_fails)));
    t.insert("fail_timeout".into(), duration(u.passive.fail_timeout));
    t.insert("max_ejection".into(), duration(u.passive.max_ejection));
    let eject_on = u
        .passive
        .on_status
        .iter()
        .map(|s| int(u64::from(s)))
        .collect();
    t.insert("eject_on_status".into(), Value::Array(eject_on));
    t.insert(
        "max_ejected_percent".into(),
        int(u64::from(u.passive.max_ejected_percent)),
    );
    t.insert("slow_start".into(), duration(u.slow_start));
    t.insert("retries".into(), int(u64::from(u.retry.retries)));
    let statuses = u
        .retry
        .on_status
        .iter()
        .map(|s| int(u64::from(*s)))
        .collect();
    t.insert("retry_on_status".into(), Value::Array(statuses));
    t.insert(
        "retry_budget".into(),
        int(u64::from(u.retry.budget_percent)),
    );
    t.insert("resolve_interval".into(), duration(u.resolve_interval));
    if let Some(hc) = &u.health_check {
        let mut c = Table::new();
        c.insert("interval".into(), duration(hc.interval));
        c.insert("timeout".into(), duration(hc.timeout));
        c.insert("rise".into(), int(u64::from(hc.rise)));
        c.insert("fall".into(), int(u64::from(hc.fall)));
        c.insert("jitter".into(), int(u64::from(hc.jitter_percent)));
        match &hc.kind {
            CheckKind::Tcp => {
                c.insert("type".into(), "tcp".into());
            }
            CheckKind::Http(h) => {
                c.insert("type".into(), "http".into());
                c.insert("method".into(), h.method.as_str().into());
                c.insert("path".into(), h.path.as_str().into());
                c.insert(
                    "status".into(),
                    format!("{}-{}", h.status.0, h.status.1).into(),
                );
                if let Some(body) = &h.body {
                    c.insert("body".into(), body.as_str().into());
                }
            }
        }
        t.insert("health_check".into(), Value::Table(c));
    }
}

fn route(r: &crate::model::Route, site: &crate::model::CompressConfig) -> Value {
    let mut t = Table::new();
    if !r.listeners.is_empty() {
        let names = r.listeners.iter().map(|n| n.as_str().into()).collect();
        t.insert("listener".into(), Value::Array(names));
    }
    if !r.hosts.is_empty() {
        let hosts = r
            .hosts
            .iter()
            .map(|h| match h {
                HostMatch::Exact(host) => host.as_str().into(),
                HostMatch::Wildcard(suffix) => format!("*{suffix}").into(),
            })
            .collect();
        t.insert("host".into(), Value::Array(hosts));
    }
    t.insert("path".into(), r.path.as_str().into());
    protect::route(&mut t, &r.protect);
    compress::route(&mut t, r.compress.as_ref(), site);
    rewrite::route(&mut t, &r.rewrite);
    shape::route(&mut t, &r.shape);
    match &r.action {
        Action::Proxy(p) => {
            t.insert("proxy".into(), p.upstream.as_str().into());
            t.insert("preserve_host".into(), p.preserve_host.into());
            t.insert("forward_path".into(), p.forward_path.as_str().into());
            cache::route(&mut t, p.cache.as_ref());
        }
        Action::Static(s) => {
            t.insert("static".into(), path(&s.root));
            let index = s.index.iter().map(|i| i.as_str().into()).collect();
            t.insert("index".into(), Value::Array(index));
            t.insert("follow_symlinks".into(), s.follow_symlinks.into());
            static_opts::route(&mut t, &s.options);
        }
        Action::Redirect(r) => {
            t.insert("redirect".into(), r.to.as_str().into());
            t.insert("status".into(), int(u64::from(r.status)));
        }
        Action::Mirrors(m) => {
            t.insert("mirrors".into(), m.set.as_str().into());
        }
        Action::Respond(r) => {
            t.insert("respond".into(), r.body.as_str().into());
            t.insert("status".into(), int(u64::from(r.status)));
            t.insert("content_type".into(), r.content_type.as_str().into());
        }
    }
    Value::Table(t)
}

/// An integer, saturating where TOML's i64 ends; [`crate::validate`] then
/// sees the value change.
pub(crate) fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Sizes beyond i64 are written as strings, which the size parser reads.
pub(crate) fn size(n: u64) -> Value {
    match i64::try_from(n) {
        Ok(n) => Value::Integer(n),
        Err(_) => Value::String(n.to_string()),
    }
}

/// The largest whole unit: `"90s"`, `"5m"`, `"1500ms"`.
pub(crate) fn duration(d: Duration) -> Value {
    let ms = d.as_millis();
    let text = if ms == 0 {
        "0s".to_owned()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    };
    Value::String(text)
}

pub(crate) fn path(p: &Path) -> Value {
    Value::String(p.to_string_lossy().into_owned())
}
