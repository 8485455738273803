//! `[dns]`, its `[[dns.zone]]` tables and their `[[dns.zone.fleet]]`
//! records (model/dns.rs, docs/dns.md). Names and the shape of each
//! `records` line are checked here; the record data itself is parsed by
//! `levee-dns`, which `levee check` runs too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::Mention;
use super::tls::file;
use crate::error::Sink;
use crate::model::{
    AnswerOrder, DEFAULT_FLEET_RECORD_TTL, DEFAULT_MAX_ANSWERS, DEFAULT_MAX_UDP_SIZE,
    DEFAULT_ZONE_TTL, Dns, DnsRecord, DnsZone, FleetRecord, MemberProbe, RecordKind, Rrl,
    Secondary,
};
use crate::tree::{Fields, Item};

pub(crate) const DNS_KEYS: &[&str] = &[
    "listen",
    "threads",
    "tsig_keys",
    "geoip",
    "rrl_rate",
    "rrl_burst",
    "rrl_slip",
    "rrl_prefix_v4",
    "rrl_prefix_v6",
    "rrl_max_keys",
    "cookies",
    "max_udp_size",
    "tcp_idle_timeout",
    "max_tcp_connections",
    "probe_interval",
    "probe_timeout",
    "probe_rise",
    "probe_fall",
    "zone",
];
pub(crate) const ZONE_KEYS: &[&str] = &[
    "name",
    "ttl",
    "ns",
    "primary",
    "contact",
    "refresh",
    "retry",
    "expire",
    "negative_ttl",
    "records",
    "fleet",
    "secondaries",
    "tsig_key",
];
pub(crate) const FLEET_RECORD_KEYS: &[&str] =
    &["name", "ttl", "max_answers", "order", "geo", "probe_port"];

/// The longest TTL a record may have (RFC 2181 §8: 2^31 - 1 seconds).
const MAX_TTL: u64 = i32::MAX as u64;

/// `[dns]` as walked, with where its fleet records were written (they
/// need `[fleet]`, which assembly checks).
pub(crate) struct DraftDns {
    pub dns: Dns,
    pub fleet_records: Vec<Mention>,
}

pub(crate) fn dns(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<DraftDns> {
    let fields = Fields::of(sink, item, DNS_KEYS)?;
    let mut listen = Vec::new();
    if let Some(i) = fields.require(sink, "listen") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            match text.parse::<SocketAddr>() {
                Ok(a) if listen.contains(&a) => item.error(sink, format!("`{text}` is listed twice")),
                Ok(a) => listen.push(a),
                Err(_) => item.error(
                    sink,
                    format!("invalid address `{text}`: expected IP:port such as \"0.0.0.0:53\" or \"[::]:53\""),
                ),
            }
        }
    }
    let threads = fields
        .get("threads")
        .and_then(|i| i.int_in(sink, 1, 64))
        .map_or(1, |n| n as usize);
    let tsig_keys = fields.get("tsig_keys").and_then(|i| file(sink, i));
    let geoip = fields.get("geoip").and_then(|i| file(sink, i));
    let mut rrl = Rrl::default();
    let burst_written = fields.get("rrl_burst").is_some();
    for (key, slot, min, max) in [
        ("rrl_rate", &mut rrl.rate, 0, 1_000_000),
        ("rrl_burst", &mut rrl.burst, 1, 1_000_000),
        ("rrl_slip", &mut rrl.slip, 0, 10),
        ("rrl_max_keys", &mut rrl.max_keys, 1, 10_000_000),
    ] {
        if let Some(n) = fields.get(key).and_then(|i| i.int_in(sink, min, max)) {
            *slot = n as u32;
        }
    }
    if !burst_written {
        rrl.burst = rrl.rate.saturating_mul(2).max(1);
    }
    for (key, slot, max) in [
        ("rrl_prefix_v4", &mut rrl.prefix_v4, 32),
        ("rrl_prefix_v6", &mut rrl.prefix_v6, 64),
    ] {
        if let Some(n) = fields.get(key).and_then(|i| i.int_in(sink, 8, max)) {
            *slot = n as u8;
        }
    }
    let cookies = fields
        .get("cookies")
        .and_then(|i| i.bool(sink))
        .unwrap_or(true);
    let max_udp_size = fields
        .get("max_udp_size")
        .and_then(|i| i.int_in(sink, 512, 4096))
        .map_or(DEFAULT_MAX_UDP_SIZE, |n| n as u16);
    let tcp_idle_timeout = fields
        .get("tcp_idle_timeout")
        .and_then(|i| i.positive_duration(sink))
        .unwrap_or(Duration::from_secs(10));
    let max_tcp_connections = fields
        .get("max_tcp_connections")
        .and_then(|i| i.int_in(sink, 1, 1_000_000))
        .map_or(256, |n| n as u32);
    let mut probe = MemberProbe::default();
    for (key, slot) in [
        ("probe_interval", &mut probe.interval),
        ("probe_timeout", &mut probe.timeout),
    ] {
        if let Some(d) = fields.get(key).and_then(|i| i.positive_duration(sink)) {
            *slot = d;
        }
    }
    for (key, slot) in [
        ("probe_rise", &mut probe.rise),
        ("probe_fall", &mut probe.fall),
    ] {
        if let Some(n) = fields.get(key).and_then(|i| i.int_in(sink, 1, 100)) {
            *slot = n as u32;
        }
    }
    let mut zones = Vec::new();
    let mut fleet_records = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    match fields.get("zone") {
        Some(i) if i.value.get_ref().is_table() => {
            i.error(sink, "expected an array of tables: write [[dns.zone]]");
        }
        Some(i) => {
            for z in i.array(sink).unwrap_or_default() {
                let Some((zone, records)) = zone(sink, &z) else {
                    continue;
                };
                if let Some(first) = seen.get(&zone.name) {
                    z.error(
                        sink,
                        format!("zone `{}` is defined twice (first at {first})", zone.name),
                    );
                    continue;
                }
                seen.insert(zone.name.clone(), z.key.clone());
                if zone.fleet.iter().any(|f| f.geo) && geoip.is_none() {
                    z.error(sink, "a fleet record with `geo = true` needs `[dns] geoip`");
                }
                if zone.tsig_key.is_some() && tsig_keys.is_none() {
                    z.error(
                        sink,
                        "`tsig_key` needs `[dns] tsig_keys`, the file that holds it",
                    );
                }
                fleet_records.extend(records);
                zones.push(zone);
            }
        }
        None => {}
    }
    if zones.is_empty() && !sink.has_errors() {
        item.error(sink, "at least one [[dns.zone]] is required");
    }
    Some(DraftDns {
        dns: Dns {
            listen,
            threads,
            tsig_keys,
            geoip,
            rrl,
            cookies,
            max_udp_size,
            tcp_idle_timeout,
            max_tcp_connections,
            probe,
            zones,
        },
        fleet_records,
    })
}

