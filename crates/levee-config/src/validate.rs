//! Checks that span sections of the file (duplicate listeners, routes naming
//! listeners and upstreams) and assembles the validated [`Config`].
//!
//! Also [`validate`], which holds a `Config` built in code to the same rules
//! by writing it out as TOML and reading it back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ConfigErrors, LineIndex, Sink};
use crate::model::{Config, HostMatch, Listener, Route};
use crate::walk::{Draft, DraftRoute, Mention};

/// The `file` of errors about a `Config` that did not come from a file.
pub const BUILTIN_SOURCE: &str = "<built-in>";

/// Runs the cross-checks and, when the whole file is valid, builds the model.
/// Returns `None` only with at least one error in the sink.
pub(crate) fn assemble(sink: &mut Sink<'_>, draft: Draft, source: &Path) -> Option<Config> {
    check_listeners(sink, &draft);
    check_routes(sink, &draft);
    check_unreachable(sink, &draft);
    for r in &draft.routes {
        crate::walk::check_rate_limit_refs(sink, &draft.rate_limits, &r.rate_limits);
    }
    if draft.fleet.is_none() {
        for m in draft
            .rate_limits
            .iter()
            .filter_map(|r| r.fleet_scope.as_ref())
        {
            sink.error(
                m.span.clone(),
                &m.key,
                "`scope = \"fleet\"` needs a [fleet] section (docs/fleet.md)",
            );
        }
        if let Some(m) = &draft.cache_shared {
            sink.error(
                m.span.clone(),
                &m.key,
                "the shared cache tier needs a [fleet] section (docs/cache.md, \"Tiers\")",
            );
        }
    }
    crate::walk::check_acme(sink, &draft);
    if draft.fleet.is_none()
        && let Some(dns) = &draft.dns
    {
        for m in &dns.fleet_records {
            sink.error(
                m.span.clone(),
                &m.key,
                "a fleet record answers with the fleet's members: it needs a [fleet] section (docs/fleet.md)",
            );
        }
    }
    if sink.has_errors() {
        return None;
    }

    let any_auto = draft.listeners.iter().any(|l| l.tls_auto.is_some());
    let mut listeners = Vec::with_capacity(draft.listeners.len());
    for (i, l) in draft.listeners.into_iter().enumerate() {
        let (Some(name), Some((address, _))) = (l.name, l.address) else {
            // The walker reports why a listener has no name or address.
            sink.error(
                draft.root_span.clone(),
                &format!("listener[{i}]"),
                "incomplete listener",
            );
            return None;
        };
        listeners.push(Listener {
            name: name.text,
            address,
            backlog: l.backlog,
            protect: l.protect,
            tls: l.tls,
            proxy_protocol: l.proxy_protocol,
            trusted: l.trusted,
            h2c: l.h2c,
            h2_only: l.h2_only,
            mail: l.mail,
        });
    }
    let mut routes = Vec::with_capacity(draft.routes.len());
    for (i, r) in draft.routes.into_iter().enumerate() {
        let Some(action) = r.action else {
            sink.error(
                draft.root_span.clone(),
                &format!("route[{i}]"),
                "incomplete route",
            );
            return None;
        };
        routes.push(Route {
            listeners: r.listeners.into_iter().map(|m| m.text).collect(),
            hosts: r.hosts,
            path: r.path,
            action,
            protect: r.protect,
            compress: r.compress,
            rewrite: r.rewrite,
            shape: r.shape,
        });
    }
    let upstreams = draft.upstreams.into_iter().map(|u| u.upstream).collect();
    let mut protect = draft.protect;
    protect.rate_limits = draft.rate_limits.into_iter().map(|r| r.rule).collect();
    Some(Config {
        source: Some(source.to_path_buf()),
        workers: draft.workers,
        pid_file: draft.pid_file,
        user: draft.user,
        group: draft.group,
        control_socket: draft.control_socket,
        log: draft.log,
        limits: draft.limits,
        timeouts: draft.timeouts,
        listeners,
        routes,
        upstreams,
        admin: draft.admin,
        protect,
        resolver: draft.resolver,
        cache: draft.cache,
        http2: draft.http2,
        compress: draft.compress,
        http: draft.http,
        fleet: draft.fleet,
        mirrors: draft.mirrors.into_iter().map(|m| m.set).collect(),
        acme: match draft.acme {
            Some(a) => Some(a.acme),
            // `tls = "auto"` alone: Let's Encrypt with the defaults.
            None if any_auto => Some(crate::model::Acme::defaults()),
            None => None,
        },
        dns: draft.dns.map(|d| d.dns),
    })
}

