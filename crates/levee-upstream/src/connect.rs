//! Opening a connection to a server: TCP, then TLS for an upstream with
//! `[upstream.NAME.tls]`, within the connect timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::GroupTls;
use crate::error::Fault;
use crate::stream::UpstreamStream;

/// Where one attempt goes: the server's address and how to speak to it.
#[derive(Debug, Clone, Copy)]
pub struct Dest<'a> {
    pub addr: SocketAddr,
    /// The group's TLS and the server as configured (for its name).
    pub tls: Option<(&'a GroupTls, &'a str)>,
    /// Written first on a new connection (`upstream.NAME.proxy_protocol`);
    /// such a connection speaks for one client and is never pooled.
    pub proxy_header: Option<&'a [u8]>,
}

/// Connects to `addr`, then runs the TLS handshake for a TLS upstream
/// (the server's name from `tls`), all within `limit`.
pub async fn connect(
    addr: SocketAddr,
    tls: Option<(&GroupTls, &str)>,
    limit: Duration,
) -> Result<UpstreamStream, Fault> {
    let connected = async {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        match tls {
            None => Ok(UpstreamStream::Plain(stream)),
            Some((tls, configured)) => {
                let s = tls
                    .connector
                    .connect(tls.name_for(configured), stream)
                    .await?;
                Ok(UpstreamStream::Tls(Box::new(s)))
            }
        }
    };
    match timeout(limit, connected).await {
        Err(_) => Err(Fault::ConnectTimeout),
        Ok(Err(e)) => Err(Fault::Connect(e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}
