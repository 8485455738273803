//! `[acme]`, `[acme.dns]` and `[acme.on_demand]` (model/acme.rs,
//! docs/tls.md "Automatic certificates"), and the cross-checks that need
//! the listeners and `[fleet]` too ([`check_acme`]).

use std::ops::Range;
use std::time::Duration;

use super::tls::{file, server_name};
use super::{Draft, Mention};
use crate::error::Sink;
use crate::model::{
    Acme, AcmeDns, Challenge, DEFAULT_ACME_STORAGE, DEFAULT_ASK_TIMEOUT, DEFAULT_DNS_TTL,
    DEFAULT_MAX_ORDERS_PER_HOUR, DEFAULT_MAX_ORDERS_PER_NAME, DEFAULT_ON_DEMAND_PER_HOUR,
    DEFAULT_ON_DEMAND_PER_NAME, Eab, KeyType, LETSENCRYPT, LETSENCRYPT_STAGING, OnDemand,
    SecretSource,
};
use crate::tree::{Fields, Item};

pub(crate) const ACME_KEYS: &[&str] = &[
    "directory",
    "contact",
    "eab_kid",
    "eab_hmac_file",
    "storage",
    "ca_root",
    "key_type",
    "renew_before",
    "challenges",
    "names",
    "dns",
    "on_demand",
    "fleet_key_file",
    "fleet_key_env",
    "max_orders_per_hour",
    "max_orders_per_name",
];
pub(crate) const ACME_DNS_KEYS: &[&str] =
    &["server", "zone", "tsig_key", "tsig_secret_file", "ttl"];
pub(crate) const ON_DEMAND_KEYS: &[&str] =
    &["ask", "ask_timeout", "allow", "per_name", "max_per_hour"];

/// Where `[acme]` was written, for cross-checks.
pub(crate) struct DraftAcme {
    pub acme: Acme,
    pub span: Range<usize>,
    /// `names` entries that are wildcards (they need `[acme.dns]`).
    pub wildcards: Vec<Mention>,
}

