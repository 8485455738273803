//! A connection's first steps, before any HTTP: the PROXY protocol header
//! from a trusted load balancer, then the TLS handshake. Each step is
//! bounded in time and a failure closes the connection without a reply.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::exchange::Client;
use crate::listener::{FirstSteps, ListenerCtx, ListenerTls};
use crate::proxy_protocol::{self, Header, Parsed};
use crate::stream::ClientStream;

/// Runs the steps the listener asks for; `None` when the client is dropped.
pub(super) async fn begin(
    mut client: Client,
    listener: &ListenerCtx,
    steps: &FirstSteps,
) -> Option<Client> {
    if let Some(trusted) = &steps.proxy_protocol
        && trusted.permits(client.peer.ip())
    {
        client = proxy_header(client, listener).await?;
    }
    if let Some(tls) = &steps.tls {
        client = handshake(client, tls).await?;
    }
    Some(client)
}

/// Takes the client's address from the PROXY header a trusted source must
/// send, and admits the connection for that client: its allow/deny list
/// and limits apply to the client, not to the load balancer (the accept
/// loop left the connection unadmitted). A header without an address
/// (`LOCAL`, `UNKNOWN`) is admitted for the load balancer itself.
async fn proxy_header(mut client: Client, listener: &ListenerCtx) -> Option<Client> {
    let ClientStream::Plain(tcp) = &mut client.stream else {
        return Some(client);
    };
    let limit = listener.shared.site.load().timeouts.request_head;
    let header = match timeout(limit, read_header(tcp)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::debug!(peer = %client.peer, error = %e, "bad PROXY protocol header");
            return None;
        }
        Err(_) => {
            tracing::debug!(peer = %client.peer, "no PROXY protocol header in time");
            return None;
        }
    };
    let source = header.source.unwrap_or(client.peer);
    drop(client.permit.take());
    let site = listener.shared.site.load();
    match listener
        .conns
        .admit(source.ip(), site.conn_limits(listener.addr))
    {
        Ok(permit) => client.permit = Some(permit),
        Err(why) => {
            tracing::debug!(peer = %source, reason = why.as_str(), "connection refused");
            return None;
        }
    }
    client.peer = source;
    Some(client)
}

/// Reads exactly the PROXY header, leaving what follows (a TLS ClientHello,
/// a request) in the socket. It peeks until the header is complete: a
/// sender writes it in one segment, so the short wait between peeks of an
/// incomplete header is hardly ever taken.
async fn read_header(tcp: &mut TcpStream) -> io::Result<Header> {
    let mut buf = vec![0u8; proxy_protocol::V2_MAX];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match proxy_protocol::parse(buf.get(..n).unwrap_or_default()) {
            Ok(Parsed::Complete(h)) => {
                let header = buf.get_mut(..h.len).unwrap_or_default();
                tcp.read_exact(header).await?;
                return Ok(h);
            }
            // Peeking again at once would see the same bytes.
            Ok(Parsed::Incomplete) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// The TLS handshake, within the listener's `handshake_timeout`.
async fn handshake(client: Client, tls: &ListenerTls) -> Option<Client> {
    let Client {
        stream,
        peer,
        buf,
        permit,
        hsts,
    } = client;
    let ClientStream::Plain(tcp) = stream else {
        return Some(Client {
            stream,
            peer,
            buf,
            permit,
            hsts,
        });
    };
    match timeout(tls.handshake_timeout, tls.acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(Client {
            stream: ClientStream::Tls(Box::new(s)),
            peer,
            buf,
            permit,
            hsts: tls.hsts,
        }),
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}

/// The connection preface an h2c client with prior knowledge opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An empty SETTINGS frame (the server's connection preface, RFC 9113
/// §3.4), then GOAWAY with last stream 0 and PROTOCOL_ERROR.
const GOAWAY_PROTOCOL_ERROR: [u8; 26] = [
    0, 0, 0, 4, 0, 0, 0, 0, 0, // SETTINGS, no payload
    0, 0, 8, 7, 0, 0, 0, 0, 0, // GOAWAY, 8 bytes, stream 0
    0, 0, 0, 0, // last stream id
    0, 0, 0, 1, // PROTOCOL_ERROR
];

/// On a cleartext listener that accepts h2c, whether the client opened
/// with the HTTP/2 preface. It only peeks, so an HTTP/1 request stays in
/// the socket for the HTTP/1 loop. `None`: the client sent nothing within
/// `timeouts.request_head`, or closed; it is dropped. On an HTTP/2-only
/// listener (`http2 = "only"`) a client that opens otherwise is told
/// GOAWAY PROTOCOL_ERROR (§3.4: an invalid preface is a connection error)
/// rather than answered in HTTP/1.1, and dropped.
pub(super) async fn h2c_preface(client: &mut Client, listener: &ListenerCtx) -> Option<bool> {
    let ClientStream::Plain(tcp) = &mut client.stream else {
        return Some(false);
    };
    let only = listener.steps.load().h2_only;
    let limit = listener.shared.site.load().timeouts.request_head;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 24];
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return None,
        };
        let seen = buf.get(..n).unwrap_or_default();
        if !H2_PREFACE.starts_with(seen) {
            if only {
                tracing::debug!(peer = %client.peer, "no HTTP/2 preface on an HTTP/2-only listener");
                let send = tokio::time::timeout(limit, tcp.write_all(&GOAWAY_PROTOCOL_ERROR));
                if matches!(send.await, Ok(Ok(()))) {
                    // What the client sent is read and dropped, so that the
                    // close does not reset the connection before it reads
                    // the GOAWAY.
                    crate::respond::linger(tcp).await;
                }
                return None;
            }
            return Some(false);
        }
        if n == H2_PREFACE.len() {
            return Some(true);
        }
        // Peeking again at once would see the same bytes.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
