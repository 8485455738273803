//! Whether a failed request goes on, and where: once more on a fresh
//! connection to the same server, to another server, or nowhere.
//!
//! ```text
//! fault (error.rs) ─▶ a reused connection that may just have been stale? ─▶ once more, fresh
//!                  ─▶ may the request move (Fault::may_move, or nothing was sent)?
//!                       ─▶ another server within `retries` and the retry budget (budget.rs)
//!                  ─▶ else: the client gets the fault's status
//! a 502/503/504 answer (`retry_on_status`) ─▶ another server, for an idempotent
//!                  request whose whole body can be sent again
//! ```
//!
//! Passive health is fed apart from this (passive.rs): a fault moved to a
//! fresh connection is not the server's; every other one of the server's
//! making is.

use tokio::time::Instant;

use crate::error::Fault;
use crate::{Affinity, Group, Members};

/// Most servers one request tries (the config caps `retries` at 16).
const MAX_TRIES: usize = 17;

/// Methods that may be sent twice (RFC 9110 §9.2.2).
pub fn idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

/// What the forward loop knows of the attempt that failed.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// The connection came from the pool (or is a shared HTTP/2 one).
    pub reused: bool,
    /// This attempt was already the fresh retry of a stale connection.
    pub fresh_only: bool,
    /// Nothing of the request reached the server: an HTTP/2 stream whose
    /// HEADERS were never handed to a connection.
    pub nothing_sent: bool,
    /// The whole body is in levee and can be sent again.
    pub body_resendable: bool,
    /// The method may be sent twice.
    pub idempotent: bool,
}

/// Where a failed request goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The same server, on a new connection: the reused one was likely
    /// closed by the server while idle, which says nothing of its health.
    Fresh,
    /// Another server, if the count and the budget allow one.
    Elsewhere,
    /// Nowhere: the client gets the fault's status.
    Stop,
}

/// The retry rule for `fault` after `attempt`.
pub fn after_fault(fault: &Fault, attempt: &Attempt) -> Retry {
    let stale = attempt.nothing_sent || (attempt.body_resendable && fault.stale_connection());
    if attempt.reused && !attempt.fresh_only && stale {
        return Retry::Fresh;
    }
    let moves = fault.kind().is_some()
        && (attempt.nothing_sent
            || fault.may_move(attempt.body_resendable, attempt.idempotent, attempt.reused));
    if moves { Retry::Elsewhere } else { Retry::Stop }
}

/// Whether an answer with `status` sends the request to another server:
/// the upstream lists it in `retry_on_status`, and the request may be sent
/// again whole.
pub fn on_status(group: &Group, status: u16, idempotent: bool, body_resendable: bool) -> bool {
    idempotent && body_resendable && group.config.retry.on_status.contains(&status)
}

/// The servers a request has tried, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Tried {
    list: [usize; MAX_TRIES],
    len: usize,
}

impl Default for Tried {
    fn default() -> Tried {
        Tried::new()
    }
}

impl Tried {
    pub fn new() -> Tried {
        Tried {
            list: [usize::MAX; MAX_TRIES],
            len: 0,
        }
    }

    pub fn push(&mut self, i: usize) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = i;
            self.len += 1;
        }
    }

    /// No server tried yet: the first attempt.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_slice(&self) -> &[usize] {
        self.list.get(..self.len).unwrap_or_default()
    }
}

/// Another server for a request that failed on the servers in `tried`, if
/// the per-request count and the upstream's retry budget allow one.
pub fn next_server(
    group: &Group,
    members: &Members,
    affinity: Affinity,
    tried: &Tried,
) -> Option<usize> {
    if tried.len > group.config.retry.retries as usize {
        return None;
    }
    let now = Instant::now();
    let next = group.pick(members, affinity, tried.as_slice(), now)?;
    group.budget.try_retry(now).then_some(next)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn attempt() -> Attempt {
        Attempt {
            reused: false,
            fresh_only: false,
            nothing_sent: false,
            body_resendable: true,
            idempotent: true,
        }
    }

    #[test]
    fn idempotence() {
        assert!(idempotent(b"GET"));
        assert!(idempotent(b"PUT"));
        assert!(!idempotent(b"POST"));
        assert!(!idempotent(b"PATCH"));
    }

    #[test]
    fn a_stale_pooled_connection_is_tried_once_more_fresh() {
        let reset = Fault::Write(io::Error::from(io::ErrorKind::BrokenPipe));
        let pooled = Attempt {
            reused: true,
            ..attempt()
        };
        assert_eq!(after_fault(&reset, &pooled), Retry::Fresh);
        let again = Attempt {
            fresh_only: true,
            ..pooled
        };
        assert_eq!(after_fault(&reset, &again), Retry::Elsewhere);
        // A streamed body cannot be sent again, on any connection.
        let streamed = Attempt {
            body_resendable: false,
            ..pooled
        };
        assert_eq!(after_fault(&reset, &streamed), Retry::Stop);
        // A timeout is no sign of staleness.
        assert_eq!(after_fault(&Fault::ReadTimeout, &pooled), Retry::Stop);
    }

    #[test]
    fn an_http2_stream_that_never_went_out_always_moves() {
        let shared = Attempt {
            reused: true,
            nothing_sent: true,
            body_resendable: false,
            idempotent: false,
            ..attempt()
        };
        assert_eq!(after_fault(&Fault::ConnectTimeout, &shared), Retry::Fresh);
        let fresh = Attempt {
            fresh_only: true,
            ..shared
        };
        let reset = Fault::Write(io::Error::other("GOAWAY"));
        assert_eq!(after_fault(&reset, &fresh), Retry::Elsewhere);
    }

    #[test]
    fn what_the_client_or_levee_caused_never_moves() {
        for fault in [Fault::ClientGone, Fault::NoServer, Fault::Unfit("x")] {
            assert_eq!(after_fault(&fault, &attempt()), Retry::Stop, "{fault}");
        }
    }
}
