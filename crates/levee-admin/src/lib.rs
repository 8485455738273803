//! levee's control plane, on a loopback-only admin listener:
//!
//! - [`api`]: the JSON control API (list upstreams and servers; drain,
//!   disable, enable a server; change its weight), documented in
//!   `docs/api.md`;
//! - [`metrics`]: `/metrics` in the Prometheus text format, every metric
//!   name defined in that one module;
//! - [`ctl`]: the client behind `levee ctl`.
//!
//! The listener runs on the control thread, never on a worker. Requests are
//! read with levee's own HTTP/1 parser; each connection answers one request
//! and closes, which is all an operator's shell or a scraper needs.

pub mod api;
pub mod ctl;
pub mod metrics;
mod server;

pub use server::serve;
