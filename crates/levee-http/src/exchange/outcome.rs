//! How an exchange ended, as the access log and the connection need it.

use std::net::SocketAddr;
use std::time::Duration;

/// What happens to the connection after an exchange (HTTP/1; an HTTP/2
/// stream ends with its exchange whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// Close after draining what the client still sends (after an error).
    Linger,
}

/// The outcome of an exchange: its log line's figures and what the
/// connection does next.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The status the client got (499: it went away first).
    pub status: u16,
    /// Body bytes the client was given.
    pub bytes: u64,
    /// From the first attempt at a server to the end of its response.
    pub upstream_time: Option<Duration>,
    /// The server that answered (or failed last).
    pub upstream: Option<SocketAddr>,
    pub next: Next,
}

impl Outcome {
    /// `status` without a body of note or a server.
    pub fn of(status: u16, next: Next) -> Outcome {
        Outcome {
            status,
            bytes: 0,
            upstream_time: None,
            upstream: None,
            next,
        }
    }

    /// An exchange that stays the last on its connection or stream.
    pub fn ended(status: u16) -> Outcome {
        Outcome::of(status, Next::Close)
    }
}

/// How an exchange relayed to an HTTP/2 server ended (the forward loop
/// settles it: passive health, metrics, the status for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The response went out whole, trailers included.
    Complete,
    /// The client went away: an HTTP/2 client reset its stream or its
    /// connection ended, an HTTP/1 client closed (the server's stream was
    /// cancelled).
    ClientGone,
    /// The server reset the stream or its connection was lost (an HTTP/2
    /// client's stream was reset too).
    UpstreamReset,
    /// No response head came: levee answered with this status.
    Answered(u16),
    /// The server's error status has a page the route puts in its place
    /// (`intercept_errors`): nothing of the response went out, and the
    /// server's stream was cancelled rather than read (its connection
    /// carries on). The exchange is left for the page.
    Intercepted,
}

/// A stream relayed to an HTTP/2 server, as the exchange's end saw it.
#[derive(Debug, Clone, Copy)]
pub struct Relayed {
    pub end: StreamEnd,
    /// The server's status; 0 before its response head.
    pub status: u16,
    /// Response body bytes passed to the client.
    pub bytes: u64,
    /// What an HTTP/1 client's connection does next.
    pub next: Next,
}
