//! levee's control plane, on the admin listener:
//!
//! - [`api`]: the JSON control API (list upstreams and servers; drain,
//!   disable, enable a server; change its weight; purge the cache),
//!   documented in `docs/api.md`;
//! - [`metrics`]: `/metrics` in the Prometheus text format, every metric
//!   name defined in that one module;
//! - [`access`], [`gate`], [`session`], [`login`](gate): who may use the
//!   listener (`Host`, `Origin`, content type, bearer token, login
//!   sessions with a CSRF token), and the [`audit`] line of every
//!   state-changing request;
//! - [`control`]: `POST /reload`, answered by the control thread;
//! - [`dash`]: the dashboard at `/`, its live view, history and config view;
//! - `push`: `POST /fleet/push`, a config for the fleet's members;
//! - [`ctl`]: the client behind `levee ctl` and `levee reload`.
//!
//! The listener runs on the control thread, never on a worker. Requests are
//! read with levee's own HTTP/1 parser; each connection answers one request
//! and closes, which is all an operator's shell, a scraper or a dashboard
//! needs.

pub mod access;
pub mod api;
pub mod audit;
pub mod control;
pub mod ctl;
pub mod dash;
pub mod gate;
mod login;
pub mod metrics;
mod push;
pub mod secret;
mod server;
pub mod session;

pub use access::Access;
pub use gate::Admin;
pub use server::{Reply, Request, serve};