fn check_listeners(sink: &mut Sink<'_>, draft: &Draft) {
    if draft.listeners.is_empty() {
        sink.error(
            draft.root_span.clone(),
            "listener",
            "at least one [[listener]] with an `address` is required",
        );
    }
    let mut names: HashMap<&str, &Mention> = HashMap::new();
    let mut addresses: HashMap<std::net::SocketAddr, &Mention> = HashMap::new();
    for l in &draft.listeners {
        let mut address_taken = false;
        if let Some((address, at)) = &l.address {
            if let Some(first) = addresses.get(address) {
                address_taken = true;
                sink.error(
                    at.span.clone(),
                    &at.key,
                    format!(
                        "duplicate listener address {address}: {} already listens there",
                        first.key.trim_end_matches(".address"),
                    ),
                );
            } else {
                if let Some(first) = addresses
                    .iter()
                    .find(|(a, _)| addresses_clash(**a, *address))
                {
                    address_taken = true;
                    sink.error(
                        at.span.clone(),
                        &at.key,
                        format!(
                            "listener address {address} overlaps {} ({}) on the same port: \
                             the OS lets only one of them bind; keep one",
                            first.1.key.trim_end_matches(".address"),
                            first.0,
                        ),
                    );
                }
                addresses.insert(*address, at);
            }
        }
        if let Some(name) = &l.name {
            match names.get(name.text.as_str()) {
                // A defaulted name clashing because the address does is one
                // mistake; report it once.
                Some(_) if l.name_defaulted && address_taken => {}
                Some(first) => {
                    let key = if l.name_defaulted {
                        format!("{}.name", name.key.trim_end_matches(".address"))
                    } else {
                        name.key.clone()
                    };
                    let defaulted = if l.name_defaulted {
                        " (the default name is the address)"
                    } else {
                        ""
                    };
                    sink.error(
                        name.span.clone(),
                        &key,
                        format!(
                            "duplicate listener name `{}`{defaulted}: {} has it too",
                            name.text,
                            first
                                .key
                                .trim_end_matches(".address")
                                .trim_end_matches(".name"),
                        ),
                    );
                }
                None => {
                    names.insert(&name.text, name);
                }
            }
        }
    }
}

/// Whether two listening addresses cannot both be bound by levee: the
/// same address, or the same port with one of them the wildcard of the
/// other's family. (IPv6 listeners are bound IPv6-only, so `[::]` leaves
/// IPv4 addresses free.) Port 0 (any free port) clashes with nothing.
pub fn addresses_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// A route that can never be chosen: for every listener and host it
/// applies to, an earlier route has the same path, and ties go to the
/// earlier route (docs/config.md, "Route selection"). Two identical routes
/// are the common case; a mistake either way (a copy left behind, or a
/// path meant to differ).
fn check_unreachable(sink: &mut Sink<'_>, draft: &Draft) {
    let every: Vec<&str> = draft
        .listeners
        .iter()
        .filter_map(|l| l.name.as_ref().map(|m| m.text.as_str()))
        .collect();
    let applies = |r: &DraftRoute, listener: &str| {
        r.listeners.is_empty() || r.listeners.iter().any(|m| m.text == listener)
    };
    for (j, route) in draft.routes.iter().enumerate() {
        // A route already reported as broken is not reported again.
        if route.action.is_none() {
            continue;
        }
        let listeners: Vec<&str> = if route.listeners.is_empty() {
            every.clone()
        } else {
            route.listeners.iter().map(|m| m.text.as_str()).collect()
        };
        let hosts: Vec<Option<&HostMatch>> = if route.hosts.is_empty() {
            vec![None]
        } else {
            route.hosts.iter().map(Some).collect()
        };
        let mut shadow = None;
        let hidden = !listeners.is_empty()
            && listeners.iter().all(|l| {
                hosts.iter().all(|h| {
                    let first = draft.routes.get(..j).unwrap_or_default().iter().find(|e| {
                        e.path == route.path
                            && e.action.is_some()
                            && applies(e, l)
                            && match h {
                                None => e.hosts.is_empty(),
                                Some(h) => e.hosts.contains(h),
                            }
                    });
                    shadow = shadow.or(first);
                    first.is_some()
                })
            });
        if let (true, Some(first)) = (hidden, shadow) {
            let (line, _) = sink.position(first.at.span.start);
            let first_key = first.at.key.trim_end_matches(".path");
            sink.error(
                route.at.span.clone(),
                &route.at.key,
                format!(
                    "this route is never used: {first_key} (line {line}) has the same path `{}` \
                     for the same listeners and hosts, and comes first; remove one, or change \
                     its path, host or listener",
                    route.path
                ),
            );
        }
    }
}

