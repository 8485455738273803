//! A connection to a server: plain TCP, or TLS over TCP for an upstream
//! with `[upstream.NAME.tls]` (see `levee_tls::MaybeTls`).

use tokio::net::TcpStream;

pub type UpstreamStream = levee_tls::MaybeTls<levee_tls::ClientTlsStream<TcpStream>>;