fn zone(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<(DnsZone, Vec<Mention>)> {
    let fields = Fields::of(sink, item, ZONE_KEYS)?;
    let name = fields.require(sink, "name").and_then(|i| {
        let text = i.text(sink)?;
        let name = dns_name(text);
        if name.is_none() {
            i.error(sink, bad_name(text));
        }
        name
    })?;
    let ttl = fields
        .get("ttl")
        .and_then(|i| ttl_of(sink, i))
        .unwrap_or(DEFAULT_ZONE_TTL);
    let mut ns = Vec::new();
    if let Some(i) = fields.require(sink, "ns") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            match dns_name(text) {
                Some(n) => ns.push(n),
                None => item.error(sink, bad_name(text)),
            }
        }
    }
    let primary = fields.get("primary").and_then(|i| {
        let text = i.text(sink)?;
        let n = dns_name(text);
        if n.is_none() {
            i.error(sink, bad_name(text));
        }
        n
    });
    let contact = match fields.get("contact") {
        Some(i) => i.text(sink).and_then(|text| match text.split_once('@') {
            Some((user, domain))
                if !user.is_empty()
                    && user.bytes().all(|b| b.is_ascii_graphic() && b != b'@')
                    && dns_name(domain).is_some() =>
            {
                Some(text.to_ascii_lowercase())
            }
            _ => {
                i.error(
                    sink,
                    format!("`{text}` is not a mail address such as \"hostmaster@example.org\""),
                );
                None
            }
        }),
        None => Some(format!("hostmaster@{name}")),
    };
    let mut times = [
        ("refresh", Duration::from_secs(3600)),
        ("retry", Duration::from_secs(600)),
        ("expire", Duration::from_secs(14 * 86_400)),
        ("negative_ttl", Duration::from_secs(300)),
    ];
    for (key, slot) in &mut times {
        if let Some(d) = fields.get(key).and_then(|i| ttl_of(sink, i)) {
            *slot = d;
        }
    }
    let [refresh, retry, expire, negative_ttl] = times.map(|(_, d)| d);
    let mut records = Vec::new();
    if let Some(i) = fields.get("records") {
        for r in i.array(sink).unwrap_or_default() {
            if let Some(text) = r.text(sink) {
                match record(text, &name) {
                    Ok(rec) => records.push((rec, Mention::of(&r, text))),
                    Err(message) => r.error(sink, message),
                }
            }
        }
    }
    let mut fleet = Vec::new();
    let mut fleet_mentions = Vec::new();
    match fields.get("fleet") {
        Some(i) if i.value.get_ref().is_table() => {
            i.error(
                sink,
                "expected an array of tables: write [[dns.zone.fleet]]",
            );
        }
        Some(i) => {
            for f in i.array(sink).unwrap_or_default() {
                if let Some(r) = fleet_record(sink, &f, &name) {
                    fleet_mentions.push(Mention {
                        text: r.owner.clone(),
                        key: f.key.clone(),
                        span: f.span(),
                    });
                    fleet.push(r);
                }
            }
        }
        None => {}
    }
    check_names(sink, &name, &records, &fleet, &fleet_mentions);
    let mut secondaries = Vec::new();
    if let Some(i) = fields.get("secondaries") {
        for (item, text) in i.one_or_many(sink).unwrap_or_default() {
            let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
                text.parse::<std::net::IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 53))
            });
            match parsed {
                Some(address) => secondaries.push(Secondary { address }),
                None => item.error(
                    sink,
                    format!("invalid secondary `{text}`: expected an IP address, or IP:port where it takes NOTIFY"),
                ),
            }
        }
    }
    let tsig_key = fields.get("tsig_key").and_then(|i| {
        let text = i.text(sink)?;
        match dns_name(text) {
            Some(n) => Some(n),
            None => {
                i.error(sink, format!("`{text}` is not a key name"));
                None
            }
        }
    });
    let zone = DnsZone {
        name,
        ttl,
        ns,
        primary,
        contact: contact?,
        refresh,
        retry,
        expire,
        negative_ttl,
        records: records.into_iter().map(|(r, _)| r).collect(),
        fleet,
        secondaries,
        tsig_key,
    };
    Some((zone, fleet_mentions))
}

