//! Passive health: what the outcome of an exchange says about its server,
//! and how much of a group passive ejection may take out.
//!
//! - Failures are what only the server (or the path to it) can cause:
//!   connect failures and connect timeouts, resets or closes before the
//!   response head, and timeouts waiting for it. A malformed response head
//!   and every status count as answers, so one URL whose handler fails
//!   cannot eject a healthy server. Statuses count only when the upstream
//!   lists them in `eject_on_status`.
//! - `max_fails` failures in a row eject the server, unless that would
//!   leave more than `max_ejected_percent` of the group out of rotation for
//!   health (ejected, or down by active checks), or leave no server usable.
//!   So the only server of a group is never ejected: its failures reach the
//!   client as 502 or 504, as nginx does with a single server.
//! - When active checks have taken every server down, the balancer goes
//!   into panic mode instead (`balance.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use levee_config::Balance;
use tokio::time::Instant;

use crate::state::{Failure, ServerState};
use crate::stats::ErrorKind;
use crate::{Group, Members};

/// Whether a failed exchange of `kind` counts against the server.
pub fn counts(kind: ErrorKind) -> bool {
    match kind {
        ErrorKind::Connect | ErrorKind::ConnectTimeout | ErrorKind::Reset | ErrorKind::Timeout => {
            true
        }
        // The server answered; what it said is the application's business.
        ErrorKind::Protocol => false,
    }
}

impl Group {
    /// A response head from the server with `state`, `latency` after the
    /// request was sent: metrics, the latency estimate, passive health.
    ///
    /// Hot path: a success is two relaxed loads when nothing was failing.
    /// The latency estimate needs the time of the sample, so `latency`
    /// balancing costs one clock reading per response; no other balance
    /// keeps the estimate, or reads the clock here.
    #[inline]
    pub fn observe_response(
        &self,
        state: &ServerState,
        addr: SocketAddr,
        status: u16,
        latency: Duration,
    ) {
        state.stats.answered(status, latency);
        if matches!(self.config.balance, Balance::Latency) {
            state.observe_latency(latency, Instant::now());
        }
        if self.config.passive.on_status.contains(status) {
            self.record_failure(state, addr);
        } else {
            state.record_success();
        }
    }

    /// A failed exchange with the server with `state` (error.rs): metrics
    /// and passive health, when the server had a part in it.
    pub fn observe_fault(&self, state: &ServerState, addr: SocketAddr, fault: &crate::Fault) {
        if let Some(kind) = fault.kind() {
            self.observe_error(state, addr, kind);
        }
    }

    /// A failed exchange with the server with `state`: metrics and, for the
    /// kinds that [`counts`], passive health.
    pub fn observe_error(&self, state: &ServerState, addr: SocketAddr, kind: ErrorKind) {
        state.stats.error(kind);
        if counts(kind) {
            self.record_failure(state, addr);
        }
    }

    fn record_failure(&self, state: &ServerState, addr: SocketAddr) {
        let now = Instant::now();
        let policy = &self.config.passive;
        // The lock spans the decision and the ejection, so workers failing
        // different servers at once cannot together pass the bound. It is
        // taken only by the failure that reaches `max_fails`.
        let mut held = None;
        let failure = state.record_failure(now, policy, || {
            held = Some(match self.stats.ejecting.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            });
            may_eject(&self.members(), state, policy.max_ejected_percent, now)
        });
        drop(held);
        match failure {
            Failure::Ejected(period) => tracing::warn!(
                upstream = %self.name,
                server = %addr,
                ?period,
                "server ejected after consecutive failures"
            ),
            // Each failure is logged where it happens; this says why the
            // server stays in.
            Failure::Kept if self.stats.bound_log.due(now) => tracing::info!(
                upstream = %self.name,
                server = %addr,
                max_ejected_percent = policy.max_ejected_percent,
                "server failing but not ejected: it is the last usable server, or max_ejected_percent of the group is out already"
            ),
            _ => {}
        }
    }
}

/// Whether `target` may be ejected at `now`: some other server stays
/// usable, and the servers out of rotation for health, `target` included,
/// stay within `percent` of the group (rounded down; at least 1 of 2).
pub(crate) fn may_eject(
    members: &Members,
    target: &ServerState,
    percent: u32,
    now: Instant,
) -> bool {
    let total = members.list.len();
    let allowed = total * percent.min(100) as usize / 100;
    let mut out = 1;
    let mut others_usable = false;
    for m in &members.list {
        if std::ptr::eq(Arc::as_ptr(&m.state), target) {
            continue;
        }
        if m.state.usable(now) {
            others_usable = true;
        } else if m.state.out_for_health(now) {
            out += 1;
        }
    }
    others_usable && out <= allowed
}

#[cfg(test)]
mod tests;
