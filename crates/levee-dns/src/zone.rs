//! A `[[dns.zone]]` made ready to answer from: its records parsed into wire
//! records (hickory-proto's zone-file parser reads each `records` line, so
//! quoting and relative names follow zone-file rules), grouped by name and
//! type, with every name that has descendants known (a query for one is
//! NODATA, not NXDOMAIN), and the SOA written from the zone's keys.
//!
//! Fleet records are only placed here; their addresses change at run time
//! and live in [`crate::live`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use levee_config::{DnsZone, FleetRecord};

use crate::keys::Key;

/// What is at one name.
#[derive(Debug, Default)]
pub struct Node {
    /// Records by type, in the order written.
    pub sets: Vec<(RecordType, Vec<Record>)>,
    /// The fleet record at this name, an index into [`Zone::fleet`].
    pub fleet: Option<usize>,
}

impl Node {
    pub fn get(&self, t: RecordType) -> Option<&[Record]> {
        self.sets
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, r)| r.as_slice())
    }
}

/// A fleet record as placed in its zone.
#[derive(Debug)]
pub struct FleetName {
    pub owner: Name,
    pub config: FleetRecord,
    /// Queries answered so far: where the rotation starts.
    pub turn: AtomicU64,
}

#[derive(Debug)]
pub struct Zone {
    pub apex: Name,
    pub config: DnsZone,
    pub nodes: HashMap<Name, Node>,
    pub fleet: Vec<FleetName>,
    /// The key transfers must be signed with (`tsig_key`).
    pub tsig: Option<Key>,
    /// The zone's own records but the SOA, in the order a transfer sends
    /// them.
    pub records: Vec<Record>,
}

/// A problem with one record line: the key's suffix (`records[3]`) and
/// what is wrong.
pub type Problem = (String, String);

