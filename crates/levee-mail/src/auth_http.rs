//! nginx's `auth_http` protocol, so existing auth daemons keep working.
//!
//! Request: `GET <uri> HTTP/1.0` with `Auth-*` and `Client-*` fields in the
//! order nginx sends them; `Auth-User` and `Auth-Pass` are escaped as nginx
//! escapes them (control bytes, space and `%` become `%XX`, upper-case hex).
//! Reply: `Auth-Status: OK` with `Auth-Server`/`Auth-Port` (and optionally a
//! new `Auth-User`/`Auth-Pass`), or an error text with an optional
//! `Auth-Wait` (seconds before the client may try again) and, for SMTP,
//! `Auth-Error-Code`. This module builds and reads those messages; the
//! pooled connection to the auth service is the driver's.

use std::net::IpAddr;

use crate::Parsed;

/// TLS facts about the client connection (`Auth-SSL*` fields).
#[derive(Debug, Clone, Default)]
pub struct SslInfo {
    /// `SUCCESS`, `NONE` or a failure reason, as nginx reports it.
    pub verify: String,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    pub fingerprint: Option<String>,
}

/// The `Auth-SSL*` facts of a client certificate (DER) rustls verified.
/// A certificate levee cannot read still says `SUCCESS`, with its fingerprint.
pub fn client_cert_info(der: &[u8]) -> SslInfo {
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    let fingerprint = sha1.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let names = crate::x509::read(der);
    SslInfo {
        verify: "SUCCESS".to_owned(),
        subject: names.as_ref().map(|n| n.subject.clone()),
        issuer: names.as_ref().map(|n| n.issuer.clone()),
        serial: names.map(|n| n.serial),
        fingerprint: Some(fingerprint),
    }
}

/// What the auth service is asked.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// `Host` of the auth service.
    pub host: &'a str,
    pub uri: &'a str,
    /// `plain` (PLAIN, LOGIN and IMAP LOGIN), `none` (SMTP without AUTH).
    pub method: &'a str,
    pub user: &'a [u8],
    pub pass: &'a [u8],
    /// `imap`, `pop3` or `smtp`.
    pub protocol: &'a str,
    /// 1 for the first login on a connection, then 2, 3, …
    pub attempt: u32,
    pub client_ip: IpAddr,
    /// `[UNAVAILABLE]` when levee does not resolve client names (as nginx says).
    pub client_host: &'a str,
    pub smtp_helo: Option<&'a [u8]>,
    pub ssl: Option<&'a SslInfo>,
    /// Configured extra fields, sent last.
    pub extra: &'a [(String, String)],
}

