//! Counters of every protection, and their Prometheus text. The names are
//! defined here and nowhere else.
//!
//! Rule counters are kept by rule name for the life of the process, so a
//! reload that rebuilds a rule keeps counting where it was.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::conns::ConnTable;
use crate::shard::lock;
use crate::top::TopKeys;

/// What one rate-limit rule did.
#[derive(Debug, Default)]
pub struct RuleCounters {
    pub admitted: AtomicU64,
    pub delayed: AtomicU64,
    pub refused: AtomicU64,
    /// Would have been refused, but the rule is a dry run.
    pub dry_run: AtomicU64,
    /// Active keys forgotten because the table was full.
    pub evicted: AtomicU64,
    /// Decided by a fleet-scoped rule's local fallback (Redis unreachable).
    pub fallback: AtomicU64,
}

/// Process-wide counters that belong to no single rule or listener.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests refused by a route's allow/deny list.
    pub route_denied: AtomicU64,
    /// Requests refused for missing or wrong Basic credentials.
    pub auth_failed: AtomicU64,
    /// Idle keep-alive connections closed to make room near the descriptor limit.
    pub shed_idle: AtomicU64,
    /// Connections that had sent nothing yet, closed to make room near the
    /// descriptor limit.
    pub shed_silent: AtomicU64,
    /// Clients cut off for sending a request body too slowly.
    pub slow_body: AtomicU64,
    /// Clients cut off for taking a response too slowly.
    pub slow_read: AtomicU64,
    /// `accept` failures for lack of descriptors or memory.
    pub accept_exhausted: AtomicU64,
    /// Basic-auth checks refused because the hashing queue was full or the
    /// client's share of it was taken (429 / 503).
    pub auth_busy: AtomicU64,
    /// Wrong Basic credentials refused again from the negative cache,
    /// without hashing.
    pub auth_cached_refusals: AtomicU64,
    /// Proxied exchanges stopped because the client went away (logged 499).
    pub client_gone: AtomicU64,
    /// HTTP/2 streams refused (REFUSED_STREAM) because the connection's
    /// earlier streams, reset or not, still had work running.
    pub http2_streams_refused: AtomicU64,
}

#[derive(Default)]
struct Registry {
    rules: BTreeMap<String, Arc<RuleCounters>>,
    tops: BTreeMap<String, Arc<TopKeys>>,
    tables: Vec<Weak<ConnTable>>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// The process-wide counters.
pub fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(Counters::default)
}

/// The counters of the rule called `name`, created on first use.
pub(crate) fn rule_counters(name: &str) -> Arc<RuleCounters> {
    lock(registry())
        .rules
        .entry(name.to_owned())
        .or_default()
        .clone()
}

/// The most-refused keys of the rule called `name`, kept like its counters.
pub(crate) fn rule_top(name: &str) -> Arc<TopKeys> {
    lock(registry())
        .tops
        .entry(name.to_owned())
        .or_default()
        .clone()
}

/// Every rule's counters and most-refused keys, by name (for the dashboard).
pub fn rules() -> Vec<(String, Arc<RuleCounters>, Option<Arc<TopKeys>>)> {
    let r = lock(registry());
    r.rules
        .iter()
        .map(|(name, c)| (name.clone(), c.clone(), r.tops.get(name).cloned()))
        .collect()
}

/// Every listener's open-connection table.
pub fn tables() -> Vec<Arc<ConnTable>> {
    lock(registry())
        .tables
        .iter()
        .filter_map(Weak::upgrade)
        .collect()
}

/// Keys per rule shown in `/metrics` (`levee_rate_limit_top_key_refused`):
/// few, since their values are chosen by clients.
const TOP_IN_METRICS: usize = 10;

pub(crate) fn register_table(table: &Arc<ConnTable>) {
    let mut r = lock(registry());
    r.tables.retain(|t| t.strong_count() > 0);
    r.tables.push(Arc::downgrade(table));
}

/// Escapes a label value for the Prometheus text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends every protection metric in the Prometheus text format: the
/// rate-limit rules', the listeners' connections, the process-wide counters.
pub fn render_prometheus(out: &mut String) {
    let r = lock(registry());
    rate_limits(out, &r);
    connections(out, &r);
    process_counters(out);
}