fn check_routes(sink: &mut Sink<'_>, draft: &Draft) {
    let mut listener_names: Vec<&str> = Vec::new();
    for name in draft.listeners.iter().filter_map(|l| l.name.as_ref()) {
        if !listener_names.contains(&name.text.as_str()) {
            listener_names.push(&name.text);
        }
    }
    let upstream_names: Vec<&str> = draft
        .upstreams
        .iter()
        .map(|u| u.name.text.as_str())
        .collect();
    let mirror_names: Vec<&str> = draft.mirrors.iter().map(|m| m.name.text.as_str()).collect();
    for route in &draft.routes {
        for m in &route.listeners {
            if !listener_names.contains(&m.text.as_str()) {
                sink.error(
                    m.span.clone(),
                    &m.key,
                    format!(
                        "unknown listener `{}`; {}",
                        m.text,
                        known("listeners", &listener_names)
                    ),
                );
            }
        }
        if let Some(m) = &route.mirror_set
            && !mirror_names.contains(&m.text.as_str())
        {
            sink.error(
                m.span.clone(),
                &m.key,
                format!(
                    "unknown mirror set `{}`; {}",
                    m.text,
                    known("mirror sets", &mirror_names)
                ),
            );
        }
        if let Some(m) = &route.upstream
            && !upstream_names.contains(&m.text.as_str())
        {
            sink.error(
                m.span.clone(),
                &m.key,
                format!(
                    "unknown upstream `{}`; {}",
                    m.text,
                    known("upstreams", &upstream_names)
                ),
            );
        }
    }
}

fn known(what: &str, names: &[&str]) -> String {
    if names.is_empty() {
        format!("no {what} are defined")
    } else {
        format!("defined {what}: {}", names.join(", "))
    }
}

/// Holds a `Config` built in code (such as [`crate::builtin_proxy`]) to the
/// rules a config file is held to.
///
/// The config is written out with [`crate::to_toml`] and parsed back; any
/// error is reported with its key path and no position. A value the file
/// format cannot express (an upper-case host, a sub-millisecond timeout) is an
/// error too, since it would not survive being written to a file.
pub fn validate(config: &Config) -> Result<(), ConfigErrors> {
    let file = config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(BUILTIN_SOURCE));
    let text = crate::to_toml(config);
    let unplaced = |key: &str, message: String| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        key: key.to_owned(),
        message,
    };
    let parsed = match crate::parse(&text, &file) {
        Ok(parsed) => parsed,
        Err(mut e) => {
            for error in &mut e.errors {
                error.line = 0;
                error.column = 0;
            }
            return Err(e);
        }
    };
    let changed = "cannot be written to a config file as it is (is a host upper-case, or a duration finer than a millisecond?)".to_owned();
    let mut errors = Vec::new();
    let mut check = |same: bool, key: &str| {
        if !same {
            errors.push(unplaced(key, changed.clone()));
        }
    };
    check(parsed.workers == config.workers, "workers");
    check(parsed.pid_file == config.pid_file, "pid_file");
    check(parsed.log == config.log, "log");
    check(parsed.limits == config.limits, "limits");
    check(parsed.timeouts == config.timeouts, "timeouts");
    check(parsed.listeners == config.listeners, "listener");
    check(parsed.admin == config.admin, "admin");
    check(parsed.resolver == config.resolver, "resolver");
    check(parsed.cache == config.cache, "cache");
    check(parsed.http2 == config.http2, "http2");
    check(parsed.http == config.http, "http");
    check(parsed.fleet == config.fleet, "fleet");
    check(parsed.acme == config.acme, "acme");
    check(parsed.dns == config.dns, "dns");
    for m in &config.mirrors {
        let same = parsed.mirrors.iter().any(|p| p == m);
        check(same, &crate::tree::child("mirrors", &m.name));
    }
    // Rate limits are keyed by name in the file, so only their set must survive.
    let by_name = |p: &crate::model::Protect| {
        let mut p = p.clone();
        p.rate_limits.sort_by(|a, b| a.name.cmp(&b.name));
        p
    };
    check(
        by_name(&parsed.protect) == by_name(&config.protect),
        "protect",
    );
    for (i, (a, b)) in parsed.routes.iter().zip(&config.routes).enumerate() {
        check(a == b, &format!("route[{i}]"));
    }
    // The file keys upstreams by name, so only their set must survive.
    for u in &config.upstreams {
        let same = parsed.upstreams.iter().any(|p| p == u);
        check(same, &crate::tree::child("upstream", &u.name));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors { errors })
    }
}

/// The position of a TOML syntax error, or none.
pub(crate) fn syntax_error(text: &str, file: &Path, error: &toml::de::Error) -> ConfigError {
    let (line, column) = match error.span() {
        Some(span) => LineIndex::new(text).position(span.start),
        None => (0, 0),
    };
    ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        key: String::new(),
        message: error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests;
