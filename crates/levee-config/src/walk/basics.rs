//! The top level's small sections and values: `[log]`, `[limits]`,
//! `[timeouts]`, and `user`/`group` names (moved out of walk.rs, which
//! keeps the walk of the whole file and `[[listener]]`).

use super::*;

pub(super) fn log(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> LogConfig {
    let mut log = LogConfig::default();
    let Some(fields) = Fields::of(sink, item, LOG_KEYS) else {
        return log;
    };
    if let Some(s) = fields.get("access").and_then(|i| i.text(sink)) {
        log.access = match s {
            "off" => AccessLogTarget::Off,
            "stdout" => AccessLogTarget::Stdout,
            "stderr" => AccessLogTarget::Stderr,
            path => AccessLogTarget::File(PathBuf::from(path)),
        };
    }
    if let Some(i) = fields.get("format") {
        match i.str(sink) {
            Some("combined") => log.format = AccessLogFormat::Combined,
            Some("json") => log.format = AccessLogFormat::Json,
            Some(other) => i.error(
                sink,
                format!("unknown log format `{other}`; expected \"combined\" or \"json\""),
            ),
            None => {}
        }
    }
    if let Some(s) = fields.get("level").and_then(|i| i.text(sink)) {
        log.level = s.to_owned();
    }
    if let Some(s) = fields.get("error").and_then(|i| i.text(sink)) {
        log.error = match s {
            "stderr" => ErrorLogTarget::Stderr,
            "stdout" => ErrorLogTarget::Stdout,
            path => ErrorLogTarget::File(PathBuf::from(path)),
        };
    }
    if let Some(i) = fields.get("error_format") {
        match i.str(sink) {
            Some("text") => log.error_format = ErrorLogFormat::Text,
            Some("json") => log.error_format = ErrorLogFormat::Json,
            Some(other) => i.error(
                sink,
                format!("unknown log format `{other}`; expected \"text\" or \"json\""),
            ),
            None => {}
        }
    }
    log
}

/// A user or group name (or number) as `user`/`group` take it: whether it
/// exists is this machine's business (`levee check`), not the file's.
pub(super) fn account(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<String> {
    let text = item.text(sink)?;
    let bad = text.is_empty()
        || text.starts_with('-')
        || text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b':' || b == b'/');
    if bad {
        item.error(
            sink,
            format!(
                "`{text}` is not a user or group name: no spaces, `:` or `/`, not starting with `-`"
            ),
        );
        return None;
    }
    Some(text.to_owned())
}

pub(super) fn limits(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Limits {
    let mut limits = Limits::default();
    let Some(fields) = Fields::of(sink, item, LIMIT_KEYS) else {
        return limits;
    };
    // Head limits are held in memory per connection, so they must fit usize
    // and be above zero (a zero limit would reject every request).
    let head_size = |sink: &mut Sink<'_>, i: &Item<'_, '_>| {
        let n = i.size(sink)?;
        match usize::try_from(n) {
            Ok(0) => i.error(sink, "must be greater than zero"),
            Ok(n) => return Some(n),
            Err(_) => i.error(sink, "is too large"),
        }
        None
    };
    if let Some(n) = fields
        .get("max_request_line")
        .and_then(|i| head_size(sink, i))
    {
        limits.max_request_line = n;
    }
    if let Some(n) = fields
        .get("max_header_bytes")
        .and_then(|i| head_size(sink, i))
    {
        limits.max_header_bytes = n;
    }
    if let Some(n) = fields
        .get("max_headers")
        .and_then(|i| i.int_in(sink, 1, 65_535))
    {
        limits.max_headers = n as usize;
    }
    if let Some(n) = fields.get("max_body").and_then(|i| i.size(sink)) {
        limits.max_body = n;
    }
    if let Some(i) = fields.get("max_requests_per_connection")
        && let Some(n) = i.int_in(sink, 0, u64::MAX)
    {
        limits.max_requests_per_connection = n;
    }
    if let Some(n) = fields
        .get("max_rewrites")
        .and_then(|i| i.int_in(sink, 0, 1000))
    {
        limits.max_rewrites = n as u32;
    }
    limits
}

pub(super) fn timeouts(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Timeouts {
    let mut t = Timeouts::default();
    let Some(fields) = Fields::of(sink, item, TIMEOUT_KEYS) else {
        return t;
    };
    // A zero keepalive closes idle connections at once and a zero grace stops
    // at once: both meaningful. Any other zero would fail every request.
    for (name, slot, zero_ok) in [
        ("request_head", &mut t.request_head, false),
        ("keepalive", &mut t.keepalive, true),
        ("client_body", &mut t.client_body, false),
        ("client_send", &mut t.client_send, false),
        ("upstream_connect", &mut t.upstream_connect, false),
        ("upstream_read", &mut t.upstream_read, false),
        ("upstream_write", &mut t.upstream_write, false),
        ("grace", &mut t.grace, true),
        ("tunnel_idle", &mut t.tunnel_idle, false),
    ] {
        let Some(i) = fields.get(name) else { continue };
        let parsed = if zero_ok {
            i.duration(sink)
        } else {
            i.positive_duration(sink)
        };
        if let Some(d) = parsed {
            *slot = d;
        }
    }
    t
}

/// Whether the URL or address `text` carries a user name or password in
/// its authority (`scheme://user:pass@host/…`). Credentials never go in
/// the config's URLs: `levee config dump` and every log line naming the
/// peer would show them.
pub(crate) fn has_userinfo(text: &str) -> bool {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// The error for such a URL. It never repeats the URL, nor so the password.
pub(crate) const USERINFO: &str = "a user name or password does not go in this URL \
     (`levee config dump` and the logs would show it; the URL is not repeated here)";
