//! The mail front end's metrics: sessions by protocol and state, login
//! results, and backend errors, process-wide (every listener and worker),
//! rendered in the Prometheus text format by the admin listener.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use levee_config::model::MailProtocol;

pub const SESSIONS: &str = "levee_mail_sessions";
pub const LOGINS: &str = "levee_mail_logins_total";
pub const BACKEND_ERRORS: &str = "levee_mail_backend_errors_total";
pub const FLEET_FALLBACKS: &str = "levee_mail_fleet_fallback_total";

const PROTOCOLS: [MailProtocol; 3] = [
    MailProtocol::Imap,
    MailProtocol::Pop3,
    MailProtocol::Submission,
];

/// A session's stage, for the sessions gauge.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    PreAuth = 0,
    Proxying = 1,
}
pub const STAGES: [&str; 2] = ["preauth", "proxying"];

#[derive(Debug, Clone, Copy)]
pub enum Login {
    Ok = 0,
    Refused = 1,
    /// Refused without asking: too many failures for the user from the
    /// address, or the user's slow lane full.
    Blocked = 2,
    /// The auth service or the backend was unavailable.
    Unavailable = 3,
    /// Over `max_sessions_per_user`.
    TooMany = 4,
}
pub const LOGIN_RESULTS: [&str; 5] = ["ok", "refused", "blocked", "unavailable", "too_many"];

#[derive(Debug, Clone, Copy)]
pub enum BackendError {
    Connect = 0,
    Timeout = 1,
    Protocol = 2,
}
const BACKEND_KINDS: [&str; 3] = ["connect", "timeout", "protocol"];

static SESSION_GAUGE: [[AtomicI64; 2]; 3] = [const { [const { AtomicI64::new(0) }; 2] }; 3];
static LOGIN_COUNT: [[AtomicU64; 5]; 3] = [const { [const { AtomicU64::new(0) }; 5] }; 3];
static BACKEND_COUNT: [[AtomicU64; 3]; 3] = [const { [const { AtomicU64::new(0) }; 3] }; 3];

/// What a member of a fleet decided on its own because Redis did not
/// answer in time (or was down): a login attempt's counts, a look-up in
/// the auth negative cache.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    Guard = 0,
    NegativeCache = 1,
}
const FALLBACK_KINDS: [&str; 2] = ["guard", "negative_cache"];
static FALLBACK_COUNT: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

pub fn fleet_fallback(what: Fallback) {
    FALLBACK_COUNT[what as usize].fetch_add(1, Relaxed);
}

fn index(p: MailProtocol) -> usize {
    match p {
        MailProtocol::Imap => 0,
        MailProtocol::Pop3 => 1,
        MailProtocol::Submission => 2,
    }
}

pub fn login(p: MailProtocol, result: Login) {
    LOGIN_COUNT[index(p)][result as usize].fetch_add(1, Relaxed);
}

pub fn backend_error(p: MailProtocol, kind: BackendError) {
    BACKEND_COUNT[index(p)][kind as usize].fetch_add(1, Relaxed);
}

/// Counts a session in `stage` while it lives; [`StageGuard::advance`] moves it on.
#[derive(Debug)]
pub struct StageGuard {
    protocol: MailProtocol,
    stage: Stage,
}

impl StageGuard {
    pub fn enter(protocol: MailProtocol, stage: Stage) -> StageGuard {
        SESSION_GAUGE[index(protocol)][stage as usize].fetch_add(1, Relaxed);
        StageGuard { protocol, stage }
    }

    pub fn advance(&mut self, stage: Stage) {
        SESSION_GAUGE[index(self.protocol)][self.stage as usize].fetch_sub(1, Relaxed);
        SESSION_GAUGE[index(self.protocol)][stage as usize].fetch_add(1, Relaxed);
        self.stage = stage;
    }
}

