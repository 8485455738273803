//! The admin listener: one request per connection, parsed with levee's
//! HTTP/1 parser, passed through [`crate::gate`] and answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use levee_http::h1::{HeadLimits, Parsed, parse_request};
use levee_http::message::{Framing, RequestHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::gate::Admin;

/// A whole admin request must arrive within this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once. Beyond it new ones are closed unanswered:
/// off loopback anyone can connect, and each connection may wait for a
/// password check or a reload, so their number needs a bound.
const MAX_CONNECTIONS: usize = 256;
/// Largest request body (a weight change is a few bytes).
const MAX_BODY: usize = 4096;
/// Largest body of `POST /fleet/push`: a whole config file.
const MAX_PUSH_BODY: usize = 1 << 20;
/// Push bodies read at once: off loopback anyone may send one before the
/// token is checked, so the memory they take is bounded too.
static PUSH_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
const LIMITS: HeadLimits = HeadLimits {
    max_request_line: 2048,
    max_header_bytes: 16 * 1024,
    max_headers: 50,
};

/// A response from the API: status, content type, body, and any further
/// header fields (`Set-Cookie`, `WWW-Authenticate`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// A body sent piece by piece as it comes (server-sent events), each
    /// write bounded by the duration; the connection closes when the
    /// sender is dropped.
    pub stream: Option<(tokio::sync::mpsc::Receiver<Vec<u8>>, Duration)>,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
            headers: Vec::new(),
            stream: None,
        }
    }

    /// A streamed answer: `pieces` are written as they arrive.
    pub fn stream(
        status: u16,
        content_type: &'static str,
        pieces: tokio::sync::mpsc::Receiver<Vec<u8>>,
        write_timeout: Duration,
    ) -> Reply {
        let mut reply = Reply::new(status, content_type, Vec::new());
        reply.stream = Some((pieces, write_timeout));
        reply
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Reply::new(status, "application/json", body)
    }

    pub fn error(status: u16, message: impl std::fmt::Display) -> Reply {
        Reply::json(status, &serde_json::json!({ "error": message.to_string() }))
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// One request, with the fields the admin listener decides on.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path as sent, without the query.
    pub path: String,
    pub target: String,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub accept_encoding: Option<String>,
    pub body: Vec<u8>,
    pub peer: Option<SocketAddr>,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
    /// A push body's place among [`PUSH_SLOTS`], held while it is served.
    pub(crate) slot: Option<tokio::sync::SemaphorePermit<'static>>,
}

/// Fields that must appear at most once: two `Origin`s or two tokens could
/// be read differently by a proxy in front and by levee.
const SINGLE: [&str; 6] = [
    "origin",
    "content-type",
    "authorization",
    "cookie",
    "x-csrf-token",
    "host",
];

impl Request {
    fn from_head(head: &RequestHead, body: Vec<u8>) -> Result<Request, Reply> {
        for name in SINGLE {
            let n = head
                .fields
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                .count();
            if n > 1 {
                return Err(Reply::error(400, format!("more than one {name} field")));
            }
        }
        let text = |name: &str| -> Result<Option<String>, Reply> {
            match head.fields.get(name) {
                None => Ok(None),
                Some(v) => std::str::from_utf8(v)
                    .map(|s| Some(s.trim().to_owned()))
                    .map_err(|_| Reply::error(400, format!("{name} is not UTF-8"))),
            }
        };
        let target = String::from_utf8_lossy(head.target()).into_owned();
        Ok(Request {
            method: String::from_utf8_lossy(head.method()).into_owned(),
            path: String::from_utf8_lossy(head.path()).into_owned(),
            host: head
                .host
                .map(|h| String::from_utf8_lossy(head.fields.span_of(h)).into_owned()),
            origin: text("origin")?,
            content_type: text("content-type")?,
            authorization: text("authorization")?,
            cookie: text("cookie")?,
            csrf: text("x-csrf-token")?,
            accept_encoding: text("accept-encoding")?,
            target,
            body,
            peer: None,
            local: None,
            slot: None,
        })
    }
}

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    crate::dash::Dash::start(&admin);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "admin listener busy: connection closed");
                    continue;
                };
                let admin = admin.clone();
                tokio::spawn(async move {
                    connection(stream, peer, admin).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, admin: Arc<Admin>) {
    let local = stream.local_addr().ok();
    let reply = match timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => Reply::error(408, "request timed out"),
        Ok(Err(reply)) => reply,
        Ok(Ok(mut request)) => {
            request.peer = Some(peer);
            request.local = local;
            admin.respond(&request).await
        }
    };
    write_reply(&mut stream, reply).await;
}

/// Fields on every answer: no browser may frame the dashboard or run
/// anything but its own scripts, and no answer is sniffed as another type.
const SECURITY: &str =
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n";

async fn write_reply(stream: &mut TcpStream, reply: Reply) {
    let length = match reply.stream {
        Some(_) => String::new(),
        None => format!("Content-Length: {}\r\n", reply.body.len()),
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n{length}Connection: close\r\n{SECURITY}Content-Security-Policy: {}\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        crate::dash::assets::CSP,
    );
    if !reply.headers.iter().any(|(n, _)| *n == "Cache-Control") {
        head.push_str("Cache-Control: no-store\r\n");
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&reply.body).await;
    if let Some((mut pieces, limit)) = reply.stream {
        while let Some(piece) = pieces.recv().await {
            match timeout(limit, stream.write_all(&piece)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// levee's reason phrases, and the ones only the admin listener uses.
fn reason(status: u16) -> &'static str {
    match status {
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        s => levee_http::h1::write::reason(s),
    }
}

/// Reads one request.
async fn read_request(stream: &mut TcpStream) -> Result<Request, Reply> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if !buf.is_empty() {
            match parse_request(&buf, 0, &LIMITS) {
                Ok(Parsed::Complete(parts, len)) => {
                    let head = parts.into_head(buf.split_to(len).freeze());
                    let limit = match head.path() {
                        b"/fleet/push" => MAX_PUSH_BODY,
                        _ => MAX_BODY,
                    };
                    let want = match head.framing {
                        Framing::None => 0,
                        Framing::Length(n) if n as usize <= limit => n as usize,
                        _ => return Err(Reply::error(413, "request body too large or chunked")),
                    };
                    let slot = match want > MAX_BODY {
                        true => match PUSH_SLOTS.try_acquire() {
                            Ok(slot) => Some(slot),
                            Err(_) => return Err(Reply::error(503, "another push is being read")),
                        },
                        false => None,
                    };
                    buf.reserve(want.saturating_sub(buf.len()));
                    while buf.len() < want {
                        match stream.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return Err(Reply::error(400, "incomplete body")),
                            Ok(_) => {}
                        }
                    }
                    let mut request = Request::from_head(&head, buf.split_to(want).to_vec())?;
                    request.slot = slot;
                    return Ok(request);
                }
                Ok(Parsed::Incomplete) => {}
                Err(e) => {
                    let message = e.to_string();
                    return Err(Reply::error(e.status(), message));
                }
            }
        }
        buf.reserve(1024);
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(Reply::error(400, "connection closed")),
            Ok(_) => {}
        }
    }
}
