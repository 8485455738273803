//! The access log: one line per request, in combined or JSON format.
//!
//! Each worker formats into its own reusable buffer and writes the line with
//! one `write` on the shared descriptor (appends of one line are atomic), so
//! workers never take a lock to log. Times are UTC.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use levee_config::{AccessLogFormat, AccessLogTarget, LogConfig};

use crate::message::RequestHead;

#[derive(Debug)]
pub struct AccessLog {
    /// Swappable so a file can be reopened at its path (SIGUSR1, after
    /// logrotate): per line, an `ArcSwap` load (a few atomics, no
    /// allocation) before the one `write`.
    out: Option<ArcSwap<File>>,
    /// The file's path, for [`AccessLog::reopen`]; `None` for stdout and stderr.
    path: Option<PathBuf>,
    format: AccessLogFormat,
}

/// What is logged about one request.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The client: the peer, or the one a trusted proxy named (origin.rs).
    pub client: IpAddr,
    pub request: Option<&'a RequestHead>,
    /// The request's id (empty when ids are off or no head was read).
    pub request_id: &'a [u8],
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes: u64,
    pub request_time: Duration,
    pub upstream_time: Option<Duration>,
    pub upstream: Option<SocketAddr>,
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
}

impl AccessLog {
    pub fn off() -> AccessLog {
        AccessLog {
            out: None,
            path: None,
            format: AccessLogFormat::Combined,
        }
    }

    pub fn open(cfg: &LogConfig) -> Result<AccessLog, (String, std::io::Error)> {
        let dup = |fd: std::os::fd::BorrowedFd<'_>, name: &str| {
            fd.try_clone_to_owned()
                .map(File::from)
                .map_err(|e| (name.to_string(), e))
        };
        let out = match &cfg.access {
            AccessLogTarget::Off => None,
            AccessLogTarget::Stdout => Some(dup(std::io::stdout().as_fd(), "stdout")?),
            AccessLogTarget::Stderr => Some(dup(std::io::stderr().as_fd(), "stderr")?),
            AccessLogTarget::File(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| (path.display().to_string(), e))?,
            ),
        };
        let path = match &cfg.access {
            AccessLogTarget::File(path) => Some(path.clone()),
            _ => None,
        };
        Ok(AccessLog {
            out: out.map(ArcSwap::from_pointee),
            path,
            format: cfg.format,
        })
    }

    /// Opens a file target anew at its path; lines go to the new file from
    /// now on. Nothing to do for stdout, stderr or off. On failure the
    /// file in use stays.
    pub fn reopen(&self) -> std::io::Result<()> {
        if let (Some(out), Some(path)) = (&self.out, &self.path) {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            out.store(std::sync::Arc::new(file));
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    pub fn log(&self, entry: &Entry<'_>) {
        let Some(out) = &self.out else { return };
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            match self.format {
                AccessLogFormat::Combined => combined(&mut line, entry),
                AccessLogFormat::Json => json(&mut line, entry),
            }
            line.push('\n');
            // A failed log write must not fail the request; diagnostics would loop.
            let file = out.load();
            let _ = (&**file).write_all(line.as_bytes());
        });
    }
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn combined(line: &mut String, e: &Entry<'_>) {
    let _ = write!(line, "{} - - [", e.client);
    clf_time(line, SystemTime::now());
    line.push_str("] \"");
    match e.request {
        Some(r) => {
            let _ = write!(
                line,
                "{} {} {}",
                escape_clf(&lossy(r.method())),
                escape_clf(&lossy(r.target())),
                r.version.as_str()
            );
        }
        None => line.push('-'),
    }
    let field = |name: &str| {
        e.request
            .and_then(|r| r.fields.get(name))
            .map(|v| escape_clf(&lossy(v)))
            .unwrap_or_else(|| "-".into())
    };
    let _ = write!(
        line,
        "\" {} {} \"{}\" \"{}\" rt={} urt={} id={}",
        e.status,
        e.bytes,
        field("referer"),
        field("user-agent"),
        seconds(e.request_time),
        e.upstream_time.map(seconds).unwrap_or_else(|| "-".into()),
        if e.request_id.is_empty() {
            "-".into()
        } else {
            lossy(e.request_id)
        },
    );
}

fn escape_clf(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn json(line: &mut String, e: &Entry<'_>) {
    let now = SystemTime::now();
    line.push_str("{\"time\":\"");
    iso_time(line, now);
    let _ = write!(line, "\",\"remote\":\"{}\"", e.client);
    let mut text = |key: &str, value: Option<&[u8]>| {
        let _ = write!(line, ",\"{key}\":");
        match value {
            Some(v) => json_str(line, &lossy(v)),
            None => line.push_str("null"),
        }
    };
    let r = e.request;
    text("method", r.map(|r| r.method()));
    text("uri", r.map(|r| r.target()));
    text("protocol", r.map(|r| r.version.as_str().as_bytes()));
    text("host", r.and_then(|r| r.host.map(|h| r.fields.span_of(h))));
    text("referer", r.and_then(|r| r.fields.get("referer")));
    text("user_agent", r.and_then(|r| r.fields.get("user-agent")));
    text("request_id", Some(e.request_id).filter(|id| !id.is_empty()));
    let _ = write!(
        line,
        ",\"status\":{},\"bytes\":{},\"request_time\":{}",
        e.status,
        e.bytes,
        seconds(e.request_time)
    );
    match e.upstream_time {
        Some(t) => {
            let _ = write!(line, ",\"upstream_time\":{}", seconds(t));
        }
        None => line.push_str(",\"upstream_time\":null"),
    }
    match e.upstream {
        Some(a) => {
            let _ = write!(line, ",\"upstream\":\"{a}\"");
        }
        None => line.push_str(",\"upstream\":null"),
    }
    line.push('}');
}

fn json_str(line: &mut String, s: &str) {
    line.push('"');
    for c in s.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// (year, month 1-12, day, hour, minute, second) in UTC.
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = levee_config::units::civil_from_days(days);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn clf_time(line: &mut String, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s) = civil(t);
    let month = MONTHS.get(mo as usize - 1).unwrap_or(&"Jan");
    let _ = write!(line, "{d:02}/{month}/{y}:{h:02}:{mi:02}:{s:02} +0000");
}

fn iso_time(line: &mut String, t: SystemTime) {
    let (y, mo, d, h, mi, s) = civil(t);
    let _ = write!(line, "{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut s = String::new();
        clf_time(&mut s, t);
        assert_eq!(s, "18/Nov/2026:11:06:40 +0000");
        let mut s = String::new();
        iso_time(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400));
        assert_eq!(s, "2000-02-29T00:00:00Z");
    }

    #[test]
    fn json_escapes_controls_and_quotes() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
