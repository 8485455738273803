//! The `[admin]` table: the admin listener's address and who may use it.
//!
//! A listener off loopback must have a token: anything that can reach it
//! could otherwise drain servers or purge the cache. The token itself is
//! never in the config text, only the file or variable that holds it.

use std::net::{IpAddr, SocketAddr};

use super::tls::{file, server_name};
use crate::error::Sink;
use crate::model::{Admin, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_LIFETIME, EnvRef, TokenSource};
use crate::tree::{Fields, Item};

pub(crate) const ADMIN_KEYS: &[&str] = &[
    "address",
    "token_file",
    "token_env",
    "password_file",
    "hosts",
    "origins",
    "session_lifetime",
    "max_sessions",
];

/// Sessions allowed at most: each holds a few hundred bytes; the bound is
/// what keeps a stream of logins from growing memory.
const MAX_SESSIONS: u64 = 10_000;

pub(crate) fn admin(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Admin> {
    let fields = Fields::of(sink, item, ADMIN_KEYS)?;
    let address_item = fields.require(sink, "address")?;
    let address = address(sink, address_item);
    let token = match (fields.get("token_file"), fields.get("token_env")) {
        (Some(_), Some(env)) => {
            env.error(sink, "set `token_file` or `token_env`, not both");
            None
        }
        (Some(f), None) => file(sink, f).map(TokenSource::File),
        (None, Some(e)) => env_name(sink, e).map(TokenSource::Env),
        (None, None) => None,
    };
    let named_token = fields.get("token_file").is_some() || fields.get("token_env").is_some();
    if let Some(a) = address
        && !a.ip().is_loopback()
        && !named_token
    {
        address_item.error(
            sink,
            format!(
                "the admin listener on `{a}` is reachable from other hosts, so it needs a token: \
                 set `token_file` or `token_env` (or listen on a loopback address such as \"127.0.0.1:{}\")",
                a.port()
            ),
        );
    }
    let hosts = list(sink, fields.get("hosts"), host_name, |text| {
        format!(
            "`{text}` is not a host name or IP address (without a port) such as \"admin.example.com\""
        )
    });
    let origins = list(sink, fields.get("origins"), origin, |text| {
        format!(
            "`{text}` is not an origin such as \"https://admin.example.com\" (scheme, host and optional port; no path)"
        )
    });
    let admin = Admin {
        address: address?,
        token,
        password_file: fields.get("password_file").and_then(|i| file(sink, i)),
        hosts,
        origins,
        session_lifetime: fields
            .get("session_lifetime")
            .and_then(|i| i.positive_duration(sink))
            .unwrap_or(DEFAULT_SESSION_LIFETIME),
        max_sessions: fields
            .get("max_sessions")
            .and_then(|i| i.int_in(sink, 1, MAX_SESSIONS))
            .map_or(DEFAULT_MAX_SESSIONS, |n| n as usize),
    };
    Some(admin)
}

/// A string or array of strings, each made into a value by `parse` or
/// reported with `message`.
fn list(
    sink: &mut Sink<'_>,
    item: Option<&Item<'_, '_>>,
    parse: fn(&str) -> Option<String>,
    message: fn(&str) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(item) = item else { return out };
    for (i, text) in item.one_or_many(sink).unwrap_or_default() {
        match parse(text) {
            Some(v) => out.push(v),
            None => i.error(sink, message(text)),
        }
    }
    out
}

fn address(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<SocketAddr> {
    let text = item.text(sink)?;
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            item.error(
                sink,
                format!("invalid address `{text}`: expected IP:port such as \"127.0.0.1:9090\""),
            );
            None
        }
    }
}

fn env_name(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<EnvRef> {
    let name = item.text(sink)?;
    if name.contains('=') || name.contains('\0') {
        item.error(
            sink,
            format!("`{name}` is not an environment variable name"),
        );
        return None;
    }
    let (line, column) = sink.position(item.span().start);
    Some(EnvRef {
        name: name.to_owned(),
        key: item.key.clone(),
        line,
        column,
    })
}

/// A `Host` name as it is compared: a DNS name or an IP address (IPv6 in
/// brackets, as it stands in `Host`), lower-case, no port.
pub(crate) fn host_name(text: &str) -> Option<String> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    match bare.unwrap_or(text).parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => return Some(format!("[{ip}]")),
        Ok(IpAddr::V4(ip)) if bare.is_none() => return Some(ip.to_string()),
        Ok(IpAddr::V4(_)) => return None,
        Err(_) => {}
    }
    server_name(text).filter(|n| !n.starts_with("*."))
}

/// `scheme://host[:port]` with scheme `http` or `https`, lower-case; a
/// default port is dropped, as browsers send it. `None` for anything else
/// (a path, `null`, another scheme).
pub fn origin(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let (host, port) = match rest.find(']') {
        Some(i) => match &rest[i + 1..] {
            "" => (&rest[..=i], None),
            after => (&rest[..=i], Some(after.strip_prefix(':')?)),
        },
        None => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    let host = host_name(host)?;
    match port {
        None => Some(format!("{scheme}://{host}")),
        Some(p) if p == default_port => Some(format!("{scheme}://{host}")),
        Some(p) => {
            let n: u16 = p.parse().ok().filter(|&n| n != 0)?;
            Some(format!("{scheme}://{host}:{n}"))
        }
    }
}

#[cfg(test)]
mod tests;
