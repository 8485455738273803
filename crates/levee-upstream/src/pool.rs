//! The per-worker connections to servers, for both protocols an upstream
//! may speak (`protocol`):
//!
//! - `h1` (HTTP/1.1): idle connections, one request at a time each; a
//!   request takes one ([`h1::open`]: the most recently returned live one,
//!   else a new one) and gives it back when its exchange ended cleanly
//!   ([`put`]);
//! - `h2` (`h2c`, `h2`): shared connections, each carrying many clients'
//!   streams at once ([`h2::checkout`]), driven by a task of their own.
//!
//! Each worker thread runs its own event loop, and a socket registered with
//! one loop must stay on it, so both are thread-local: no lock, and no
//! syscall to check a connection. A worker sweeps its idle HTTP/1
//! connections once a second ([`sweep`]); an HTTP/2 connection's task
//! closes it after the upstream's `keepalive_timeout` unused.

pub mod h1;
pub mod h2;

pub use h1::{close_all, idle_count, put, sweep, take};
