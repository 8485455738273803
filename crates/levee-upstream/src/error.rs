//! The one upstream error model: why an exchange with a server failed,
//! who caused it, and what the client gets.
//!
//! Every forwarded request that does not end in a relayed response ends in
//! a [`Fault`], whatever the protocols on either side: levee-http's forward
//! loop makes them, passive health reads [`Fault::kind`] (passive.rs), the
//! retry policy reads the rest (retry.rs), and the client gets
//! [`Fault::status`] (or nothing, when it went away).
//!
//! | fault | cause | status | the server's error kind |
//! |---|---|---|---|
//! | `Connect` | network | 502 | connect |
//! | `ConnectTimeout` | network | 504 | connect_timeout |
//! | `Write`, `Read` | network | 502 | reset |
//! | `Closed` | upstream | 502 | reset |
//! | `WriteTimeout`, `ReadTimeout` | upstream | 504 | timeout |
//! | `BadHead` | upstream | 502 | protocol |
//! | `NoServer` | levee | 503 | — |
//! | `Unfit` | client | 400 | — |
//! | `ClientBody` | client | 400, 408 or 413 | — |
//! | `ClientGone` | client | 499 (nothing sent) | — |

use std::io;

use crate::stats::ErrorKind;

/// Who caused a failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The client: it went away, or its request cannot be forwarded, or its
    /// body broke off, stalled or ran over a limit.
    Client,
    /// levee itself: no server of the upstream may take a request.
    Levee,
    /// The way to the server: it could not be reached, or the connection
    /// broke under a read or a write.
    Network,
    /// The server: it closed before answering, took too long, or answered
    /// something malformed.
    Upstream,
}

