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
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
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
            line.push(b'\n');
            // A failed log write must not fail the request; diagnostics would loop.
            let file = out.load();
            let _ = (&**file).write_all(&line);
        });
    }
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

// The line is written piece by piece into the worker's buffer: no
// `format!`, no `String` per field, integers and IPv4 addresses without
// `fmt`, and the time's text made once per second (bench/README.md,
// issue 21: 6 allocations per logged request before).

/// `n` in decimal.
fn push_u64(line: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let text = crate::h1::write::digits(&mut digits, n);
    line.extend_from_slice(text);
}

/// Seconds with milliseconds: `0.012`.
fn push_seconds(line: &mut Vec<u8>, d: Duration) {
    push_u64(line, d.as_secs());
    let ms = d.subsec_millis();
    line.push(b'.');
    for digit in [ms / 100, ms / 10 % 10, ms % 10] {
        line.push(b'0' + digit as u8);
    }
}

/// [`push_seconds`], or `none` for no time.
fn push_seconds_or(line: &mut Vec<u8>, d: Option<Duration>, none: &[u8]) {
    match d {
        Some(d) => push_seconds(line, d),
        None => line.extend_from_slice(none),
    }
}

fn push_ip(line: &mut Vec<u8>, ip: IpAddr) {
    let mut buf = [0u8; 48];
    line.extend_from_slice(crate::proxy::headers::ip_text(&mut buf, ip));
}

