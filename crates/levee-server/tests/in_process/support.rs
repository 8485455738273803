//! The fast tier of levee's tests: levee run inside the test's own process
//! through `levee_server::run`, in front of fake upstreams written in Rust.
//!
//! Each levee gets a loopback socket the harness bound itself (port 0,
//! handed over open, so no other process can take the port in between), and
//! stops when its handle drops. The fakes (`fake`: HTTP/1, `fake/h2.rs`:
//! HTTP/2 with prior knowledge) answer each request by a script: a status,
//! headers, a body in chunks with delays, then a clean end, a close in the
//! middle of the body, a reset, or no answer at all; they record what they
//! were asked and whether levee gave up on a request they never answered.
//!
//! The real-peer suites in `crates/levee/tests/` (nginx, Dovecot, Postfix,
//! Redis, curl) stay the integration tier: they show levee works with the
//! programs it fronts. The fakes exist for what those cannot do: an app
//! server cannot be scripted to reset a connection after exactly three
//! bytes, to stay silent on the one request a test cares about, or to tell
//! the test that levee cancelled it. Tests here take well under a second.
// Shared by the test binary's modules, which export nothing.
#![allow(dead_code, unreachable_pub)]

mod client;
mod fake;
mod levee;

pub use client::*;
pub use fake::*;
pub use levee::*;

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen at once on an
/// idle machine: generous, for a loaded 2-core one.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Sends a GET that `fake` leaves unanswered, closes the client once the
/// fake has it, and returns how the fake was told levee gave up on it
/// (empty if it was not, within [`DEADLINE`]).
pub fn abandon(levee: &Levee, fake: &Fake) -> Vec<String> {
    let conn = send(levee.addr, "GET /slow HTTP/1.1\r\nHost: fake.test\r\n\r\n");
    assert!(
        eventually(|| fake.requests() == 1),
        "the request never reached the fake"
    );
    drop(conn);
    eventually(|| !fake.cancelled().is_empty());
    fake.cancelled()
}

/// Polls `f` every 5 ms until it holds, or [`DEADLINE`] passes.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
