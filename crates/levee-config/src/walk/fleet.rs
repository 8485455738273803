//! `[fleet]`: where the fleet's Redis is, how to log in to it, and the
//! fleet's and this member's names (model/fleet.rs, docs/fleet.md).

use super::tls::file;
use crate::error::Sink;
use crate::model::{
    CredentialSource, Credentials, DEFAULT_FLEET_HEARTBEAT, DEFAULT_FLEET_HEARTBEAT_TTL,
    DEFAULT_FLEET_TIMEOUT, DEFAULT_FLEET_WEIGHT, Fleet, REDIS_PORT, RedisAddr, RedisTarget,
    SENTINEL_PORT,
};
use crate::tree::{Fields, Item};

pub(crate) const FLEET_KEYS: &[&str] = &[
    "name",
    "instance",
    "redis",
    "sentinel",
    "master",
    "cluster",
    "ca_file",
    "credentials_file",
    "credentials_env",
    "timeout",
    "heartbeat",
    "heartbeat_ttl",
    "public_addresses",
    "weight",
];

/// The longest `timeout` accepted: a fleet exists to keep serving, and a
/// request held for longer than this on Redis is not doing that.
const MAX_TIMEOUT_MS: u128 = 10_000;

pub(crate) fn fleet(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Fleet> {
    let fields = Fields::of(sink, item, FLEET_KEYS)?;
    let name = fields
        .require(sink, "name")
        .and_then(|i| label(sink, i, "fleet name"));
    let instance = fields
        .get("instance")
        .and_then(|i| label(sink, i, "instance name"));
    let redis = target(sink, item, &fields);
    let credentials = credentials(sink, item, &fields);
    let ca_file = fields.get("ca_file").and_then(|i| file(sink, i));
    if let (Some(i), Some(t)) = (fields.get("ca_file"), &redis)
        && !t.tls()
    {
        i.error(
            sink,
            "`ca_file` is for TLS: write the addresses as rediss://",
        );
    }
    // Each value is checked even when another failed, so every mistake
    // is reported at once.
    let timeout = match fields.get("timeout") {
        Some(i) => i.positive_duration(sink).and_then(|d| {
            if d.as_millis() > MAX_TIMEOUT_MS {
                i.error(sink, "must be at most 10s");
                return None;
            }
            Some(d)
        }),
        None => Some(DEFAULT_FLEET_TIMEOUT),
    };
    let heartbeat = match fields.get("heartbeat") {
        Some(i) => i.positive_duration(sink),
        None => Some(DEFAULT_FLEET_HEARTBEAT),
    };
    let heartbeat_ttl = match (fields.get("heartbeat_ttl"), heartbeat) {
        (Some(i), beat) => i.positive_duration(sink).and_then(|ttl| match beat {
            Some(beat) if ttl < beat * 2 => {
                i.error(
                    sink,
                    "must be at least twice `heartbeat`, or one late heartbeat marks a live member stale",
                );
                None
            }
            _ => Some(ttl),
        }),
        (None, Some(beat)) if beat * 2 > DEFAULT_FLEET_HEARTBEAT_TTL => Some(beat * 5),
        (None, _) => Some(DEFAULT_FLEET_HEARTBEAT_TTL),
    };
    let mut public_addresses = Vec::new();
    if let Some(i) = fields.get("public_addresses") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            match text.parse::<std::net::IpAddr>() {
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() => item.error(
                    sink,
                    format!("`{text}` cannot be a member's public address"),
                ),
                Ok(ip) if public_addresses.contains(&ip) => {
                    item.error(sink, format!("`{text}` is listed twice"))
                }
                Ok(ip) => public_addresses.push(ip),
                Err(_) => item.error(
                    sink,
                    format!("invalid IP address `{text}`: expected one such as \"203.0.113.5\" or \"2001:db8::5\""),
                ),
            }
        }
    }
    let weight = fields
        .get("weight")
        .and_then(|i| i.int_in(sink, 1, 1000))
        .map_or(DEFAULT_FLEET_WEIGHT, |n| n as u32);
    Some(Fleet {
        public_addresses,
        weight,
        name: name?,
        instance,
        redis: redis?,
        credentials,
        ca_file,
        timeout: timeout?,
        heartbeat: heartbeat?,
        heartbeat_ttl: heartbeat_ttl?,
    })
}

/// A fleet or instance name: it becomes part of Redis keys and of the
/// `{name}` hash tag that keeps a fleet's keys on one Cluster shard.
fn label(sink: &mut Sink<'_>, item: &Item<'_, '_>, what: &str) -> Option<String> {
    let text = item.text(sink)?;
    let ok = text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        item.error(
            sink,
            format!("invalid {what} `{text}`: use at most 64 letters, digits, `-`, `_` or `.`"),
        );
        return None;
    }
    Some(text.to_owned())
}

