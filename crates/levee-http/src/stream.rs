//! The client's side of a connection: plain TCP, TLS over TCP
//! (`levee_tls::MaybeTls`), or one HTTP/2 stream seen as an HTTP/1 byte
//! stream (`http2::Pipe`); and what the relay needs of any socket.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::http2::Pipe;

/// A connected client socket.
pub type ClientStream = levee_tls::MaybeTls<Secure>;

/// What sits in `ClientStream::Tls`: a stream that is not bare TCP. An
/// HTTP/2 stream goes here too: like TLS, it must be read and written
/// through (no readiness on the socket, no `sendfile`).
// Always behind `MaybeTls::Tls`'s box: boxing the TLS variant again would
// cost TLS connections a second allocation and pointer chase.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Secure {
    Tls(levee_tls::TlsStream<TcpStream>),
    Http2(Pipe),
}

/// The client reached levee over TLS (for `X-Forwarded-Proto`).
pub fn is_https(stream: &ClientStream) -> bool {
    match stream {
        ClientStream::Plain(_) => false,
        ClientStream::Tls(s) => match s.as_ref() {
            Secure::Tls(_) => true,
            Secure::Http2(p) => p.https,
        },
    }
}

/// The protocol the TLS handshake agreed on is HTTP/2.
pub fn negotiated_h2(stream: &ClientStream) -> bool {
    match stream {
        ClientStream::Tls(s) => match s.as_ref() {
            Secure::Tls(t) => t.get_ref().1.alpn_protocol() == Some(b"h2"),
            Secure::Http2(_) => false,
        },
        ClientStream::Plain(_) => false,
    }
}

impl levee_tls::OverTcp for Secure {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Secure::Tls(t) => t.tcp(),
            Secure::Http2(_) => None,
        }
    }

    fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Secure::Tls(t) => t.fd(),
            Secure::Http2(p) => p.fd,
        }
    }
}

/// The address the client connected to (for PROXY headers to upstreams).
pub fn local_addr(stream: &ClientStream) -> Option<std::net::SocketAddr> {
    match stream {
        ClientStream::Tls(s) if let Secure::Http2(p) = s.as_ref() => p.local,
        _ => stream.tcp().and_then(|t| t.local_addr().ok()),
    }
}

impl AsyncRead for Secure {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Secure::Tls(t) => Pin::new(t).poll_read(cx, buf),
            Secure::Http2(p) => Pin::new(&mut p.io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Secure {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Secure::Tls(t) => Pin::new(t).poll_write(cx, buf),
            Secure::Http2(p) => Pin::new(&mut p.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Secure::Tls(t) => Pin::new(t).poll_flush(cx),
            Secure::Http2(p) => Pin::new(&mut p.io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Secure::Tls(t) => Pin::new(t).poll_shutdown(cx),
            Secure::Http2(p) => Pin::new(&mut p.io).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Secure::Tls(t) => Pin::new(t).poll_write_vectored(cx, bufs),
            Secure::Http2(p) => Pin::new(&mut p.io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Secure::Tls(t) => t.is_write_vectored(),
            Secure::Http2(p) => p.io.is_write_vectored(),
        }
    }
}

/// Waits for the next request's first bytes. Plain TCP waits for
/// readiness only, so an idle connection holds no buffer. TLS reads into
/// `buf`: rustls may already hold decrypted bytes that the socket will
/// never signal again. An end of stream is an error.
pub async fn ready(stream: &mut ClientStream, buf: &mut BytesMut) -> io::Result<()> {
    match stream {
        ClientStream::Plain(s) => s.readable().await,
        ClientStream::Tls(s) => {
            buf.reserve(4096);
            match s.read_buf(buf).await? {
                0 => Err(io::ErrorKind::UnexpectedEof.into()),
                _ => Ok(()),
            }
        }
    }
}

/// What `pace` and `body` need of a socket: async bytes, the descriptor that
/// identifies the paced client, and an abortive close.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + AsRawFd {
    /// Makes close send a reset (see `pace::cut`).
    fn set_zero_linger(&self) -> io::Result<()>;

    /// Written bytes may wait in user space until flushed (TLS records).
    fn buffers_writes(&self) -> bool {
        false
    }
}

impl Socket for TcpStream {
    fn set_zero_linger(&self) -> io::Result<()> {
        TcpStream::set_zero_linger(self)
    }
}

impl<T> Socket for levee_tls::MaybeTls<T>
where
    T: levee_tls::OverTcp + AsyncRead + AsyncWrite + Unpin,
{
    /// An HTTP/2 stream has no socket of its own: its cut is a stream reset.
    fn set_zero_linger(&self) -> io::Result<()> {
        match self.tcp() {
            Some(tcp) => tcp.set_zero_linger(),
            None => Ok(()),
        }
    }

    fn buffers_writes(&self) -> bool {
        self.is_tls()
    }
}