/// Appends `value` escaped as nginx's `auth_http` does.
pub fn escape(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        if b <= 0x20 || b == b'%' {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request bytes.
pub fn request(r: &AuthRequest<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(r.uri.as_bytes());
    out.extend_from_slice(b" HTTP/1.0\r\n");
    field(&mut out, "Host", r.host.as_bytes());
    field(&mut out, "Auth-Method", r.method.as_bytes());
    let mut escaped = Vec::with_capacity(r.user.len());
    escape(&mut escaped, r.user);
    field(&mut out, "Auth-User", &escaped);
    escaped.clear();
    escape(&mut escaped, r.pass);
    field(&mut out, "Auth-Pass", &escaped);
    field(&mut out, "Auth-Protocol", r.protocol.as_bytes());
    field(
        &mut out,
        "Auth-Login-Attempt",
        r.attempt.to_string().as_bytes(),
    );
    field(&mut out, "Client-IP", r.client_ip.to_string().as_bytes());
    field(&mut out, "Client-Host", r.client_host.as_bytes());
    if let Some(helo) = r.smtp_helo {
        escaped.clear();
        escape(&mut escaped, helo);
        field(&mut out, "Auth-SMTP-Helo", &escaped);
    }
    if let Some(ssl) = r.ssl {
        field(&mut out, "Auth-SSL", b"on");
        field(&mut out, "Auth-SSL-Verify", ssl.verify.as_bytes());
        for (name, value) in [
            ("Auth-SSL-Subject", &ssl.subject),
            ("Auth-SSL-Issuer", &ssl.issuer),
            ("Auth-SSL-Serial", &ssl.serial),
            ("Auth-SSL-Fingerprint", &ssl.fingerprint),
        ] {
            // Sent as nginx sends them, unescaped: x509.rs already wrote
            // control bytes as `\XX`; anything else left is dropped.
            if let Some(v) = value {
                escaped.clear();
                escaped.extend(v.bytes().filter(|b| (0x20..0x7f).contains(b)));
                field(&mut out, name, &escaped);
            }
        }
    }
    for (name, value) in r.extra {
        field(&mut out, name, value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The auth service's verdict.
#[derive(Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Log in at `server:port`, optionally as another user or with another password.
    Ok {
        server: String,
        port: u16,
        user: Option<Vec<u8>>,
        pass: Option<Vec<u8>>,
    },
    /// Refused; `message` goes to the client. `wait`: seconds before answering.
    Fail {
        message: String,
        wait: Option<u32>,
        error_code: Option<String>,
    },
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Ok {
                server, port, user, ..
            } => f
                .debug_struct("Ok")
                .field("server", server)
                .field("port", port)
                .field("user", &user.as_deref().map(String::from_utf8_lossy))
                .finish_non_exhaustive(),
            Verdict::Fail {
                message,
                wait,
                error_code,
            } => f
                .debug_struct("Fail")
                .field("message", message)
                .field("wait", wait)
                .field("error_code", error_code)
                .finish(),
        }
    }
}

/// Why a reply could not be used (the login then fails as temporary).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply")]
    Malformed,
    #[error("auth service answered HTTP {0}")]
    Status(u16),
    #[error("reply has no Auth-Status")]
    NoStatus,
    #[error("Auth-Status OK without a valid Auth-Server (an IP address) and Auth-Port")]
    NoServer,
    #[error("reply head too large")]
    TooLarge,
}

/// Reads a reply head (the body, if any, is ignored).
pub fn reply(buf: &[u8]) -> Result<Parsed<Verdict>, ReplyError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > 16 * 1024 {
            Err(ReplyError::TooLarge)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ReplyError::Malformed)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(ReplyError::Malformed)?;
    let mut words = status_line.split(' ');
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return Err(ReplyError::Malformed);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReplyError::Malformed);
    }
    let code: u16 = code.parse().map_err(|_| ReplyError::Malformed)?;
    if code != 200 {
        return Err(ReplyError::Status(code));
    }
    let (mut status, mut server, mut port, mut wait, mut error_code, mut user, mut pass) =
        (None, None, None, None, None, None, None);
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(ReplyError::Malformed)?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "auth-status" => status = Some(value.to_string()),
            "auth-server" => server = Some(value.to_string()),
            "auth-port" => port = value.parse::<u16>().ok(),
            "auth-wait" => wait = value.parse::<u32>().ok(),
            "auth-error-code" => error_code = Some(value.to_string()),
            "auth-user" => user = Some(unescape(value.as_bytes())),
            "auth-pass" => pass = Some(unescape(value.as_bytes())),
            _ => {}
        }
    }
    let status = status.ok_or(ReplyError::NoStatus)?;
    let verdict = if status == "OK" {
        match (server, port) {
            // An address, as nginx requires: levee does not resolve a name
            // the auth service hands it (nor garbage) on a login's path.
            (Some(server), Some(port)) if server.parse::<IpAddr>().is_ok() && port != 0 => {
                Verdict::Ok {
                    server,
                    port,
                    user,
                    pass,
                }
            }
            _ => return Err(ReplyError::NoServer),
        }
    } else {
        Verdict::Fail {
            message: status,
            wait,
            error_code,
        }
    };
    Ok(Parsed::Complete(verdict, end + 4))
}

