//! The admin listener: one request per connection, parsed with levee's
//! HTTP/1 parser, answered by [`crate::api`] or [`crate::metrics`].

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use levee_http::Shared;
use levee_http::h1::{HeadLimits, Parsed, parse_request};
use levee_http::message::Framing;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A whole admin request must arrive within this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body (a weight change is a few bytes).
const MAX_BODY: usize = 4096;
const LIMITS: HeadLimits = HeadLimits {
    max_request_line: 2048,
    max_header_bytes: 16 * 1024,
    max_headers: 50,
};

/// A response from the API: status, content type, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Reply {
            status,
            content_type: "application/json",
            body,
        }
    }

    pub fn error(status: u16, message: impl std::fmt::Display) -> Reply {
        Reply::json(status, &serde_json::json!({ "error": message.to_string() }))
    }
}

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, shared.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let reply = match timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => Reply::error(408, "request timed out"),
        Ok(Err(reply)) => reply,
        Ok(Ok((method, target, body))) => crate::api::handle(&shared, &method, &target, &body),
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        reply.status,
        levee_http::h1::write::reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&reply.body).await;
    let _ = stream.shutdown().await;
}

/// Method, target and body of one request.
async fn read_request(stream: &mut TcpStream) -> Result<(String, String, Vec<u8>), Reply> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if !buf.is_empty() {
            match parse_request(&buf, 0, &LIMITS) {
                Ok(Parsed::Complete(parts, len)) => {
                    let head = parts.into_head(buf.split_to(len).freeze());
                    let want = match head.framing {
                        Framing::None => 0,
                        Framing::Length(n) if n as usize <= MAX_BODY => n as usize,
                        _ => return Err(Reply::error(413, "request body too large or chunked")),
                    };
                    while buf.len() < want {
                        match stream.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return Err(Reply::error(400, "incomplete body")),
                            Ok(_) => {}
                        }
                    }
                    let method = String::from_utf8_lossy(head.method()).into_owned();
                    let target = String::from_utf8_lossy(head.target()).into_owned();
                    return Ok((method, target, buf.split_to(want).to_vec()));
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
