//! TLS termination shared by levee's front ends (HTTP, and the mail proxy's
//! implicit TLS and STARTTLS).
//!
//! ```text
//! Settings (paths) ──load──▶ Certs by name ──build──▶ rustls ServerConfig ──▶ Acceptor::accept(tcp)
//!                    └── files re-read on reload or when their mtime changes; a bad file keeps the old config
//! ```
//!
//! A front end makes one [`Acceptor`] per listener and hands it each
//! accepted socket (or, for STARTTLS, the socket once the client asked):
//!
//! ```no_run
//! # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
//! use levee_tls::{Acceptor, CertSettings, Settings};
//! let acceptor = Acceptor::new(Settings {
//!     certs: vec![CertSettings {
//!         cert: "mail.pem".into(),
//!         key: "mail.key".into(),
//!         names: vec!["mail.example.com".into()],
//!         ocsp: None,
//!     }],
//!     client_ca: None,
//!     alpn: vec![],
//!     auto: false,
//! })?;
//! let tls = acceptor.accept(tcp).await?; // AsyncRead + AsyncWrite
//! # drop(tls); Ok(()) }
//! ```
//!
//! [`Acceptor::replace`] and [`Acceptor::refresh`] reload it in place.
//! [`Connector`] is the client side, for servers levee connects to, and
//! [`MaybeTls`] a TCP stream with or without TLS, for either side.
//!
//! A listener with `auto` set also serves the certificates levee obtains
//! itself ([`auto`], filled by crates/levee-acme) and answers ACME's
//! TLS-ALPN-01 challenges in the handshake ([`challenge`]).
//!
//! Only TLS 1.2 and 1.3 with rustls' `ring` provider. The certificate for a
//! handshake is chosen by SNI ([`sni`]); session tickets are sealed with
//! rotating keys that outlive reloads, so a client can resume across them.

mod acceptor;
pub mod auto;
pub mod challenge;
mod connector;
pub mod der;
mod error;
pub mod expiry;
mod load;
mod settings;
pub mod sni;
mod stream;

pub use acceptor::{Acceptor, TlsStream};
pub use connector::{ClientSettings, ClientTlsStream, Connector};
pub use error::TlsError;
pub use load::certified_pem;
pub use rustls::sign::CertifiedKey;
pub use settings::{CertSettings, Settings};
pub use stream::{MaybeTls, OverTcp};

#[cfg(test)]
mod tests;