/// Exactly one of `redis`, `sentinel` (with `master`) and `cluster`.
fn target(
    sink: &mut Sink<'_>,
    table: &Item<'_, '_>,
    fields: &Fields<'_, '_>,
) -> Option<RedisTarget> {
    let written: Vec<&str> = ["redis", "sentinel", "cluster"]
        .into_iter()
        .filter(|k| fields.get(k).is_some())
        .collect();
    if written.len() != 1 {
        let message = if written.is_empty() {
            "set one of `redis`, `sentinel` (with `master`) or `cluster`".to_owned()
        } else {
            format!("set only one of {}", written.join(", "))
        };
        table.error(sink, message);
        return None;
    }
    let master = fields.get("master");
    if written[0] != "sentinel"
        && let Some(m) = master
    {
        m.error(sink, "`master` goes with `sentinel`");
    }
    match written[0] {
        "redis" => {
            let i = fields.get("redis")?;
            let text = i.text(sink)?;
            match parse_addr(text, REDIS_PORT, true) {
                Ok(a) => Some(RedisTarget::Single(a)),
                Err(m) => {
                    i.error(sink, m);
                    None
                }
            }
        }
        "sentinel" => {
            let sentinels = addr_list(sink, fields.get("sentinel")?, SENTINEL_PORT);
            let master = match master {
                Some(m) => label(sink, m, "master name"),
                None => {
                    table.error(
                        sink,
                        "`sentinel` needs `master`, the name the sentinels watch",
                    );
                    None
                }
            };
            Some(RedisTarget::Sentinel {
                master: master?,
                sentinels: sentinels?,
            })
        }
        _ => addr_list(sink, fields.get("cluster")?, REDIS_PORT).map(RedisTarget::Cluster),
    }
}

/// A non-empty list of addresses that agree on TLS.
fn addr_list(sink: &mut Sink<'_>, item: &Item<'_, '_>, port: u16) -> Option<Vec<RedisAddr>> {
    let mut out = Vec::new();
    let mut bad = false;
    for (i, text) in item.one_or_many(sink)? {
        match parse_addr(text, port, false) {
            Ok(a) => out.push(a),
            Err(m) => {
                i.error(sink, m);
                bad = true;
            }
        }
    }
    if out.iter().any(|a| a.tls != out[0].tls) {
        item.error(
            sink,
            "mix of redis:// and rediss://: use TLS for all or none",
        );
        return None;
    }
    (!bad).then_some(out)
}

/// `redis://host[:port][/db]`, `rediss://…`, or a bare `host:port`.
/// Credentials in the address are refused: they belong in a file or the
/// environment, not in a config that is copied around and dumped.
pub(crate) fn parse_addr(
    text: &str,
    default_port: u16,
    db_allowed: bool,
) -> Result<RedisAddr, String> {
    let bad = |why: &str| format!("invalid Redis address `{text}`: {why}");
    let (tls, rest) = if let Some(r) = text.strip_prefix("rediss://") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("redis://") {
        (false, r)
    } else if text.contains("://") {
        return Err(bad("the scheme must be redis:// or rediss://"));
    } else {
        (false, text)
    };
    let (authority, path) = match rest.find('/') {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, ""),
    };
    if super::basics::has_userinfo(text) {
        // Not `bad`: it would repeat the password.
        return Err(format!(
            "invalid Redis address: {}; use `credentials_file` or `credentials_env`",
            super::basics::USERINFO
        ));
    }
    if path.contains('?') || authority.contains('?') {
        return Err(bad("query parameters are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(bad("expected a host name or IP address"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("the port must be 1-65535")),
        },
    };
    let db = match path {
        "" => 0,
        p if db_allowed => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n < 10_000)
            .ok_or_else(|| bad("the path must be a database number such as /0"))?,
        _ => return Err(bad("a database number goes only on `redis`")),
    };
    Ok(RedisAddr {
        host: host.to_ascii_lowercase(),
        port,
        tls,
        db,
    })
}

fn credentials(
    sink: &mut Sink<'_>,
    table: &Item<'_, '_>,
    fields: &Fields<'_, '_>,
) -> Option<Credentials> {
    match (
        fields.get("credentials_file"),
        fields.get("credentials_env"),
    ) {
        (Some(_), Some(_)) => {
            table.error(
                sink,
                "set `credentials_file` or `credentials_env`, not both",
            );
            None
        }
        (Some(i), None) => {
            let at = file(sink, i)?;
            Some(Credentials {
                source: CredentialSource::File(at.path.clone()),
                at,
            })
        }
        (None, Some(i)) => {
            let name = i.text(sink)?;
            let ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !ok {
                i.error(
                    sink,
                    format!("`{name}` is not an environment variable name"),
                );
                return None;
            }
            let mut at = file(sink, i)?;
            at.path = Default::default();
            Some(Credentials {
                source: CredentialSource::Env(name.to_owned()),
                at,
            })
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests;