pub(crate) fn acme(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<DraftAcme> {
    let fields = Fields::of(sink, item, ACME_KEYS)?;
    let directory = match fields.get("directory") {
        None => Some(LETSENCRYPT.to_owned()),
        Some(i) => i.text(sink).and_then(|t| match t {
            "letsencrypt" => Some(LETSENCRYPT.to_owned()),
            "letsencrypt-staging" => Some(LETSENCRYPT_STAGING.to_owned()),
            t if super::basics::has_userinfo(t) => {
                i.error(sink, super::basics::USERINFO);
                None
            }
            t if t.starts_with("https://") => Some(t.to_owned()),
            t => {
                i.error(
                    sink,
                    format!(
                        "`{t}`: expected \"letsencrypt\", \"letsencrypt-staging\" or a directory URL (https://...)"
                    ),
                );
                None
            }
        }),
    };
    let mut contact = Vec::new();
    if let Some(i) = fields.get("contact") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            let mail = text.strip_prefix("mailto:").unwrap_or(text);
            let ok = mail.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty()
                    && server_name(host).is_some()
                    && !mail.bytes().any(|b| b.is_ascii_whitespace() || b == b',')
            });
            if ok {
                contact.push(mail.to_owned());
            } else {
                item.error(sink, format!("`{text}` is not an e-mail address"));
            }
        }
    }
    let eab = match (fields.get("eab_kid"), fields.get("eab_hmac_file")) {
        (Some(k), Some(f)) => match (k.text(sink), file(sink, f)) {
            (Some(kid), Some(hmac_file)) => Some(Eab {
                kid: kid.to_owned(),
                hmac_file,
            }),
            _ => None,
        },
        (None, None) => None,
        _ => {
            item.error(sink, "set both `eab_kid` and `eab_hmac_file`, or neither");
            None
        }
    };
    let storage = fields
        .get("storage")
        .and_then(|i| i.text(sink))
        .map_or_else(|| DEFAULT_ACME_STORAGE.into(), Into::into);
    let key_type = match fields.get("key_type") {
        None => Some(KeyType::EcdsaP256),
        Some(i) => i.str(sink).and_then(|t| match t {
            "ecdsa-p256" => Some(KeyType::EcdsaP256),
            "rsa-2048" => Some(KeyType::Rsa2048),
            "rsa-4096" => Some(KeyType::Rsa4096),
            t => {
                i.error(
                    sink,
                    format!("`{t}`: expected \"ecdsa-p256\", \"rsa-2048\" or \"rsa-4096\""),
                );
                None
            }
        }),
    };
    let challenges = match fields.get("challenges") {
        None => Vec::new(),
        Some(i) => {
            let mut out = Vec::new();
            for (item, text) in i.one_or_many(sink).unwrap_or_default() {
                let c = match text {
                    "http-01" => Challenge::Http01,
                    "tls-alpn-01" => Challenge::TlsAlpn01,
                    "dns-01" => Challenge::Dns01,
                    t => {
                        item.error(
                            sink,
                            format!("`{t}`: expected \"http-01\", \"tls-alpn-01\" or \"dns-01\""),
                        );
                        continue;
                    }
                };
                if !out.contains(&c) {
                    out.push(c);
                }
            }
            out
        }
    };
    let mut names = Vec::new();
    let mut wildcards = Vec::new();
    if let Some(i) = fields.get("names") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            match server_name(text) {
                Some(n) => {
                    if n.starts_with("*.") {
                        wildcards.push(Mention::of(&item, &n));
                    }
                    names.push(n);
                }
                None => item.error(
                    sink,
                    format!(
                        "`{text}` is not a server name such as \"example.com\" or \"*.example.com\""
                    ),
                ),
            }
        }
    }
    let dns = fields.get("dns").and_then(|i| dns(sink, i));
    if challenges.contains(&Challenge::Dns01)
        && dns.is_none()
        && let Some(i) = fields.get("challenges")
    {
        i.error(sink, "`dns-01` needs an [acme.dns] table");
    }
    let on_demand = fields.get("on_demand").and_then(|i| on_demand(sink, i));
    let fleet_key = match (fields.get("fleet_key_file"), fields.get("fleet_key_env")) {
        (Some(_), Some(_)) => {
            item.error(sink, "set `fleet_key_file` or `fleet_key_env`, not both");
            None
        }
        (Some(i), None) => file(sink, i).map(SecretSource::File),
        (None, Some(i)) => i.text(sink).and_then(|name| {
            let ok = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !ok {
                i.error(
                    sink,
                    format!("`{name}` is not an environment variable name"),
                );
            }
            ok.then(|| SecretSource::Env(name.to_owned()))
        }),
        (None, None) => None,
    };
    let renew_before = fields
        .get("renew_before")
        .and_then(|i| i.positive_duration(sink));
    let max_orders_per_hour = fields
        .get("max_orders_per_hour")
        .and_then(|i| i.int_in(sink, 1, 100_000))
        .map_or(DEFAULT_MAX_ORDERS_PER_HOUR, |n| n as u32);
    let max_orders_per_name = fields
        .get("max_orders_per_name")
        .and_then(|i| i.int_in(sink, 1, 1000))
        .map_or(DEFAULT_MAX_ORDERS_PER_NAME, |n| n as u32);
    Some(DraftAcme {
        acme: Acme {
            directory: directory?,
            contact,
            eab,
            storage,
            ca_root: fields.get("ca_root").and_then(|i| file(sink, i)),
            key_type: key_type?,
            renew_before,
            challenges,
            names,
            dns,
            on_demand,
            fleet_key,
            max_orders_per_hour,
            max_orders_per_name,
        },
        span: item.span(),
        wildcards,
    })
}