/// What cannot share a name: a CNAME and anything else, a fleet record and
/// static addresses, two fleet records; NS records only at the apex (levee
/// delegates nothing).
fn check_names(
    sink: &mut Sink<'_>,
    zone: &str,
    records: &[(DnsRecord, Mention)],
    fleet: &[FleetRecord],
    fleet_at: &[Mention],
) {
    let mut kinds: HashMap<&str, Vec<RecordKind>> = HashMap::new();
    for (r, at) in records {
        if r.kind == RecordKind::Ns && r.owner != zone {
            sink.error(
                at.span.clone(),
                &at.key,
                "NS records go only at the zone's apex (`@`): levee delegates no subdomain",
            );
        }
        let list = kinds.entry(&r.owner).or_default();
        let clash = if r.kind == RecordKind::Cname {
            !list.is_empty() || r.owner == zone
        } else {
            list.contains(&RecordKind::Cname)
        };
        if clash {
            sink.error(
                at.span.clone(),
                &at.key,
                format!("`{}` has a CNAME and other records: a CNAME must stand alone (and not at the apex)", r.owner),
            );
        }
        list.push(r.kind);
    }
    let mut owners: Vec<&str> = Vec::new();
    for (f, at) in fleet.iter().zip(fleet_at) {
        let taken = kinds.get(f.owner.as_str()).is_some_and(|k| {
            k.iter()
                .any(|k| matches!(k, RecordKind::A | RecordKind::Aaaa | RecordKind::Cname))
        });
        if taken || owners.contains(&f.owner.as_str()) {
            sink.error(
                at.span.clone(),
                &at.key,
                format!("`{}` already has addresses or a CNAME: a fleet record's name answers A and AAAA alone", f.owner),
            );
        }
        owners.push(&f.owner);
    }
}

fn fleet_record(sink: &mut Sink<'_>, item: &Item<'_, '_>, zone: &str) -> Option<FleetRecord> {
    let fields = Fields::of(sink, item, FLEET_RECORD_KEYS)?;
    let owner = fields.require(sink, "name").and_then(|i| {
        let text = i.text(sink)?;
        let n = owner(text, zone);
        if let Err(m) = &n {
            i.error(sink, m.clone());
        }
        n.ok()
    })?;
    let ttl = fields
        .get("ttl")
        .and_then(|i| ttl_of(sink, i))
        .unwrap_or(DEFAULT_FLEET_RECORD_TTL);
    let max_answers = fields
        .get("max_answers")
        .and_then(|i| i.int_in(sink, 1, 64))
        .map_or(DEFAULT_MAX_ANSWERS, |n| n as u32);
    let order = match fields.get("order") {
        Some(i) => match i.str(sink) {
            Some("rotate") => AnswerOrder::Rotate,
            Some("weighted") => AnswerOrder::Weighted,
            Some(other) => {
                i.error(
                    sink,
                    format!("`{other}`: expected \"rotate\" or \"weighted\""),
                );
                AnswerOrder::Rotate
            }
            None => AnswerOrder::Rotate,
        },
        None => AnswerOrder::Rotate,
    };
    let geo = fields
        .get("geo")
        .and_then(|i| i.bool(sink))
        .unwrap_or(false);
    let probe_port = fields
        .get("probe_port")
        .and_then(|i| i.int_in(sink, 1, 65_535))
        .map(|n| n as u16);
    Some(FleetRecord {
        owner,
        ttl,
        max_answers,
        order,
        geo,
        probe_port,
    })
}

