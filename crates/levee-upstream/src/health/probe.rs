//! The probes themselves: a TCP connect, or an HTTP/1.1 request whose
//! status (and optionally body) decides.

use std::net::SocketAddr;

use levee_config::{CheckKind, HttpCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most of a check response read (head and body).
const MAX_RESPONSE: usize = 64 * 1024;

/// Probes `addr` once; `host` is the server as configured (the `Host` sent).
/// The caller bounds it in time.
pub async fn probe(addr: SocketAddr, host: String, kind: CheckKind) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    match kind {
        CheckKind::Tcp => true,
        CheckKind::Http(check) => http(&mut stream, &host, &check).await,
    }
}

async fn http(stream: &mut TcpStream, host: &str, check: &HttpCheck) -> bool {
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: levee-health-check\r\nConnection: close\r\n\r\n",
        check.method, check.path
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(4096);
    loop {
        if buf.len() >= MAX_RESPONSE {
            break;
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                // Without a body to look for, the status line is enough.
                if check.body.is_none() && buf.windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
            Err(_) => return false,
        }
    }
    judge(&buf, check)
}

/// Whether a (possibly partial) response passes `check`.
pub(crate) fn judge(response: &[u8], check: &HttpCheck) -> bool {
    let Some(status) = status_of(response) else {
        return false;
    };
    if !(check.status.0..=check.status.1).contains(&status) {
        return false;
    }
    match &check.body {
        None => true,
        Some(needle) => {
            let body = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .and_then(|at| response.get(at + 4..))
                .unwrap_or_default();
            memfind(body, needle.as_bytes())
        }
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let rest = response.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
