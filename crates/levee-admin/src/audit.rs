//! The audit log: one line per state-changing request to the admin
//! listener, whatever its outcome, at info level with the fixed target
//! `levee::audit` (so it can be filtered or routed on its own).
//!
//! A line says who (`token`, `user:NAME` for a login session, `open` on a
//! listener with no credentials configured, `unknown` when refused before
//! authentication), what (method, path, target) and the status; the time
//! is the log line's. It never holds a secret: a login's target is the
//! user name, never the password or token, and other bodies are the API's
//! own small JSON (a weight, a purge URL).

use std::net::SocketAddr;

/// The tracing target of audit lines.
pub const TARGET: &str = "levee::audit";

/// Longest target logged; a longer one is cut (a body is at most 4 KiB).
const MAX_TARGET: usize = 256;

/// Who made a request, as the audit line names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Refused before credentials were looked at.
    Unknown,
    /// No credentials are configured (a loopback listener).
    Open,
    Token,
    User(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Unknown => f.write_str("unknown"),
            Who::Open => f.write_str("open"),
            Who::Token => f.write_str("token"),
            Who::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// One audit line's fields.
#[derive(Debug)]
pub struct Line<'a> {
    pub who: &'a Who,
    /// `bearer`, `session`, `login`, `open`, or `-`.
    pub via: &'a str,
    pub peer: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub target: &'a str,
    pub status: u16,
}

/// Writes one audit line. Text fields are written quoted and escaped, so a
/// crafted path or user name cannot forge a second line.
pub fn record(line: &Line<'_>) {
    tracing::info!(
        target: TARGET,
        who = ?line.who.to_string(),
        via = line.via,
        peer = %line.peer,
        method = ?line.method,
        path = ?line.path,
        target = ?cut(line.target),
        status = line.status,
        "admin action"
    );
}

/// What a request's body names, for the audit line: the body as compact
/// JSON (whitespace removed) when it is JSON, else empty.
pub fn body_target(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_TARGET {
        return text;
    }
    let mut end = MAX_TARGET;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
