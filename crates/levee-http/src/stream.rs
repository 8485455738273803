//! The client's socket: plain TCP, or TLS over TCP (`levee_tls::MaybeTls`);
//! and what the relay needs of any socket.

use std::io;
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

/// A connected client socket.
pub(crate) type ClientStream = levee_tls::MaybeTls<Secure>;

/// What sits in `ClientStream::Tls`: rustls over the TCP socket.
pub(crate) type Secure = levee_tls::TlsStream<TcpStream>;

/// The client reached levee over TLS (for `X-Forwarded-Proto`).
pub(crate) fn is_https(stream: &ClientStream) -> bool {
    stream.is_tls()
}

/// The protocol the TLS handshake agreed on is HTTP/2.
pub(crate) fn negotiated_h2(stream: &ClientStream) -> bool {
    match stream {
        ClientStream::Tls(t) => t.get_ref().1.alpn_protocol() == Some(b"h2"),
        ClientStream::Plain(_) => false,
    }
}

/// The address the client connected to (for PROXY headers to upstreams).
pub(crate) fn local_addr(stream: &ClientStream) -> Option<std::net::SocketAddr> {
    stream.tcp().and_then(|t| t.local_addr().ok())
}

/// Waits for the next request's first bytes. Plain TCP waits for
/// readiness only, so an idle connection holds no buffer. TLS reads into
/// `buf`: rustls may already hold decrypted bytes that the socket will
/// never signal again. An end of stream is an error.
pub(crate) async fn ready(stream: &mut ClientStream, buf: &mut BytesMut) -> io::Result<()> {
    match stream {
        ClientStream::Plain(s) => s.readable().await,
        ClientStream::Tls(s) => {
            if buf.capacity() == 0 {
                *buf = crate::reuse::read_buf(crate::reuse::Read::Client, 4096);
            } else {
                buf.reserve(4096);
            }
            match s.read_buf(buf).await? {
                0 => Err(io::ErrorKind::UnexpectedEof.into()),
                _ => Ok(()),
            }
        }
    }
}

/// What `pace` and `body` need of a socket: async bytes, the descriptor that
/// identifies the paced client, and an abortive close.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + AsRawFd {
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