impl Drop for StageGuard {
    fn drop(&mut self) {
        SESSION_GAUGE[index(self.protocol)][self.stage as usize].fetch_sub(1, Relaxed);
    }
}

/// Sessions still before login, all protocols (levee waits for them to be
/// told it is stopping).
pub fn open_preauth() -> i64 {
    SESSION_GAUGE
        .iter()
        .map(|p| p[Stage::PreAuth as usize].load(Relaxed))
        .sum()
}

/// Protocol names in the order of [`Snapshot`]'s rows.
pub const PROTOCOL_NAMES: [&str; 3] = ["imap", "pop3", "submission"];

/// The mail counters now, for the dashboard's sampler: rows by protocol
/// ([`PROTOCOL_NAMES`]), columns by [`STAGES`] and [`LOGIN_RESULTS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sessions: [[i64; 2]; 3],
    pub logins: [[u64; 5]; 3],
}

pub fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    for p in 0..3 {
        for (i, g) in SESSION_GAUGE[p].iter().enumerate() {
            s.sessions[p][i] = g.load(Relaxed);
        }
        for (i, c) in LOGIN_COUNT[p].iter().enumerate() {
            s.logins[p][i] = c.load(Relaxed);
        }
    }
    s
}

/// One metric family: a sample per protocol and per value of `label`.
fn family(
    out: &mut String,
    (name, kind, help): (&str, &str, &str),
    label: &str,
    values: &[&str],
    sample: impl Fn(usize, usize) -> i64,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for p in PROTOCOLS {
        for (i, value) in values.iter().enumerate() {
            let n = sample(index(p), i);
            let _ = writeln!(
                out,
                "{name}{{protocol=\"{}\",{label}=\"{value}\"}} {n}",
                p.as_str()
            );
        }
    }
}

/// Appends every mail metric in the Prometheus text format.
pub fn render_prometheus(out: &mut String) {
    let count = |a: &AtomicU64| i64::try_from(a.load(Relaxed)).unwrap_or(i64::MAX);
    family(
        out,
        (
            SESSIONS,
            "gauge",
            "Open mail sessions by protocol and stage.",
        ),
        "stage",
        &STAGES,
        |p, i| SESSION_GAUGE[p][i].load(Relaxed),
    );
    family(
        out,
        (
            LOGINS,
            "counter",
            "Mail login attempts by protocol and result.",
        ),
        "result",
        &LOGIN_RESULTS,
        |p, i| count(&LOGIN_COUNT[p][i]),
    );
    family(
        out,
        (
            BACKEND_ERRORS,
            "counter",
            "Failed mail backend logins by protocol and kind.",
        ),
        "kind",
        &BACKEND_KINDS,
        |p, i| count(&BACKEND_COUNT[p][i]),
    );
    let _ = writeln!(
        out,
        "# HELP {FLEET_FALLBACKS} Mail decisions a fleet member made alone because Redis did not answer in time.\n# TYPE {FLEET_FALLBACKS} counter"
    );
    for (i, what) in FALLBACK_KINDS.iter().enumerate() {
        let _ = writeln!(
            out,
            "{FLEET_FALLBACKS}{{what=\"{what}\"}} {}",
            FALLBACK_COUNT[i].load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_move_and_render() {
        let mut s = StageGuard::enter(MailProtocol::Pop3, Stage::PreAuth);
        s.advance(Stage::Proxying);
        login(MailProtocol::Pop3, Login::Ok);
        let mut out = String::new();
        render_prometheus(&mut out);
        assert!(
            out.contains("levee_mail_sessions{protocol=\"pop3\",stage=\"proxying\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("levee_mail_logins_total{protocol=\"pop3\",result=\"ok\"} 1"),
            "{out}"
        );
        drop(s);
        let mut out = String::new();
        render_prometheus(&mut out);
        assert!(
            out.contains("levee_mail_sessions{protocol=\"pop3\",stage=\"proxying\"} 0"),
            "{out}"
        );
    }
}
