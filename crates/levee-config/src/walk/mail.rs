//! A listener's `protocol` key and its `[listener.mail]` table.

use std::path::PathBuf;

use crate::error::Sink;
use crate::model::{AuthHttp, MailAuth, MailListener, MailProtocol, MasterUser, StartTls};
use crate::tree::{Fields, Item};

pub(crate) const MAIL_KEYS: &[&str] = &[
    "greeting",
    "auth_http",
    "auth_http_timeout",
    "auth_http_header",
    "auth_http_keepalive",
    "auth_negative_ttl",
    "user_map",
    "auth_fail_delay",
    "preauth_timeout",
    "idle_timeout",
    "backend_connect_timeout",
    "backend_login_timeout",
    "max_errors",
    "max_commands",
    "max_line",
    "max_literal",
    "forward_client_address",
    "backend_proxy_protocol",
    "master_user",
    "master_password",
    "master_separator",
    "max_auth_failures",
    "max_user_auth_failures",
    "auth_failure_window",
    "max_sessions_per_user",
    "move_grace",
    "smtp_capabilities",
    "starttls",
];

/// The listener's front end: `None` for HTTP, else its mail settings.
pub(crate) fn front_end(
    sink: &mut Sink<'_>,
    listener: &Fields<'_, '_>,
) -> Option<Box<MailListener>> {
    let protocol_item = listener.get("protocol");
    let protocol = match protocol_item.map(|i| (i, i.str(sink))) {
        None | Some((_, Some("http"))) => None,
        Some((_, Some("imap"))) => Some(MailProtocol::Imap),
        Some((_, Some("pop3"))) => Some(MailProtocol::Pop3),
        Some((_, Some("submission"))) => Some(MailProtocol::Submission),
        Some((i, Some(other))) => {
            i.error(
                sink,
                format!("unknown protocol `{other}`; expected \"http\", \"imap\", \"pop3\" or \"submission\""),
            );
            return None;
        }
        Some((_, None)) => return None,
    };
    let table = listener.get("mail");
    match (protocol, table) {
        (None, None) => None,
        (None, Some(t)) => {
            t.error(
                sink,
                "a [listener.mail] table needs protocol = \"imap\", \"pop3\" or \"submission\"",
            );
            None
        }
        (Some(_), None) => {
            if let Some(i) = protocol_item {
                i.error(
                    sink,
                    "a mail listener needs a [listener.mail] table with `auth_http` or `user_map`",
                );
            }
            None
        }
        (Some(p), Some(t)) => {
            let m = mail(sink, t, p, listener.get("tls").is_some())?;
            if let Some(tls) = listener.get("tls")
                && let Some(tls) = tls.value.get_ref().as_table()
            {
                // ALPN names and HSTS are HTTP's; a mail client offering
                // ALPN must not be refused for lacking `http/1.1`.
                for key in ["alpn", "hsts"] {
                    if tls.contains_key(key)
                        && let Some(i) = listener.get("tls")
                    {
                        i.error(
                            sink,
                            format!("`{key}` does not apply to a mail listener's TLS"),
                        );
                    }
                }
            }
            if let Some(i) = listener.get("proxy_protocol") {
                // The accept loop hands such connections to the HTTP front end.
                i.error(
                    sink,
                    "`proxy_protocol` is not supported on mail listeners yet",
                );
            }
            for key in ["trusted_proxies", "forwarded_header"] {
                if let Some(i) = listener.get(key) {
                    // Mail carries no forwarded fields: the client is the peer.
                    i.error(
                        sink,
                        format!(
                            "`{key}` applies to HTTP listeners only: mail has no forwarded fields"
                        ),
                    );
                }
            }
            Some(Box::new(m))
        }
    }
}

