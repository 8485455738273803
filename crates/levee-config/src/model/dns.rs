//! `[dns]`: levee as the authoritative DNS server of its own zones, whose
//! fleet records answer with the members that are alive, healthy and not
//! drained (docs/dns.md). The model holds record data as written; the
//! `levee-dns` crate parses it into wire records (`levee check` runs the
//! same parse, so a record it passes loads at start).

use std::net::SocketAddr;
use std::time::Duration;

use super::FileRef;

/// Default `ttl` of a fleet record: short, so a member taken out leaves
/// resolvers' caches soon.
pub const DEFAULT_FLEET_RECORD_TTL: Duration = Duration::from_secs(30);
/// Default `ttl` of a zone's own records.
pub const DEFAULT_ZONE_TTL: Duration = Duration::from_secs(3600);
/// Default `max_answers` of a fleet record.
pub const DEFAULT_MAX_ANSWERS: u32 = 8;
/// Default UDP response size: the 2020 DNS flag day's value, below any
/// path MTU, so answers never depend on IP fragments.
pub const DEFAULT_MAX_UDP_SIZE: u16 = 1232;

#[derive(Debug, Clone, PartialEq)]
pub struct Dns {
    /// Each address is served on UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Threads answering queries (each with its own sockets).
    pub threads: usize,
    /// TSIG keys in BIND's `key "NAME" { algorithm ...; secret "..."; };`
    /// form (what `tsig-keygen` writes).
    pub tsig_keys: Option<FileRef>,
    /// A MaxMind-format database for geo answers.
    pub geoip: Option<FileRef>,
    pub rrl: Rrl,
    /// DNS cookies (RFC 7873): a client that returns levee's cookie has
    /// proved its address and is not rate limited.
    pub cookies: bool,
    /// Largest UDP response, whatever a client offers.
    pub max_udp_size: u16,
    /// A TCP connection with no query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections per thread, at most.
    pub max_tcp_connections: u32,
    pub probe: MemberProbe,
    pub zones: Vec<DnsZone>,
}

/// Response-rate limiting per client prefix, against reflection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrl {
    /// UDP responses per second per prefix; 0 turns limiting off.
    pub rate: u32,
    /// Responses a prefix at rest may have at once.
    pub burst: u32,
    /// Every `slip`th limited response goes out truncated (TC, empty), so a
    /// real client behind the prefix retries over TCP; 0: all are dropped.
    pub slip: u32,
    pub prefix_v4: u8,
    pub prefix_v6: u8,
    /// Prefixes remembered at most; idle ones are forgotten first.
    pub max_keys: u32,
}

impl Default for Rrl {
    fn default() -> Rrl {
        Rrl {
            rate: 20,
            burst: 40,
            slip: 2,
            prefix_v4: 24,
            prefix_v6: 56,
            max_keys: 100_000,
        }
    }
}

/// How a DNS-serving levee checks the members' listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberProbe {
    pub interval: Duration,
    pub timeout: Duration,
    /// Passed probes in a row that bring a member back.
    pub rise: u32,
    /// Failed probes in a row that take it out.
    pub fall: u32,
}

impl Default for MemberProbe {
    fn default() -> MemberProbe {
        MemberProbe {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 2,
        }
    }
}

/// `[[dns.zone]]`: one zone levee is authoritative for.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsZone {
    /// Lower case, without the final dot (`example.org`).
    pub name: String,
    /// TTL of records written without one, and of the SOA and NS records.
    pub ttl: Duration,
    /// Name servers (absolute names, lower case, no final dot).
    pub ns: Vec<String>,
    /// The SOA's MNAME; the first `ns` when not set.
    pub primary: Option<String>,
    /// The SOA's RNAME as a mail address (`hostmaster@example.org`).
    pub contact: String,
    pub refresh: Duration,
    pub retry: Duration,
    pub expire: Duration,
    /// How long resolvers cache "no such name" (the SOA's MINIMUM).
    pub negative_ttl: Duration,
    pub records: Vec<DnsRecord>,
    pub fleet: Vec<FleetRecord>,
    /// Who may transfer the zone (AXFR, IXFR); each is also sent NOTIFY
    /// at `address` (port 53 unless written).
    pub secondaries: Vec<Secondary>,
    /// The TSIG key (a name in `tsig_keys`) transfers must be signed with,
    /// and NOTIFY is signed with.
    pub tsig_key: Option<String>,
}

/// A secondary server: it may transfer the zone from its IP, and is sent
/// NOTIFY at `address` (port 53 unless written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secondary {
    pub address: SocketAddr,
}

/// One `records` line: `NAME [TTL] [IN] TYPE DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Absolute, lower case, without the final dot.
    pub owner: String,
    pub ttl: Option<Duration>,
    pub kind: RecordKind,
    /// The record data in zone-file syntax (`10 mail.example.org.`).
    pub data: String,
    /// The line as written, for messages and for writing the config back.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Caa,
    Ns,
}

impl RecordKind {
    pub fn parse(text: &str) -> Option<RecordKind> {
        Some(match text.to_ascii_uppercase().as_str() {
            "A" => RecordKind::A,
            "AAAA" => RecordKind::Aaaa,
            "CNAME" => RecordKind::Cname,
            "MX" => RecordKind::Mx,
            "TXT" => RecordKind::Txt,
            "CAA" => RecordKind::Caa,
            "NS" => RecordKind::Ns,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Cname => "CNAME",
            RecordKind::Mx => "MX",
            RecordKind::Txt => "TXT",
            RecordKind::Caa => "CAA",
            RecordKind::Ns => "NS",
        }
    }
}

/// `[[dns.zone.fleet]]`: a name whose A and AAAA answers are the fleet's
/// members that are in now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRecord {
    /// Absolute, lower case, without the final dot.
    pub owner: String,
    pub ttl: Duration,
    /// Addresses per answer, at most.
    pub max_answers: u32,
    pub order: AnswerOrder,
    /// Answer with the members nearest the client (needs `[dns] geoip`).
    pub geo: bool,
    /// The port probed on each member's public addresses; `None`: the
    /// ports of every listener the member reports.
    pub probe_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerOrder {
    /// The list starts one place further on each query (a member of weight
    /// `w` leads `w` times as often), as round-robin DNS.
    #[default]
    Rotate,
    /// Members drawn at random in proportion to their weights.
    Weighted,
}

impl AnswerOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerOrder::Rotate => "rotate",
            AnswerOrder::Weighted => "weighted",
        }
    }
}