/// Text that needs no escaping in either format: printable ASCII, no
/// quote, no backslash.
fn plain(raw: &[u8]) -> bool {
    raw.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `c` in UTF-8.
fn push_char(line: &mut Vec<u8>, c: char) {
    line.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

fn combined(line: &mut Vec<u8>, e: &Entry<'_>) {
    push_ip(line, e.client);
    line.extend_from_slice(b" - - [");
    push_time(line, &CLF_TIME, SystemTime::now(), clf_time);
    line.extend_from_slice(b"] \"");
    match e.request {
        Some(r) => {
            escape_clf(line, r.method());
            line.push(b' ');
            escape_clf(line, r.target());
            line.push(b' ');
            line.extend_from_slice(r.version.as_str().as_bytes());
        }
        None => line.push(b'-'),
    }
    line.extend_from_slice(b"\" ");
    push_u64(line, u64::from(e.status));
    line.push(b' ');
    push_u64(line, e.bytes);
    let field = |line: &mut Vec<u8>, name: &str| match e.request.and_then(|r| r.fields.get(name)) {
        Some(v) => escape_clf(line, v),
        None => line.push(b'-'),
    };
    line.extend_from_slice(b" \"");
    field(line, "referer");
    line.extend_from_slice(b"\" \"");
    field(line, "user-agent");
    line.extend_from_slice(b"\" rt=");
    push_seconds(line, e.request_time);
    line.extend_from_slice(b" urt=");
    push_seconds_or(line, e.upstream_time, b"-");
    line.extend_from_slice(b" id=");
    if e.request_id.is_empty() {
        line.push(b'-');
    } else {
        line.extend_from_slice(lossy(e.request_id).as_bytes());
    }
}

/// `raw` as it goes between a combined line's quotes: quotes and
/// backslashes escaped, control characters as `\xHH`.
fn escape_clf(line: &mut Vec<u8>, raw: &[u8]) {
    if plain(raw) {
        line.extend_from_slice(raw);
        return;
    }
    for c in lossy(raw).chars() {
        match c {
            '"' => line.extend_from_slice(b"\\\""),
            '\\' => line.extend_from_slice(b"\\\\"),
            c if c.is_control() => {
                let _ = write!(line, "\\x{:02X}", c as u32);
            }
            c => push_char(line, c),
        }
    }
}

fn json(line: &mut Vec<u8>, e: &Entry<'_>) {
    line.extend_from_slice(b"{\"time\":\"");
    push_time(line, &ISO_TIME, SystemTime::now(), iso_time);
    line.extend_from_slice(b"\",\"remote\":\"");
    push_ip(line, e.client);
    line.push(b'"');
    let mut text = |key: &str, value: Option<&[u8]>| {
        line.extend_from_slice(b",\"");
        line.extend_from_slice(key.as_bytes());
        line.extend_from_slice(b"\":");
        match value {
            Some(v) => json_str(line, v),
            None => line.extend_from_slice(b"null"),
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
    line.extend_from_slice(b",\"status\":");
    push_u64(line, u64::from(e.status));
    line.extend_from_slice(b",\"bytes\":");
    push_u64(line, e.bytes);
    line.extend_from_slice(b",\"request_time\":");
    push_seconds(line, e.request_time);
    line.extend_from_slice(b",\"upstream_time\":");
    push_seconds_or(line, e.upstream_time, b"null");
    line.extend_from_slice(b",\"upstream\":");
    match e.upstream {
        Some(SocketAddr::V4(a)) => {
            line.push(b'"');
            push_ip(line, IpAddr::V4(*a.ip()));
            line.push(b':');
            push_u64(line, u64::from(a.port()));
            line.push(b'"');
        }
        Some(a) => {
            let _ = write!(line, "\"{a}\"");
        }
        None => line.extend_from_slice(b"null"),
    }
    line.push(b'}');
}

/// `raw` as a JSON string (invalid UTF-8 replaced).
fn json_str(line: &mut Vec<u8>, raw: &[u8]) {
    line.push(b'"');
    if plain(raw) {
        line.extend_from_slice(raw);
        line.push(b'"');
        return;
    }
    for c in lossy(raw).chars() {
        match c {
            '"' => line.extend_from_slice(b"\\\""),
            '\\' => line.extend_from_slice(b"\\\\"),
            '\n' => line.extend_from_slice(b"\\n"),
            '\r' => line.extend_from_slice(b"\\r"),
            '\t' => line.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => push_char(line, c),
        }
    }
    line.push(b'"');
}

thread_local! {
    /// The second last written in each time format, and its text: every
    /// line within that second reuses it.
    static CLF_TIME: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    static ISO_TIME: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `now` formatted by `format`, made at most once a second per thread.
fn push_time(
    line: &mut Vec<u8>,
    cache: &'static std::thread::LocalKey<RefCell<(u64, String)>>,
    now: SystemTime,
    format: fn(&mut String, SystemTime),
) {
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    cache.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            cached.1.clear();
            format(&mut cached.1, now);
            cached.0 = second;
        }
        line.extend_from_slice(cached.1.as_bytes());
    });
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

    fn head(raw: &[u8]) -> RequestHead {
        let limits = crate::h1::HeadLimits {
            max_request_line: 8192,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
        };
        match crate::h1::parse_request(raw, 0, &limits) {
            Ok(crate::h1::Parsed::Complete(parts, len)) => {
                parts.into_head(bytes::Bytes::copy_from_slice(&raw[..len]))
            }
            other => panic!("not a head: {other:?}"),
        }
    }

    fn entry<'a>(request: Option<&'a RequestHead>, id: &'a [u8]) -> Entry<'a> {
        Entry {
            client: IpAddr::from([192, 0, 2, 7]),
            request,
            request_id: id,
            status: 200,
            bytes: 12,
            request_time: Duration::from_micros(12_345),
            upstream_time: Some(Duration::from_millis(1_500)),
            upstream: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        }
    }

    /// The line with its time taken out (checked in `civil_dates`).
    fn timeless(line: &[u8], open: char, close: char) -> String {
        let line = std::str::from_utf8(line).expect("UTF-8");
        let (a, rest) = line.split_once(open).expect("a time");
        let (_, b) = rest.split_once(close).expect("its end");
        format!("{a}{open}{close}{b}")
    }

    #[test]
    fn a_combined_line_piece_by_piece() {
        let h = head(
            "GET /a?b=\"c\\ HTTP/1.1\r\nHost: x\r\nUser-Agent: t\u{e9}st\t1\r\n\r\n".as_bytes(),
        );
        let mut line = Vec::new();
        combined(&mut line, &entry(Some(&h), b"abc"));
        assert_eq!(
            timeless(&line, '[', ']'),
            "192.0.2.7 - - [] \"GET /a?b=\\\"c\\\\ HTTP/1.1\" 200 12 \"-\" \"t\u{e9}st\\x091\" rt=0.012 urt=1.500 id=abc"
        );
        let mut line = Vec::new();
        let e = Entry {
            upstream_time: None,
            ..entry(None, b"")
        };
        combined(&mut line, &e);
        assert_eq!(
            timeless(&line, '[', ']'),
            "192.0.2.7 - - [] \"-\" 200 12 \"-\" \"-\" rt=0.012 urt=- id=-"
        );
    }

    #[test]
    fn a_json_line_piece_by_piece() {
        let h = head(b"GET /j?a=b HTTP/1.1\r\nHost: h.example\r\nReferer: r\"q\r\n\r\n");
        let mut line = Vec::new();
        json(&mut line, &entry(Some(&h), b"abc"));
        let line = String::from_utf8(line).expect("UTF-8");
        let (_, rest) = line.split_once("\"time\":\"").expect("a time");
        let (time, rest) = rest.split_once('"').expect("its end");
        assert_eq!(time.len(), "2000-02-29T00:00:00Z".len(), "{time}");
        assert_eq!(
            rest,
            ",\"remote\":\"192.0.2.7\",\"method\":\"GET\",\"uri\":\"/j?a=b\",\"protocol\":\"HTTP/1.1\",\"host\":\"h.example\",\"referer\":\"r\\\"q\",\"user_agent\":null,\"request_id\":\"abc\",\"status\":200,\"bytes\":12,\"request_time\":0.012,\"upstream_time\":1.500,\"upstream\":\"127.0.0.1:8080\"}"
        );
    }

    #[test]
    fn seconds_with_milliseconds() {
        for (d, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_millis(5), "0.005"),
            (Duration::from_micros(1_234_567), "1.234"),
            (Duration::from_secs(3_600), "3600.000"),
        ] {
            let mut s = Vec::new();
            push_seconds(&mut s, d);
            assert_eq!(s, text.as_bytes());
        }
    }

    #[test]
    fn json_escapes_controls_and_quotes() {
        let mut s = Vec::new();
        json_str(&mut s, "a\"b\\c\n\u{1}".as_bytes());
        assert_eq!(s, b"\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
