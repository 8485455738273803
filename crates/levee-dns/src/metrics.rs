//! The DNS server's counters and their Prometheus text, names defined here
//! and nowhere else. Labels come from fixed lists (query types, results)
//! or from the config (zones, fleet records), never from a query, so a
//! client cannot grow them.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hickory_proto::rr::RecordType;

/// Query types counted by name; the rest are `other`.
pub const TYPES: [&str; 12] = [
    "A", "AAAA", "SOA", "NS", "CNAME", "MX", "TXT", "CAA", "ANY", "AXFR", "IXFR", "other",
];

/// What a query got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NoError = 0,
    NoData,
    NxDomain,
    Refused,
    FormErr,
    NotImp,
    NotAuth,
    BadVers,
    /// Rate limited, nothing sent.
    Dropped,
    /// Rate limited, sent truncated.
    Slipped,
}

const OUTCOMES: [&str; 10] = [
    "noerror", "nodata", "nxdomain", "refused", "formerr", "notimp", "notauth", "badvers",
    "dropped", "slipped",
];

/// Where a type is in [`TYPES`] (`None`: no question could be read).
pub fn type_index(t: Option<RecordType>) -> usize {
    let name = match t {
        Some(RecordType::A) => "A",
        Some(RecordType::AAAA) => "AAAA",
        Some(RecordType::SOA) => "SOA",
        Some(RecordType::NS) => "NS",
        Some(RecordType::CNAME) => "CNAME",
        Some(RecordType::MX) => "MX",
        Some(RecordType::TXT) => "TXT",
        Some(RecordType::CAA) => "CAA",
        Some(RecordType::ANY) => "ANY",
        Some(RecordType::AXFR) => "AXFR",
        Some(RecordType::IXFR) => "IXFR",
        _ => "other",
    };
    TYPES
        .iter()
        .position(|t| *t == name)
        .unwrap_or(TYPES.len() - 1)
}

#[derive(Debug)]
pub struct Counters {
    queries: [[AtomicU64; OUTCOMES.len()]; TYPES.len()],
    pub truncated: AtomicU64,
    pub tcp_refused: AtomicU64,
    pub answer_changes: AtomicU64,
    pub members_in: AtomicU64,
    pub members_out: AtomicU64,
    pub panics: AtomicU64,
    pub transfers_ok: AtomicU64,
    pub transfers_refused: AtomicU64,
    pub notifies_answered: AtomicU64,
    pub notifies_unanswered: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    queries: [const { [const { AtomicU64::new(0) }; OUTCOMES.len()] }; TYPES.len()],
    truncated: AtomicU64::new(0),
    tcp_refused: AtomicU64::new(0),
    answer_changes: AtomicU64::new(0),
    members_in: AtomicU64::new(0),
    members_out: AtomicU64::new(0),
    panics: AtomicU64::new(0),
    transfers_ok: AtomicU64::new(0),
    transfers_refused: AtomicU64::new(0),
    notifies_answered: AtomicU64::new(0),
    notifies_unanswered: AtomicU64::new(0),
};

/// Counts one query.
pub fn query(t: usize, outcome: Outcome) {
    if let Some(row) = COUNTERS.queries.get(t) {
        row[outcome as usize].fetch_add(1, Relaxed);
    }
}

/// Queries of type `t` (a [`TYPES`] name) with `outcome` so far (tests).
pub fn queries(t: &str, outcome: Outcome) -> u64 {
    let i = TYPES
        .iter()
        .position(|x| *x == t)
        .unwrap_or(TYPES.len() - 1);
    COUNTERS.queries[i][outcome as usize].load(Relaxed)
}

/// Appends the DNS metrics; nothing when `[dns]` is not configured.
pub fn render_prometheus(out: &mut String) {
    let Some(state) = crate::current() else {
        return;
    };
    let c = &COUNTERS;
    let _ = writeln!(
        out,
        "# HELP levee_dns_queries_total DNS queries answered, by type and result.\n# TYPE levee_dns_queries_total counter"
    );
    for (t, row) in TYPES.iter().zip(&c.queries) {
        for (o, n) in OUTCOMES.iter().zip(row) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "levee_dns_queries_total{{type=\"{t}\",result=\"{o}\"}} {n}"
                );
            }
        }
    }
    counters(out, c);
    gauges(out, &state.view.load());
}

/// One metric family: its HELP and TYPE lines and `samples` (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The counters besides queries.
fn counters(out: &mut String, c: &Counters) {
    let one = |n: &AtomicU64| vec![(String::new(), n.load(Relaxed))];
    family(
        out,
        "levee_dns_truncated_total",
        "counter",
        "UDP answers sent truncated because they did not fit (the client asks again over TCP).",
        &one(&c.truncated),
    );
    family(
        out,
        "levee_dns_tcp_refused_total",
        "counter",
        "TCP connections closed at once because max_tcp_connections were open.",
        &one(&c.tcp_refused),
    );
    family(
        out,
        "levee_dns_answer_changes_total",
        "counter",
        "Times a fleet record's set of addresses changed (each bumps the zone's serial).",
        &one(&c.answer_changes),
    );
    family(
        out,
        "levee_dns_member_changes_total",
        "counter",
        "Members that came into or went out of a fleet record's answers.",
        &[
            ("{direction=\"in\"}".to_owned(), c.members_in.load(Relaxed)),
            (
                "{direction=\"out\"}".to_owned(),
                c.members_out.load(Relaxed),
            ),
        ],
    );
    family(
        out,
        "levee_dns_panic_total",
        "counter",
        "Times a fleet record found no member in and answered them all.",
        &one(&c.panics),
    );
    family(
        out,
        "levee_dns_transfers_total",
        "counter",
        "Zone transfers (AXFR, IXFR) served and refused.",
        &[
            ("{result=\"ok\"}".to_owned(), c.transfers_ok.load(Relaxed)),
            (
                "{result=\"refused\"}".to_owned(),
                c.transfers_refused.load(Relaxed),
            ),
        ],
    );
    family(
        out,
        "levee_dns_notifies_total",
        "counter",
        "NOTIFY messages sent to secondaries, by whether one answered.",
        &[
            (
                "{result=\"answered\"}".to_owned(),
                c.notifies_answered.load(Relaxed),
            ),
            (
                "{result=\"unanswered\"}".to_owned(),
                c.notifies_unanswered.load(Relaxed),
            ),
        ],
    );
}

/// The gauges of the view in use: serials and fleet record members.
fn gauges(out: &mut String, view: &crate::view::View) {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let serials: Vec<(String, u64)> = view
        .zones
        .iter()
        .map(|z| {
            (
                format!("{{zone=\"{}\"}}", escape(&z.zone.config.name)),
                u64::from(z.serial),
            )
        })
        .collect();
    family(
        out,
        "levee_dns_serial",
        "gauge",
        "Each zone's SOA serial.",
        &serials,
    );
    let mut members = Vec::new();
    for z in &view.zones {
        for (f, live) in z.zone.fleet.iter().zip(&z.live) {
            members.push((
                format!(
                    "{{record=\"{}\",mode=\"{}\"}}",
                    escape(&f.config.owner),
                    match live.mode {
                        crate::live::Mode::In => "in",
                        crate::live::Mode::NoneHealthy => "panic",
                        crate::live::Mode::Unprobed => "unprobed",
                        crate::live::Mode::NoneFresh => "panic_stale",
                    }
                ),
                live.members.len() as u64,
            ));
        }
    }
    family(
        out,
        "levee_dns_answer_members",
        "gauge",
        "Members a fleet record answers with now, and by which rule (docs/dns.md).",
        &members,
    );
}