/// Undoes `%XX` escapes (auth services escape `Auth-User`/`Auth-Pass` as nginx does).
fn unescape(v: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%'
            && let (Some(h), Some(l)) = (
                v.get(i + 1).and_then(|&b| hex(b)),
                v.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_nginx() {
        let mut out = Vec::new();
        escape(&mut out, b"a b%c\x01\x7f\xffd:@/");
        assert_eq!(out, b"a%20b%25c%01\x7f\xffd:@/");
    }

    #[test]
    fn request_fields_in_order() {
        let r = AuthRequest {
            host: "auth.local",
            uri: "/auth",
            method: "plain",
            user: b"alice@example.org",
            pass: b"p w%",
            protocol: "imap",
            attempt: 1,
            client_ip: "192.0.2.7".parse().expect("ip"),
            client_host: "[UNAVAILABLE]",
            smtp_helo: None,
            ssl: None,
            extra: &[("X-Auth-Key".to_string(), "k".to_string())],
        };
        let text = String::from_utf8(request(&r)).expect("ascii");
        assert_eq!(
            text,
            "GET /auth HTTP/1.0\r\nHost: auth.local\r\nAuth-Method: plain\r\nAuth-User: alice@example.org\r\n\
             Auth-Pass: p%20w%25\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: 192.0.2.7\r\n\
             Client-Host: [UNAVAILABLE]\r\nX-Auth-Key: k\r\n\r\n"
        );
    }

    #[test]
    fn ssl_fields_as_nginx_sends_them() {
        let ssl = SslInfo {
            verify: "SUCCESS".to_owned(),
            subject: Some("CN=Alice Smith,O=Example".to_owned()),
            issuer: Some("CN=ca\r\nX-Evil: 1".to_owned()),
            serial: Some("019A".to_owned()),
            fingerprint: Some("ab".repeat(20)),
        };
        let r = AuthRequest {
            host: "a",
            uri: "/",
            method: "plain",
            user: b"u",
            pass: b"p",
            protocol: "imap",
            attempt: 1,
            client_ip: "192.0.2.7".parse().expect("ip"),
            client_host: "[UNAVAILABLE]",
            smtp_helo: None,
            ssl: Some(&ssl),
            extra: &[],
        };
        let text = String::from_utf8(request(&r)).expect("ascii");
        let fp = "ab".repeat(20);
        let want = format!(
            "Client-Host: [UNAVAILABLE]\r\nAuth-SSL: on\r\nAuth-SSL-Verify: SUCCESS\r\n\
             Auth-SSL-Subject: CN=Alice Smith,O=Example\r\nAuth-SSL-Issuer: CN=caX-Evil: 1\r\n\
             Auth-SSL-Serial: 019A\r\nAuth-SSL-Fingerprint: {fp}\r\n\r\n"
        );
        assert!(text.ends_with(&want), "{text}");
    }

    #[test]
    fn replies() {
        let ok = b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nAuth-Pass: new%20pw\r\n\r\n";
        match reply(ok) {
            Ok(Parsed::Complete(
                Verdict::Ok {
                    server, port, pass, ..
                },
                n,
            )) => {
                assert_eq!((server.as_str(), port, n), ("127.0.0.1", 143, ok.len()));
                assert_eq!(pass.as_deref(), Some(&b"new pw"[..]));
            }
            other => panic!("{other:?}"),
        }
        let fail =
            b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 3\r\n\r\n";
        assert!(matches!(
            reply(fail),
            Ok(Parsed::Complete(Verdict::Fail { wait: Some(3), .. }, _))
        ));
        assert_eq!(
            reply(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n\r\n"),
            Err(ReplyError::NoServer)
        );
        for server in ["mail.example.org", "a b/c", "", "[::1]"] {
            let head = format!(
                "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: {server}\r\nAuth-Port: 143\r\n\r\n"
            );
            assert_eq!(
                reply(head.as_bytes()),
                Err(ReplyError::NoServer),
                "{server}"
            );
        }
        assert_eq!(
            reply(b"HTTP/1.0 500 Oops\r\n\r\n"),
            Err(ReplyError::Status(500))
        );
        assert_eq!(
            reply(b"HTTP/1.0 200 OK\r\nAuth-Status: OK"),
            Ok(Parsed::Incomplete)
        );
    }
}
