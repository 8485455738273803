//! The client's side of a connection: plain TCP or TLS over TCP.
//!
//! An enum rather than a trait object: two concrete cases on the hot path,
//! and a plain connection pays one branch, nothing more. The TLS state is
//! boxed so a plain connection's `Client` stays small.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connected client socket.
#[derive(Debug)]
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<levee_tls::TlsStream<TcpStream>>),
}

impl ClientStream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(s) => s.get_ref().0,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    /// Waits for the next request's first bytes. Plain TCP waits for
    /// readiness only, so an idle connection holds no buffer. TLS reads
    /// into `buf`: rustls may already hold decrypted bytes that the socket
    /// will never signal again. An end of stream is an error.
    pub async fn ready(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
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

    /// Readiness of the socket underneath, for parking (idle.rs). A parked
    /// TLS connection holds no undelivered plaintext: it parks only after a
    /// read through rustls found nothing.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_read_ready(cx)
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

impl Socket for ClientStream {
    fn set_zero_linger(&self) -> io::Result<()> {
        self.tcp().set_zero_linger()
    }

    fn buffers_writes(&self) -> bool {
        self.is_tls()
    }
}

impl AsRawFd for ClientStream {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