/// Each rate-limit rule's outcomes, most-refused keys, evictions and
/// fallbacks.
fn rate_limits(out: &mut String, r: &Registry) {
    let name = "levee_rate_limit_requests_total";
    header(
        out,
        name,
        "counter",
        "Requests seen by a rate-limit rule, by outcome.",
    );
    for (rule, c) in &r.rules {
        let rule = label(rule);
        for (outcome, n) in [
            ("admitted", &c.admitted),
            ("delayed", &c.delayed),
            ("refused", &c.refused),
            ("dry_run_refused", &c.dry_run),
        ] {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{rule=\"{rule}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    let name = "levee_rate_limit_top_key_refused";
    header(
        out,
        name,
        "gauge",
        "Refusals of one of a rule's most-refused keys (at most 10 per rule; approximate under contention).",
    );
    for (rule, top) in &r.tops {
        for (key, n) in top.read().into_iter().take(TOP_IN_METRICS) {
            let _ = writeln!(
                out,
                "{name}{{rule=\"{}\",key=\"{}\"}} {n}",
                label(rule),
                label(&key)
            );
        }
    }
    type Field = fn(&RuleCounters) -> &AtomicU64;
    let per_rule: [(&str, &str, Field); 2] = [
        (
            "levee_rate_limit_evicted_keys_total",
            "Active keys forgotten because a rule's table was full.",
            |c| &c.evicted,
        ),
        (
            "levee_rate_limit_fallback_total",
            "Requests a fleet-scoped rule decided on this member's share alone, Redis being unreachable.",
            |c| &c.fallback,
        ),
    ];
    for (name, help, field) in per_rule {
        header(out, name, "counter", help);
        for (rule, c) in &r.rules {
            let n = field(c).load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{rule=\"{}\"}} {n}", label(rule));
        }
    }
}

/// Each listener's refused, open and idle connections.
fn connections(out: &mut String, r: &Registry) {
    let name = "levee_connections_refused_total";
    header(
        out,
        name,
        "counter",
        "Connections refused right after accept, by listener and reason.",
    );
    let name_open = "levee_listener_connections";
    let name_idle = "levee_listener_idle_connections";
    let mut open = String::new();
    let mut idle = String::new();
    for table in r.tables.iter().filter_map(Weak::upgrade) {
        let l = label(&table.listener);
        for (reason, n) in table.refused() {
            let _ = writeln!(out, "{name}{{listener=\"{l}\",reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(open, "{name_open}{{listener=\"{l}\"}} {}", table.open());
        let _ = writeln!(idle, "{name_idle}{{listener=\"{l}\"}} {}", table.idle());
    }
    header(
        out,
        name_open,
        "gauge",
        "Open client connections per listener.",
    );
    out.push_str(&open);
    header(
        out,
        name_idle,
        "gauge",
        "Open client connections parked idle (keep-alive, quiet for over 100 ms) per listener.",
    );
    out.push_str(&idle);
}

/// The counters that belong to no rule or listener.
fn process_counters(out: &mut String) {
    let c = counters();
    for (name, help, n) in [
        (
            "levee_route_denied_total",
            "Requests refused by a route's allow/deny list.",
            &c.route_denied,
        ),
        (
            "levee_auth_failed_total",
            "Requests refused for missing or wrong Basic credentials.",
            &c.auth_failed,
        ),
        (
            "levee_idle_shed_total",
            "Idle keep-alive connections closed near the descriptor limit.",
            &c.shed_idle,
        ),
        (
            "levee_silent_shed_total",
            "Connections that had sent nothing, closed near the descriptor limit.",
            &c.shed_silent,
        ),
        (
            "levee_slow_body_cut_total",
            "Clients cut off for sending a request body too slowly.",
            &c.slow_body,
        ),
        (
            "levee_slow_read_cut_total",
            "Clients cut off for taking a response too slowly.",
            &c.slow_read,
        ),
        (
            "levee_banned_total",
            "Connections and requests refused by the runtime ban list.",
            &crate::ban::REFUSED,
        ),
        (
            "levee_accept_exhausted_total",
            "accept() failures for lack of descriptors or memory.",
            &c.accept_exhausted,
        ),
        (
            "levee_auth_busy_total",
            "Basic-auth checks refused because the hashing queue or the client's share of it was full.",
            &c.auth_busy,
        ),
        (
            "levee_auth_cached_refusals_total",
            "Wrong Basic credentials refused from the negative cache, without hashing.",
            &c.auth_cached_refusals,
        ),
        (
            "levee_client_gone_total",
            "Proxied exchanges stopped because the client went away (logged as 499).",
            &c.client_gone,
        ),
        (
            "levee_http2_streams_refused_total",
            "HTTP/2 streams refused while the connection's earlier streams still had work running.",
            &c.http2_streams_refused,
        ),
    ] {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", n.load(Ordering::Relaxed));
    }
}