/// A TTL: whole seconds, at most 2^31 - 1.
fn ttl_of(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<Duration> {
    let d = item.duration(sink)?;
    check_ttl(d).map_err(|m| item.error(sink, m)).ok()
}

fn check_ttl(d: Duration) -> Result<Duration, String> {
    if d.subsec_nanos() != 0 {
        return Err("a TTL is whole seconds".to_owned());
    }
    if d.as_secs() > MAX_TTL {
        return Err(format!("a TTL is at most {MAX_TTL} seconds"));
    }
    Ok(d)
}

/// A `records` line: `NAME [TTL] [IN] TYPE DATA`, the TTL and class in
/// either order, as in a zone file.
pub(crate) fn record(text: &str, zone: &str) -> Result<DnsRecord, String> {
    let mut rest = text.trim();
    let mut next = || {
        let t = rest.split_whitespace().next()?;
        let at = rest.find(t)? + t.len();
        let token = &rest[..at];
        rest = rest[at..].trim_start();
        Some(token.trim())
    };
    let usage = "expected `NAME [TTL] [IN] TYPE DATA` such as \"www 300 A 192.0.2.1\"";
    let name = next().ok_or_else(|| usage.to_owned())?;
    let owner = owner(name, zone)?;
    let mut ttl = None;
    let mut kind = None;
    for _ in 0..3 {
        let Some(token) = next() else { break };
        if token.eq_ignore_ascii_case("IN") {
            continue;
        }
        if ttl.is_none() && token.starts_with(|c: char| c.is_ascii_digit()) {
            let d = match token.parse::<u64>() {
                Ok(secs) => Duration::from_secs(secs),
                Err(_) => crate::units::parse_duration(token)?,
            };
            ttl = Some(check_ttl(d)?);
            continue;
        }
        kind = Some(RecordKind::parse(token).ok_or_else(|| {
            format!("record type `{token}` is not served: use A, AAAA, CNAME, MX, TXT, CAA or NS (the SOA is written from the zone's keys)")
        })?);
        break;
    }
    let kind = kind.ok_or_else(|| usage.to_owned())?;
    let data = rest.trim();
    if data.is_empty() {
        return Err(format!("the {} record has no data; {usage}", kind.as_str()));
    }
    Ok(DnsRecord {
        owner,
        ttl,
        kind,
        data: data.to_owned(),
        text: text.to_owned(),
    })
}

/// An owner name: `@` (the apex), a name relative to the zone, or an
/// absolute one inside it (with the final dot, or ending in the zone's
/// name: `www.example.org` in `example.org` is not taken as relative).
fn owner(text: &str, zone: &str) -> Result<String, String> {
    if text == "@" {
        return Ok(zone.to_owned());
    }
    if text.split('.').any(|l| l == "*") {
        return Err(format!("`{text}`: wildcard names are not served"));
    }
    let name = absolute(text, zone).ok_or_else(|| bad_name(text))?;
    if name != zone && !name.ends_with(&format!(".{zone}")) {
        return Err(format!("`{text}` is outside the zone `{zone}`"));
    }
    Ok(name)
}

/// `text` as an absolute name: kept when it ends with a dot or in the
/// zone's name, else put under `zone`.
fn absolute(text: &str, zone: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if text.ends_with('.') || lower == zone || lower.ends_with(&format!(".{zone}")) {
        dns_name(text)
    } else {
        dns_name(&format!("{text}.{zone}"))
    }
}

/// A DNS name in lower case without the final dot: labels of 1-63 letters,
/// digits, `-` or `_`, 253 characters in all.
pub(crate) fn dns_name(text: &str) -> Option<String> {
    let text = text.strip_suffix('.').unwrap_or(text);
    let ok = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| text.to_ascii_lowercase())
}

fn bad_name(text: &str) -> String {
    format!("`{text}` is not a DNS name such as \"example.org\"")
}

#[cfg(test)]
mod tests;