impl Zone {
    /// Parses the zone's records; every problem is returned, each at its key.
    pub fn build(config: &DnsZone, keys: &[Key]) -> Result<Arc<Zone>, Vec<Problem>> {
        let mut problems = Vec::new();
        let apex = fqdn(&config.name);
        let zone_ttl = config.ttl.as_secs() as u32;
        let mut records = Vec::new();
        for ns in &config.ns {
            let mut r = Record::from_rdata(apex.clone(), zone_ttl, RData::NS(NS(fqdn(ns))));
            r.set_dns_class(DNSClass::IN);
            records.push(r);
        }
        for (i, r) in config.records.iter().enumerate() {
            let ttl = r.ttl.unwrap_or(config.ttl).as_secs();
            let line = format!("{}. {ttl} IN {} {}\n", r.owner, r.kind.as_str(), r.data);
            match Parser::new(line, None, Some(apex.clone())).parse() {
                Ok((_, sets)) => {
                    let parsed: Vec<Record> = sets
                        .values()
                        .flat_map(|s| s.records_without_rrsigs().cloned())
                        .collect();
                    if parsed.len() != 1 {
                        problems.push((format!("records[{i}]"), "expected one record".to_owned()));
                    }
                    records.extend(parsed);
                }
                Err(e) => problems.push((
                    format!("records[{i}]"),
                    format!(
                        "the {} data `{}` does not parse: {e}",
                        r.kind.as_str(),
                        r.data
                    ),
                )),
            }
        }
        let tsig = match &config.tsig_key {
            Some(name) => match keys.iter().find(|k| &k.name == name) {
                Some(k) => Some(k.clone()),
                None => {
                    problems.push((
                        "tsig_key".to_owned(),
                        format!("no key `{name}` in the tsig_keys file"),
                    ));
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut nodes: HashMap<Name, Node> = HashMap::new();
        for r in &records {
            let node = nodes.entry(r.name().clone()).or_default();
            match node.sets.iter_mut().find(|(t, _)| *t == r.record_type()) {
                Some((_, list)) if !list.iter().any(|x| x.data() == r.data()) => {
                    list.push(r.clone())
                }
                Some(_) => {}
                None => node.sets.push((r.record_type(), vec![r.clone()])),
            }
        }
        let mut fleet = Vec::new();
        for (i, f) in config.fleet.iter().enumerate() {
            let owner = fqdn(&f.owner);
            nodes.entry(owner.clone()).or_default().fleet = Some(i);
            fleet.push(FleetName {
                owner,
                config: f.clone(),
                turn: AtomicU64::new(0),
            });
        }
        // Names between the apex and each name exist too (empty non-terminals).
        let names: Vec<Name> = nodes.keys().cloned().collect();
        for n in names {
            let mut up = n.base_name();
            while apex.zone_of(&up) && up.num_labels() >= apex.num_labels() {
                nodes.entry(up.clone()).or_default();
                up = up.base_name();
            }
        }
        nodes.entry(apex.clone()).or_default();
        Ok(Arc::new(Zone {
            apex,
            config: config.clone(),
            nodes,
            fleet,
            tsig,
            records,
        }))
    }

    /// The SOA with `serial`.
    pub fn soa(&self, serial: u32) -> Record {
        let c = &self.config;
        let mname = fqdn(c.primary.as_ref().or(c.ns.first()).map_or(&c.name, |s| s));
        let rname = {
            let (user, domain) = c.contact.split_once('@').unwrap_or(("hostmaster", &c.name));
            // Dots in the mailbox part are escaped (RFC 1035 §8).
            let label = user.replace('.', "\\.");
            Name::parse(&format!("{label}.{domain}."), None).unwrap_or_else(|_| self.apex.clone())
        };
        let secs = |d: std::time::Duration| d.as_secs().min(i32::MAX as u64) as i32;
        let soa = SOA::new(
            mname,
            rname,
            serial,
            secs(c.refresh),
            secs(c.retry),
            secs(c.expire),
            c.negative_ttl.as_secs() as u32,
        );
        Record::from_rdata(self.apex.clone(), c.ttl.as_secs() as u32, RData::SOA(soa))
    }

    /// The TTL of negative answers (RFC 2308: the SOA's MINIMUM, at most
    /// its own TTL).
    pub fn negative_ttl(&self) -> u32 {
        self.config.negative_ttl.min(self.config.ttl).as_secs() as u32
    }
}

/// `name` as an absolute wire name.
pub fn fqdn(name: &str) -> Name {
    let mut n = Name::from_ascii(name).unwrap_or_default();
    n.set_fqdn(true);
    n
}

/// A DNS name's checked form: lower case, no final dot; `None` if it is
/// not one.
pub fn name(text: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(records: &str, fleet: &str) -> Result<Arc<Zone>, Vec<Problem>> {
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
             [fleet]\nname = \"f\"\nredis = \"redis://127.0.0.1\"\n\
             [dns]\nlisten = \"127.0.0.1:5353\"\n[[dns.zone]]\nname = \"example.org\"\nns = [\"ns1.example.org\", \"ns2.example.net\"]\n\
             records = [{records}]\n{fleet}"
        );
        let config = levee_config::parse(&text, "t.toml".as_ref()).expect("valid config");
        Zone::build(&config.dns.expect("dns").zones[0], &[])
    }

    #[test]
    fn records_parse_as_zone_file_lines() {
        let z = zone(
            "\"@ MX 10 mail\", \"mail A 192.0.2.1\", \"mail A 192.0.2.2\", \"a.b.c TXT \\\"v=spf1 -all\\\" x\", \
             \"@ CAA 0 issue \\\"letsencrypt.org\\\"\", \"alias 60 CNAME mail\"",
            "[[dns.zone.fleet]]\nname = \"www\"\n",
        )
        .expect("valid zone");
        let at = |n: &str| z.nodes.get(&fqdn(n)).expect(n);
        let mx = at("example.org").get(RecordType::MX).expect("MX");
        assert_eq!(mx[0].data().to_string(), "10 mail.example.org.");
        assert_eq!(
            at("example.org").get(RecordType::NS).map(<[Record]>::len),
            Some(2)
        );
        assert_eq!(
            at("mail.example.org")
                .get(RecordType::A)
                .map(<[Record]>::len),
            Some(2)
        );
        let alias = &at("alias.example.org")
            .get(RecordType::CNAME)
            .expect("CNAME")[0];
        assert_eq!(
            (alias.ttl(), alias.data().to_string()),
            (60, "mail.example.org.".to_owned())
        );
        // Empty non-terminals exist; the fleet record is placed.
        assert!(at("b.c.example.org").sets.is_empty());
        assert!(at("c.example.org").sets.is_empty());
        assert_eq!(at("www.example.org").fleet, Some(0));
        assert!(!z.nodes.contains_key(&fqdn("org")));
        let soa = z.soa(7);
        assert_eq!(
            soa.data().to_string(),
            "ns1.example.org. hostmaster.example.org. 7 3600 600 1209600 300"
        );
    }

    #[test]
    fn data_that_does_not_parse_is_reported_at_its_line() {
        let e = zone("\"a A 192.0.2.300\", \"b A 192.0.2.1\", \"c MX mail\"", "")
            .expect_err("bad data");
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["records[0]", "records[2]"], "{e:?}");
        assert!(e[0].1.contains("192.0.2.300"), "{e:?}");
    }
}
