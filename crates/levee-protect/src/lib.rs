//! levee's protections, independent of any protocol:
//!
//! - [`access`]: IP allow/deny lists (CIDR, IPv4 and IPv6);
//! - [`ban`]: the runtime ban list (`levee ctl ban`), checked at accept
//!   and per request;
//! - [`conns`]: open-connection limits per listener, client address and
//!   client network, checked right after accept (HTTP and mail listeners
//!   alike);
//! - [`rate`]: request rate limits (GCRA) with bounded key tables, and
//!   [`top`]: each rule's most-refused keys by name;
//! - [`key`]: what a rate limit counts by (client IP or prefix, header,
//!   cookie, query parameter, path, or a combination);
//! - [`auth`]: HTTP Basic credentials checked against bcrypt hashes;
//! - [`guard`]: a route's protections in the order they apply;
//! - [`metrics`]: the counters of all of the above, as Prometheus text.
//!
//! Every decision takes `now` as a parameter, so tests run on paused or
//! explicit time. State shared between workers is sharded behind short
//! mutexes or kept in atomics (docs/protection.md).

pub mod access;
pub mod auth;
pub mod ban;
pub mod conns;
pub mod guard;
pub mod key;
pub mod metrics;
pub mod rate;
mod shard;
pub mod top;

pub use access::Acl;
pub use auth::BasicAuth;
pub use conns::{ConnPermit, ConnTable, Refusal};
pub use guard::{RouteGuard, Verdict};
pub use key::{KeySpec, Request};
pub use rate::{Decision, RateLimiter};

/// Why protections could not be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error("htpasswd file {path}: {source}")]
    AuthFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("htpasswd file {path} line {line}: {why}")]
    AuthLine {
        path: String,
        line: usize,
        why: &'static str,
    },
}