fn mail(
    sink: &mut Sink<'_>,
    item: &Item<'_, '_>,
    protocol: MailProtocol,
    has_tls: bool,
) -> Option<MailListener> {
    let fields = Fields::of(sink, item, MAIL_KEYS)?;
    // The rest is walked even when `auth` is wrong, so every error is reported.
    let auth = match (fields.get("auth_http"), fields.get("user_map")) {
        (Some(_), Some(u)) => {
            u.error(sink, "set either `auth_http` or `user_map`, not both");
            None
        }
        (None, None) => {
            item.error(sink, "missing `auth_http` or `user_map`");
            None
        }
        (None, Some(u)) => u.text(sink).map(|p| MailAuth::UserMap(PathBuf::from(p))),
        (Some(a), None) => auth_http(sink, &fields, a).map(MailAuth::Http),
    };
    let mut m = MailListener::new(protocol, MailAuth::UserMap(PathBuf::new()));
    if let Some(g) = fields.get("greeting").and_then(|i| i.text(sink)) {
        m.greeting = Some(g.to_owned());
    }
    for (name, slot, zero_ok) in [
        ("auth_fail_delay", &mut m.auth_fail_delay, true),
        ("preauth_timeout", &mut m.preauth_timeout, false),
        ("idle_timeout", &mut m.idle_timeout, false),
        (
            "backend_connect_timeout",
            &mut m.backend_connect_timeout,
            false,
        ),
        ("backend_login_timeout", &mut m.backend_login_timeout, false),
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
    for (name, slot, min) in [
        ("max_errors", &mut m.max_errors, 1),
        ("max_commands", &mut m.max_commands, 1),
        ("max_auth_failures", &mut m.max_auth_failures, 0),
        ("max_user_auth_failures", &mut m.max_user_auth_failures, 0),
        ("max_sessions_per_user", &mut m.max_sessions_per_user, 0),
    ] {
        if let Some(n) = fields
            .get(name)
            .and_then(|i| i.int_in(sink, min, u64::from(u32::MAX)))
        {
            *slot = n as u32;
        }
    }
    if let Some(d) = fields
        .get("auth_failure_window")
        .and_then(|i| i.positive_duration(sink))
    {
        m.auth_failure_window = d;
    }
    if let Some(i) = fields.get("move_grace")
        && let Some(d) = i.duration(sink)
    {
        if d > crate::model::MAX_MAIL_MOVE_GRACE {
            i.error(sink, "must be at most 1h");
        } else {
            m.move_grace = d;
        }
    }
    // POP3 must take 255-octet lines (bearer tokens); below that nothing works.
    if let Some(n) = fields
        .get("max_line")
        .and_then(|i| i.int_in(sink, 512, 1 << 20))
    {
        m.max_line = n as usize;
    }
    if let Some(n) = fields
        .get("max_literal")
        .and_then(|i| i.int_in(sink, 1, 1 << 20))
    {
        m.max_literal = n;
    }
    for (name, slot) in [
        ("forward_client_address", &mut m.forward_client_address),
        ("backend_proxy_protocol", &mut m.backend_proxy_protocol),
    ] {
        if let Some(b) = fields.get(name).and_then(|i| i.bool(sink)) {
            *slot = b;
        }
    }
    if let Some(i) = fields.get("starttls") {
        m.starttls = match i.str(sink) {
            Some("off") => StartTls::Off,
            Some("on") => StartTls::On,
            Some("required") => StartTls::Required,
            Some(other) => {
                i.error(
                    sink,
                    format!("unknown starttls `{other}`; expected \"off\", \"on\" or \"required\""),
                );
                StartTls::Off
            }
            None => StartTls::Off,
        };
        if m.starttls != StartTls::Off && !has_tls {
            i.error(
                sink,
                "STARTTLS needs the listener's certificates: add a [listener.tls] table",
            );
        }
    }
    if let Some(i) = fields.get("smtp_capabilities") {
        m.smtp_capabilities = smtp_capabilities(sink, i, protocol);
    }
    m.master = master(sink, &fields, item);
    m.auth = auth?;
    Some(m)
}

/// Keywords of [`crate::model::SMTP_EXTENSIONS`], SIZE with an optional
/// byte count; on a submission listener only.
fn smtp_capabilities(
    sink: &mut Sink<'_>,
    item: &Item<'_, '_>,
    protocol: MailProtocol,
) -> Option<Vec<String>> {
    if protocol != MailProtocol::Submission {
        item.error(
            sink,
            "`smtp_capabilities` applies to protocol = \"submission\" only",
        );
        return None;
    }
    let mut out = Vec::new();
    for e in item.array(sink)? {
        let Some(text) = e.text(sink) else { continue };
        let mut words = text.split_ascii_whitespace();
        let word = words.next().unwrap_or("").to_ascii_uppercase();
        let param: Vec<&str> = words.collect();
        let known = crate::model::SMTP_EXTENSIONS.contains(&word.as_str());
        let param_ok = match (word.as_str(), param.as_slice()) {
            (_, []) => true,
            ("SIZE", [n]) => n.parse::<u64>().is_ok(),
            _ => false,
        };
        if !known {
            e.error(
                sink,
                format!(
                    "`{text}` is not an extension levee can offer for its backends; expected one of {}",
                    crate::model::SMTP_EXTENSIONS.join(", ")
                ),
            );
        } else if !param_ok && word == "SIZE" {
            e.error(sink, format!("`{text}`: SIZE takes a number of bytes"));
        } else if !param_ok {
            e.error(sink, format!("`{text}`: {word} takes no parameter"));
        } else {
            out.push(
                std::iter::once(word.as_str())
                    .chain(param)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    }
    Some(out)
}

/// `master_user` and `master_password` come together; `master_separator` defaults to `*`.
fn master(
    sink: &mut Sink<'_>,
    fields: &Fields<'_, '_>,
    table: &Item<'_, '_>,
) -> Option<MasterUser> {
    let user = fields.get("master_user").and_then(|i| i.text(sink));
    let password = fields.get("master_password").and_then(|i| i.text(sink));
    let separator = match fields.get("master_separator") {
        Some(i) => i.text(sink)?,
        None => "*",
    };
    match (user, password) {
        (Some(user), Some(password)) => Some(MasterUser {
            user: user.to_owned(),
            password: password.to_owned(),
            separator: separator.to_owned(),
        }),
        (None, None) => None,
        _ => {
            table.error(sink, "`master_user` and `master_password` go together");
            None
        }
    }
}

fn auth_http(sink: &mut Sink<'_>, fields: &Fields<'_, '_>, url: &Item<'_, '_>) -> Option<AuthHttp> {
    // A bad URL does not stop the other keys from being checked: every
    // error is reported at once; the URL's is reported at the end.
    let mut a = AuthHttp {
        url: String::new(),
        address: String::new(),
        host: String::new(),
        uri: String::new(),
        timeout: crate::model::DEFAULT_AUTH_HTTP_TIMEOUT,
        headers: Vec::new(),
        keepalive: 0,
        negative_ttl: crate::model::DEFAULT_AUTH_NEGATIVE_TTL,
    };
    if let Some(d) = fields
        .get("auth_http_timeout")
        .and_then(|i| i.positive_duration(sink))
    {
        a.timeout = d;
    }
    if let Some(d) = fields
        .get("auth_negative_ttl")
        .and_then(|i| i.duration(sink))
    {
        a.negative_ttl = d;
    }
    if let Some(n) = fields
        .get("auth_http_keepalive")
        .and_then(|i| i.int_in(sink, 0, 1024))
    {
        a.keepalive = n as usize;
    }
    if let Some(i) = fields.get("auth_http_header")
        && let Some(table) = i.table(sink)
    {
        for (name, value) in table.iter() {
            let name = name.get_ref().as_ref();
            let item = Item {
                key: crate::tree::child(&i.key, name),
                key_span: i.key_span.clone(),
                value,
            };
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                item.error(sink, format!("invalid header name `{name}`"));
                continue;
            }
            if let Some(v) = item.text(sink) {
                a.headers.push((name.to_owned(), v.to_owned()));
            }
        }
    }
    let text = url.text(sink)?;
    if super::basics::has_userinfo(text) {
        url.error(sink, super::basics::USERINFO);
        return None;
    }
    let Some((host, uri, has_port)) = split_url(text) else {
        url.error(
            sink,
            format!(
                "invalid URL `{text}`: expected http://host:port/path (https is not supported)"
            ),
        );
        return None;
    };
    a.address = if has_port {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    a.url = text.to_owned();
    a.host = host.to_owned();
    a.uri = uri.to_owned();
    Some(a)
}

/// `http://host[:port]/path` → (`host[:port]`, `/path`, whether a port is written).
fn split_url(url: &str) -> Option<(&str, &str, bool)> {
    let rest = url.strip_prefix("http://")?;
    let (host, uri) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    // An IPv6 literal is bracketed; its colons are not a port separator.
    let after_name = match host.strip_prefix('[') {
        Some(v6) => &v6[v6.find(']')? + 1..],
        None => host,
    };
    let has_port = match after_name.rsplit_once(':') {
        Some((_, port)) => {
            port.parse::<u16>().ok().filter(|&p| p != 0)?;
            true
        }
        None => false,
    };
    let name_ok = !host.is_empty() && !host.starts_with(':');
    (name_ok && !uri.contains(' ')).then_some((host, uri, has_port))
}

#[cfg(test)]
mod tests;