/// Why an exchange with an upstream server failed.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("write: {0}")]
    Write(io::Error),
    #[error("write timed out")]
    WriteTimeout,
    #[error("read: {0}")]
    Read(io::Error),
    #[error("read timed out")]
    ReadTimeout,
    /// Closed (or, over HTTP/2, reset) before a response head.
    #[error("closed before a response")]
    Closed,
    #[error("malformed response head: {0}")]
    BadHead(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No server of the upstream may take a request.
    #[error("no server available")]
    NoServer,
    /// The request has something the upstream's protocol cannot carry.
    #[error("cannot forward: {0}")]
    Unfit(&'static str),
    /// The request body broke off, stalled, or was malformed or too large;
    /// `status` is what the client is told.
    #[error("request body: {why}")]
    ClientBody {
        status: u16,
        #[source]
        why: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The client went away while levee worked for it.
    #[error("the client went away")]
    ClientGone,
}

impl Fault {
    /// Who caused it.
    pub fn cause(&self) -> Cause {
        match self {
            Fault::Connect(_) | Fault::ConnectTimeout | Fault::Write(_) | Fault::Read(_) => {
                Cause::Network
            }
            Fault::WriteTimeout | Fault::ReadTimeout | Fault::Closed | Fault::BadHead(_) => {
                Cause::Upstream
            }
            Fault::NoServer => Cause::Levee,
            Fault::Unfit(_) | Fault::ClientBody { .. } | Fault::ClientGone => Cause::Client,
        }
    }

    /// The status the client gets (499, for the log, when it went away).
    pub fn status(&self) -> u16 {
        match self {
            Fault::ConnectTimeout | Fault::WriteTimeout | Fault::ReadTimeout => 504,
            Fault::NoServer => 503,
            Fault::Unfit(_) => 400,
            Fault::ClientBody { status, .. } => *status,
            Fault::ClientGone => 499,
            _ => 502,
        }
    }

    /// What it counts as in the server's metrics; `None` when the server
    /// had no part in it (it is then not charged to its passive health).
    pub fn kind(&self) -> Option<ErrorKind> {
        Some(match self {
            Fault::Connect(_) => ErrorKind::Connect,
            Fault::ConnectTimeout => ErrorKind::ConnectTimeout,
            Fault::Write(_) | Fault::Read(_) | Fault::Closed => ErrorKind::Reset,
            Fault::WriteTimeout | Fault::ReadTimeout => ErrorKind::Timeout,
            Fault::BadHead(_) => ErrorKind::Protocol,
            Fault::NoServer | Fault::Unfit(_) | Fault::ClientBody { .. } | Fault::ClientGone => {
                return None;
            }
        })
    }

    /// A fault that a stale pooled connection produces before any response
    /// byte: the server closed it while it sat idle, as servers may.
    pub fn stale_connection(&self) -> bool {
        matches!(self, Fault::Write(_) | Fault::Read(_) | Fault::Closed)
    }

    /// Whether the request may go to another server after this fault (see
    /// retry.rs for the whole rule): always when nothing reached the server;
    /// after a reset or close before any response byte, if the body can be
    /// sent again and the method is idempotent or the connection came from
    /// the pool; never after a timeout (the server may be working on it) or
    /// an answer, nor for what the client or levee caused.
    pub fn may_move(&self, body_resendable: bool, idempotent: bool, reused: bool) -> bool {
        match self {
            Fault::Connect(_) | Fault::ConnectTimeout => true,
            Fault::Write(_) | Fault::Read(_) | Fault::Closed => {
                body_resendable && (idempotent || reused)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_says_who_and_what_the_client_gets() {
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        let body = |status| Fault::ClientBody {
            status,
            why: "stalled".into(),
        };
        let cases: [(Fault, Cause, u16, Option<ErrorKind>); 13] = [
            (
                Fault::Connect(io()),
                Cause::Network,
                502,
                Some(ErrorKind::Connect),
            ),
            (
                Fault::ConnectTimeout,
                Cause::Network,
                504,
                Some(ErrorKind::ConnectTimeout),
            ),
            (
                Fault::Write(io()),
                Cause::Network,
                502,
                Some(ErrorKind::Reset),
            ),
            (
                Fault::Read(io()),
                Cause::Network,
                502,
                Some(ErrorKind::Reset),
            ),
            (Fault::Closed, Cause::Upstream, 502, Some(ErrorKind::Reset)),
            (
                Fault::WriteTimeout,
                Cause::Upstream,
                504,
                Some(ErrorKind::Timeout),
            ),
            (
                Fault::ReadTimeout,
                Cause::Upstream,
                504,
                Some(ErrorKind::Timeout),
            ),
            (
                Fault::BadHead("no status".into()),
                Cause::Upstream,
                502,
                Some(ErrorKind::Protocol),
            ),
            (Fault::NoServer, Cause::Levee, 503, None),
            (Fault::Unfit("the method"), Cause::Client, 400, None),
            (body(408), Cause::Client, 408, None),
            (body(413), Cause::Client, 413, None),
            (Fault::ClientGone, Cause::Client, 499, None),
        ];
        for (fault, cause, status, kind) in cases {
            assert_eq!(fault.cause(), cause, "{fault}");
            assert_eq!(fault.status(), status, "{fault}");
            assert_eq!(fault.kind(), kind, "{fault}");
        }
    }

    #[test]
    fn only_a_request_the_server_may_not_have_acted_on_moves() {
        let reset = Fault::Read(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(Fault::ConnectTimeout.may_move(false, false, false));
        assert!(reset.may_move(true, true, false));
        assert!(reset.may_move(true, false, true), "a pooled connection");
        assert!(!reset.may_move(true, false, false), "a fresh POST");
        assert!(!reset.may_move(false, true, true), "a streamed body");
        assert!(!Fault::ReadTimeout.may_move(true, true, true));
        assert!(!Fault::ClientGone.may_move(true, true, true));
        assert!(reset.stale_connection() && Fault::Closed.stale_connection());
        assert!(!Fault::ConnectTimeout.stale_connection());
    }
}