fn dns(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<AcmeDns> {
    let fields = Fields::of(sink, item, ACME_DNS_KEYS)?;
    let server = fields.require(sink, "server").and_then(|i| {
        let text = i.text(sink)?;
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                i.error(
                    sink,
                    format!("`{text}`: expected IP:port of the primary DNS server, such as \"192.0.2.53:53\""),
                );
                None
            }
        }
    });
    let zone = fields.get("zone").and_then(|i| {
        let text = i.text(sink)?;
        let zone = server_name(text.trim_end_matches('.')).filter(|z| !z.starts_with("*."));
        if zone.is_none() {
            i.error(sink, format!("`{text}` is not a zone name"));
        }
        zone
    });
    let tsig_key = fields
        .get("tsig_key")
        .and_then(|i| i.text(sink))
        .map(str::to_owned);
    let tsig_secret_file = fields.get("tsig_secret_file").and_then(|i| file(sink, i));
    if tsig_key.is_some() != tsig_secret_file.is_some() {
        item.error(
            sink,
            "set both `tsig_key` and `tsig_secret_file`, or neither",
        );
    }
    let ttl = fields
        .get("ttl")
        .and_then(|i| i.int_in(sink, 1, 86_400))
        .map_or(DEFAULT_DNS_TTL, |n| n as u32);
    Some(AcmeDns {
        server: server?,
        zone,
        tsig_key,
        tsig_secret_file,
        ttl,
    })
}

fn on_demand(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<OnDemand> {
    let fields = Fields::of(sink, item, ON_DEMAND_KEYS)?;
    let ask = fields.get("ask").and_then(|i| {
        let text = i.text(sink)?;
        if super::basics::has_userinfo(text) {
            i.error(sink, super::basics::USERINFO);
            return None;
        }
        if !text.starts_with("http://") || text.contains('?') || text.contains('#') {
            i.error(
                sink,
                format!("`{text}`: expected http://host[:port]/path (levee adds ?domain=NAME)"),
            );
            return None;
        }
        Some(text.to_owned())
    });
    let mut allow = Vec::new();
    if let Some(i) = fields.get("allow") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            match server_name(text) {
                Some(n) => allow.push(n),
                None => item.error(
                    sink,
                    format!("`{text}` is not a host pattern such as \"example.com\" or \"*.example.com\""),
                ),
            }
        }
    }
    if ask.is_none() && allow.is_empty() && fields.get("ask").is_none() {
        item.error(
            sink,
            "on-demand TLS needs `ask` or `allow`: otherwise any name a client sends would be ordered",
        );
    }
    let duration = |key: &str, default: Duration, sink: &mut Sink<'_>| match fields.get(key) {
        Some(i) => i.positive_duration(sink).unwrap_or(default),
        None => default,
    };
    let ask_timeout = duration("ask_timeout", DEFAULT_ASK_TIMEOUT, sink);
    let per_name = duration("per_name", DEFAULT_ON_DEMAND_PER_NAME, sink);
    let max_per_hour = fields
        .get("max_per_hour")
        .and_then(|i| i.int_in(sink, 1, 100_000))
        .map_or(DEFAULT_ON_DEMAND_PER_HOUR, |n| n as u32);
    Some(OnDemand {
        ask,
        ask_timeout,
        allow,
        per_name,
        max_per_hour,
    })
}

/// What `[acme]` needs of the rest of the file: a wildcard needs
/// `[acme.dns]`; with `[fleet]`, the key that encrypts private keys in
/// Redis. An `auto` listener without `[acme]` gets its defaults.
pub(crate) fn check_acme(sink: &mut Sink<'_>, draft: &Draft) {
    let Some(a) = &draft.acme else {
        if draft.fleet.is_some() {
            for m in draft.listeners.iter().filter_map(|l| l.tls_auto.as_ref()) {
                sink.error(
                    m.span.clone(),
                    &m.key,
                    "with [fleet], automatic certificates need an [acme] section with `fleet_key_file` or `fleet_key_env` (docs/tls.md)",
                );
            }
        }
        return;
    };
    if a.acme.dns.is_none() {
        for m in &a.wildcards {
            sink.error(
                m.span.clone(),
                &m.key,
                format!(
                    "`{}` is a wildcard: it can only be validated by DNS-01, which needs an [acme.dns] table",
                    m.text
                ),
            );
        }
    }
    if draft.fleet.is_some() && a.acme.fleet_key.is_none() {
        sink.error(
            a.span.clone(),
            "acme",
            "with [fleet], set `fleet_key_file` or `fleet_key_env`: private keys shared through Redis are encrypted with it",
        );
    }
}

#[cfg(test)]
mod tests;
