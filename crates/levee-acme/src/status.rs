//! What `levee ctl certs`, `GET /certs` and `/metrics` show of every
//! certificate levee serves: those it obtained (the manager's) and those
//! read from files (registered here by levee-server at start and reload),
//! and the ACME counters. Metric names are defined here, once.

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::keys::{self, CertInfo};

pub const EXPIRY: &str = "levee_tls_certificate_expiry_seconds";
pub const ISSUED: &str = "levee_acme_issued_total";
pub const FAILURES: &str = "levee_acme_failures_total";
pub const ON_DEMAND_REFUSED: &str = "levee_acme_on_demand_refused_total";
pub const FLEET_PICKUPS: &str = "levee_acme_fleet_pickups_total";
pub const HELD_BACK: &str = "levee_acme_held_back_total";

/// Process-wide ACME counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Orders that produced a certificate.
    pub issued: AtomicU64,
    /// Attempts that failed (every failure, retried or not).
    pub failures: AtomicU64,
    /// On-demand names refused (policy, ask service, rate limits).
    pub on_demand_refused: AtomicU64,
    /// Certificates taken from another fleet member instead of ordered.
    pub fleet_pickups: AtomicU64,
    /// Orders put off by `max_orders_per_hour` or `max_orders_per_name`.
    pub held_back: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    issued: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    on_demand_refused: AtomicU64::new(0),
    fleet_pickups: AtomicU64::new(0),
    held_back: AtomicU64::new(0),
};

/// The outcome of one attempt to obtain or renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: SystemTime,
    pub ok: bool,
    pub message: String,
}

/// One certificate as shown.
#[derive(Debug, Clone)]
pub struct CertStatus {
    /// The name it is kept under (ACME), or the file's path.
    pub name: String,
    /// `"acme"` or `"file"`.
    pub source: &'static str,
    pub info: Option<CertInfo>,
    pub last: Option<Attempt>,
    pub next: Option<SystemTime>,
    pub failures: u32,
}

#[derive(Debug, Clone)]
struct FileCert {
    path: PathBuf,
    info: Option<CertInfo>,
}

static FILES: RwLock<Vec<FileCert>> = RwLock::new(Vec::new());

/// Registers the certificate files levee serves (start-up, reload), read
/// once here so a scrape of `/metrics` reads no file.
pub fn set_files(paths: Vec<PathBuf>) {
    let mut files: Vec<FileCert> = paths
        .into_iter()
        .map(|path| {
            let info = std::fs::read(&path)
                .ok()
                .and_then(|pem| keys::info_pem(&pem).ok());
            FileCert { path, info }
        })
        .collect();
    files.dedup_by(|a, b| a.path == b.path);
    *FILES.write().unwrap_or_else(|e| e.into_inner()) = files;
}

/// Every certificate: the obtained ones, then the files.
pub fn all() -> Vec<CertStatus> {
    let mut out = crate::current().map(|m| m.status()).unwrap_or_default();
    for f in FILES.read().unwrap_or_else(|e| e.into_inner()).iter() {
        out.push(CertStatus {
            name: f.path.display().to_string(),
            source: "file",
            info: f.info.clone(),
            last: None,
            next: None,
            failures: 0,
        });
    }
    out
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The certificates' expiry and the ACME counters, in Prometheus text.
pub fn render_prometheus(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP {EXPIRY} When each certificate levee serves expires (Unix seconds).\n# TYPE {EXPIRY} gauge"
    );
    for c in all() {
        if let Some(i) = &c.info {
            let _ = writeln!(
                out,
                "{EXPIRY}{{name=\"{}\",source=\"{}\"}} {}",
                escape(&c.name),
                c.source,
                unix(i.not_after)
            );
        }
    }
    let c = &COUNTERS;
    for (name, help, series) in [
        (
            ISSUED,
            "Certificates obtained or renewed from the CA.",
            vec![("", c.issued.load(Relaxed))],
        ),
        (
            FAILURES,
            "Failed attempts to obtain or renew a certificate.",
            vec![("", c.failures.load(Relaxed))],
        ),
        (
            ON_DEMAND_REFUSED,
            "On-demand TLS names refused (policy, ask service, rate limits).",
            vec![("", c.on_demand_refused.load(Relaxed))],
        ),
        (
            HELD_BACK,
            "Orders put off by max_orders_per_hour or max_orders_per_name.",
            vec![("", c.held_back.load(Relaxed))],
        ),
        (
            FLEET_PICKUPS,
            "Certificates taken from another fleet member instead of ordered.",
            vec![("", c.fleet_pickups.load(Relaxed))],
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in series {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    }
}
