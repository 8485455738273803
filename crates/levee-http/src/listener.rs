//! What a listener gives each of its connections: its address (which
//! selects its routes), the process's shared state, its connection counts,
//! and the steps its connections take before HTTP (PROXY header, TLS,
//! HTTP/2 preface), swapped whole on reload.

pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use levee_protect::ConnTable;

use crate::Shared;

/// What a listener gives each of its connections.
#[derive(Debug)]
pub struct ListenerCtx {
    /// The address the listener is bound to, as configured (selects its routes).
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    /// Its open connections, counted for the connection limits; lives as
    /// long as the listener, across reloads.
    pub conns: Arc<ConnTable>,
    /// What its new connections do before HTTP; swapped whole on reload.
    pub steps: arc_swap::ArcSwap<FirstSteps>,
}

/// A listener's steps before HTTP (conn/start.rs).
#[derive(Debug, Default)]
pub struct FirstSteps {
    /// Set on a TLS listener: every connection starts with a handshake.
    pub tls: Option<ListenerTls>,
    /// The sources that must start with a PROXY protocol header; `None`
    /// when the listener takes it from no one.
    pub proxy_protocol: Option<levee_protect::Acl>,
    /// Cleartext connections that open with the HTTP/2 preface speak
    /// HTTP/2 (h2c with prior knowledge, `http2 = "prior-knowledge"`).
    pub h2c: bool,
    /// `http2 = "only"`: those that do not are refused with GOAWAY
    /// PROTOCOL_ERROR (conn/start.rs).
    pub h2_only: bool,
}

/// A TLS listener's acceptor; it swaps its certificates itself on reload.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub acceptor: Arc<levee_tls::Acceptor>,
    pub handshake_timeout: std::time::Duration,
    /// `Strict-Transport-Security: max-age` in seconds, when configured.
    pub hsts: Option<u64>,
}

impl ListenerCtx {
    pub fn new(addr: SocketAddr, shared: Arc<Shared>) -> ListenerCtx {
        ListenerCtx {
            addr,
            shared,
            conns: ConnTable::new(addr.to_string()),
            steps: Default::default(),
        }
    }
}
