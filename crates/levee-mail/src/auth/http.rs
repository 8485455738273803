//! The `auth_http` client: nginx's request, sent over a connection from a
//! per-worker pool (tokio sockets belong to the runtime that made them, so
//! the pool is thread-local), with one timeout over connect and reply.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use levee_config::model::{AuthHttp, MailProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Attempt, Decision, Route};
use crate::Parsed;
use crate::auth_http::{AuthRequest, Verdict, reply, request};

/// Largest reply accepted, head and body.
const MAX_REPLY: usize = 16 * 1024;

thread_local! {
    static POOL: RefCell<HashMap<String, Vec<TcpStream>>> = RefCell::new(HashMap::new());
}

fn pooled(address: &str) -> Option<TcpStream> {
    POOL.with(|p| p.borrow_mut().get_mut(address).and_then(Vec::pop))
}

fn give_back(address: &str, stream: TcpStream, keep: usize) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let idle = p.entry(address.to_owned()).or_default();
        if idle.len() < keep {
            idle.push(stream);
        }
    });
}

/// `Auth-Protocol` as nginx names it.
fn protocol_name(p: MailProtocol) -> &'static str {
    match p {
        MailProtocol::Imap => "imap",
        MailProtocol::Pop3 => "pop3",
        MailProtocol::Submission => "smtp",
    }
}

pub async fn ask(service: &AuthHttp, attempt: &Attempt<'_>, fail_delay: Duration) -> Decision {
    let c = attempt.credentials;
    let mut bytes = request(&AuthRequest {
        host: &service.host,
        uri: &service.uri,
        method: "plain",
        user: &c.user,
        pass: &c.pass,
        protocol: protocol_name(attempt.protocol),
        attempt: attempt.number,
        client_ip: attempt.peer.ip(),
        client_host: "[UNAVAILABLE]",
        smtp_helo: attempt.smtp_helo,
        ssl: attempt.ssl,
        extra: &service.headers,
    });
    if service.keepalive > 0 {
        // Before the blank line that ends the head.
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
    }
    let deadline = Instant::now() + service.timeout;
    let verdict = match tokio::time::timeout_at(deadline, exchange(service, &bytes, deadline)).await
    {
        Ok(Ok(v)) => v,
        Ok(Err(why)) => return unavailable(service, &why),
        Err(_) => return unavailable(service, "timed out"),
    };
    match verdict {
        Verdict::Ok {
            server,
            port,
            user,
            pass,
        } => Decision::Accept(Route {
            backend: if server.contains(':') {
                format!("[{server}]:{port}")
            } else {
                format!("{server}:{port}")
            },
            user: user.unwrap_or_else(|| c.user.clone()),
            pass: pass.unwrap_or_else(|| c.pass.clone()),
        }),
        Verdict::Fail {
            message,
            wait,
            error_code,
        } => Decision::Refuse {
            message: Some(message),
            wait: wait.map_or(fail_delay, |s| Duration::from_secs(u64::from(s))),
            smtp_code: error_code,
        },
    }
}

/// The auth service could not be asked: why, naming it for the log line.
fn unavailable(service: &AuthHttp, why: &str) -> Decision {
    Decision::Unavailable(format!("auth service {}: {why}", service.address))
}

/// One request and reply; a pooled connection that turns out closed is
/// replaced by a new one once.
async fn exchange(service: &AuthHttp, bytes: &[u8], deadline: Instant) -> Result<Verdict, String> {
    if let Some(stream) = pooled(&service.address)
        && let Ok(v) = on(service, stream, bytes, deadline).await
    {
        return Ok(v);
    }
    let stream = TcpStream::connect(&service.address)
        .await
        .map_err(|e| e.to_string())?;
    on(service, stream, bytes, deadline).await
}

/// The verdict from `stream`. Its connection goes back to the pool once the
/// body is read by `deadline`; a body that does not come (or fails) costs
/// the connection, never the verdict already read.
async fn on(
    service: &AuthHttp,
    mut stream: TcpStream,
    bytes: &[u8],
    deadline: Instant,
) -> Result<Verdict, String> {
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(bytes).await.map_err(io)?;
    let mut buf = Vec::with_capacity(1024);
    let (verdict, head_len) = loop {
        if buf.len() > MAX_REPLY {
            return Err("reply too large".to_owned());
        }
        if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
            return Err("closed the connection".to_owned());
        }
        match reply(&buf) {
            Ok(Parsed::Complete(v, n)) => break (v, n),
            Ok(Parsed::Incomplete) => {}
            Err(e) => return Err(e.to_string()),
        }
    };
    if service.keepalive > 0
        && let Some(body) = reusable_body_len(&buf[..head_len])
        && body <= MAX_REPLY
    {
        let end = head_len + body;
        let read = async {
            while buf.len() < end {
                if stream.read_buf(&mut buf).await.ok()? == 0 {
                    return None;
                }
            }
            Some(())
        };
        let read = tokio::time::timeout_at(deadline, read).await;
        if read == Ok(Some(())) && buf.len() == end {
            give_back(&service.address, stream, service.keepalive);
        }
    }
    Ok(verdict)
}

/// The body length when the service keeps the connection open.
fn reusable_body_len(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    let mut keep = head.starts_with("HTTP/1.1");
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            keep = value.eq_ignore_ascii_case("keep-alive");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        }
    }
    if keep { length } else { None }
}
