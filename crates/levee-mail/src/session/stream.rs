//! The client's side of a mail session: plain TCP, or TLS from the first
//! byte (implicit TLS) or from STARTTLS on.
//!
//! STARTTLS swaps the plain socket for a TLS stream in the middle of the
//! pre-auth loop, so the stream can be gone: in the handshake's hands, and
//! after a failed handshake, when it is closed. Reads and writes then fail,
//! and the session ends as if the client had closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use levee_tls::{Acceptor, MaybeTls, TlsStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A mail listener's TLS: its acceptor (certificates by SNI, swapped on
/// reload) and how long a handshake may take.
#[derive(Debug, Clone)]
pub struct MailTls {
    pub acceptor: Arc<Acceptor>,
    pub handshake_timeout: Duration,
}

/// The client's stream; `None` only once handed to a handshake that failed.
pub struct ClientStream(Option<MaybeTls<TlsStream<TcpStream>>>);

impl ClientStream {
    pub fn plain(tcp: TcpStream) -> ClientStream {
        ClientStream(Some(MaybeTls::Plain(tcp)))
    }

    pub fn is_tls(&self) -> bool {
        self.0.as_ref().is_some_and(MaybeTls::is_tls)
    }

    /// The TLS session, once there is one.
    pub fn tls(&self) -> Option<&TlsStream<TcpStream>> {
        match &self.0 {
            Some(MaybeTls::Tls(s)) => Some(s),
            _ => None,
        }
    }

    /// Runs the server side of a TLS handshake on a plain stream, within
    /// `tls.handshake_timeout`. The stream is gone when it fails.
    pub async fn handshake(&mut self, tls: &MailTls) -> io::Result<()> {
        let Some(MaybeTls::Plain(tcp)) = self.0.take() else {
            return Err(io::Error::other("TLS over a stream that is not plain TCP"));
        };
        match tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(tcp)).await {
            Ok(Ok(s)) => {
                self.0 = Some(MaybeTls::Tls(Box::new(s)));
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut MaybeTls<TlsStream<TcpStream>>>> {
        self.0
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().stream()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream()?.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream()?.poll_shutdown(cx)
    }
}
