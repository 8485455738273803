//! The request path's clock: one reading per poll of a connection's task.
//!
//! nginx reads the clock once per turn of its event loop and every handler
//! in that turn uses the reading. tokio offers no hook that runs on every
//! turn (`on_thread_unpark` misses the turns that only yield to the
//! driver, which is most of them under load), so levee does the same one
//! level down: a connection's exchange is polled through [`turn`], and
//! every [`now`] asked during one poll of it returns the poll's one reading. A
//! proxied request is polled about twice (its head arrives; its response
//! head arrives), so it reads the clock about twice instead of the eight
//! to ten times its steps asked before (bench/README.md, issue 21).
//!
//! A reading is as old as the poll that took it: microseconds, since a
//! poll never waits. Deadlines set from it are that much early and
//! durations measured with it are exact to that much, as with nginx.
//! Outside [`turn`] (other tasks, tests, the control thread) [`now`]
//! reads the clock every time.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
enum Reading {
    /// Not inside [`turn`]: every [`now`] reads the clock.
    Off,
    /// Inside, and nobody asked yet.
    Unread,
    Read(Instant),
}

thread_local! {
    static NOW: Cell<Reading> = const { Cell::new(Reading::Off) };
}

/// The time: the current poll's reading inside [`turn`], else the clock.
pub(crate) fn now() -> Instant {
    NOW.with(|cell| match cell.get() {
        Reading::Read(t) => t,
        Reading::Unread => {
            let t = Instant::now();
            cell.set(Reading::Read(t));
            t
        }
        Reading::Off => Instant::now(),
    })
}

/// [`now`] as a `std::time::Instant`.
pub(crate) fn now_std() -> std::time::Instant {
    now().into_std()
}

/// Time from `earlier` to [`now`]: `Instant::elapsed` without its own reading.
pub(crate) fn since(earlier: Instant) -> Duration {
    now().saturating_duration_since(earlier)
}

/// Runs `poll`, one poll of a future, with one clock reading: every
/// [`now`] during it returns the first one's. The caller polls its future
/// in place through it (`std::future::poll_fn`), so a large future is not
/// moved into a wrapper.
pub(crate) fn turn<T>(poll: impl FnOnce() -> T) -> T {
    let outer = NOW.replace(Reading::Unread);
    let out = poll();
    NOW.set(outer);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fut`, each poll through [`turn`], as conn.rs polls an exchange.
    async fn per_poll<F: Future>(fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| turn(|| fut.as_mut().poll(cx))).await
    }

    /// Real time, no pause: a sleep between two readings shows whether
    /// the clock was read again.
    fn nap() {
        std::thread::sleep(Duration::from_millis(2));
    }

    #[tokio::test]
    async fn one_reading_per_poll() {
        let (a, b, c) = per_poll(async {
            let a = now();
            nap();
            let b = now();
            tokio::task::yield_now().await;
            // A new poll: a new reading.
            (a, b, now())
        })
        .await;
        assert_eq!(a, b, "one reading per poll");
        assert!(c > b, "a new poll reads the clock again");
    }

    #[tokio::test]
    async fn outside_it_reads_every_time() {
        let a = now();
        nap();
        assert!(now() > a);
        // And after a turn ends, too.
        per_poll(async {}).await;
        let b = now();
        nap();
        assert!(now() > b);
    }
}
