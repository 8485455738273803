//! `[resolver]`: the DNS servers that upstream names are resolved with, so
//! their records are followed on their TTL (nginx's `resolver`).

use std::net::{IpAddr, SocketAddr};

use crate::error::Sink;
use crate::model::{DEFAULT_RESOLVER_TIMEOUT, Resolver};
use crate::tree::{Fields, Item};

pub(crate) const RESOLVER_KEYS: &[&str] = &["servers", "valid", "timeout"];

/// The port a resolver address without one gets.
const DNS_PORT: u16 = 53;

pub(crate) fn resolver(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Resolver> {
    let fields = Fields::of(sink, item, RESOLVER_KEYS)?;
    let list = fields.require(sink, "servers")?;
    let items = list.array(sink)?;
    if items.is_empty() {
        list.error(sink, "at least one resolver address is needed");
    }
    let mut servers = Vec::new();
    let mut bad = false;
    for i in items {
        let Some(text) = i.str(sink) else {
            bad = true;
            continue;
        };
        match server(text) {
            Some(addr) => servers.push(addr),
            None => {
                bad = true;
                i.error(
                    sink,
                    format!(
                        "invalid resolver address `{text}`: expected IP or IP:port such as \"127.0.0.1\" or \"[::1]:5353\""
                    ),
                );
            }
        }
    }
    let valid = fields.get("valid").and_then(|i| i.positive_duration(sink));
    let timeout = fields
        .get("timeout")
        .and_then(|i| i.positive_duration(sink))
        .unwrap_or(DEFAULT_RESOLVER_TIMEOUT);
    if bad || servers.is_empty() {
        return None;
    }
    Some(Resolver {
        servers,
        valid,
        timeout,
    })
}

fn server(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| Some(SocketAddr::new(text.parse::<IpAddr>().ok()?, DNS_PORT)))
}
