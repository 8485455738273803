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
