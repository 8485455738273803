//! Timeouts that cost nothing when the I/O completes at once.
//!
//! `tokio::time::timeout` reads the clock for its deadline before it polls
//! anything. A proxied request waits on a socket five or six times, and most
//! of those complete on the first poll (the bytes are already there, the
//! send buffer has room), yet `clock_gettime` was levee's hottest user-space
//! symbol (bench/README.md). These poll once first, and read the clock and
//! arm a timer only when the future has to wait.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

/// The future did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// `fut` within `limit`, with how long it waited: zero when it was ready on
/// its first poll.
pub(crate) async fn within<F: Future>(
    limit: Duration,
    fut: F,
) -> Result<(F::Output, Duration), Elapsed> {
    let mut fut = std::pin::pin!(fut);
    if let Poll::Ready(out) = poll_once(fut.as_mut()).await {
        return Ok((out, Duration::ZERO));
    }
    let started = crate::clock::now();
    match tokio::time::timeout_at(far(started, limit), fut).await {
        Ok(out) => Ok((out, crate::clock::since(started))),
        Err(_) => Err(Elapsed),
    }
}

/// `from + limit`, or about 30 years on for a limit too large to add.
fn far(from: Instant, limit: Duration) -> Instant {
    from.checked_add(limit)
        .unwrap_or_else(|| from + Duration::from_secs(86_400 * 365 * 30))
}

/// `fut` by `deadline`, which is set to `limit` from now the first time any
/// future given it has to wait; several reads can share one deadline.
pub(crate) async fn by<F: Future>(
    deadline: &mut Option<Instant>,
    limit: Duration,
    fut: F,
) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    if let Poll::Ready(out) = poll_once(fut.as_mut()).await {
        return Ok(out);
    }
    let at = *deadline.get_or_insert_with(|| far(crate::clock::now(), limit));
    tokio::time::timeout_at(at, fut).await.map_err(|_| Elapsed)
}

/// Polls `fut` once in the caller's task, so a pending future is woken
/// like any other.
async fn poll_once<F: Future>(mut fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_at_once_waits_zero_and_sets_no_deadline() {
        let mut deadline = None;
        assert_eq!(
            within(Duration::from_secs(1), async { 7 }).await,
            Ok((7, Duration::ZERO))
        );
        assert_eq!(
            by(&mut deadline, Duration::from_secs(1), async { 8 }).await,
            Ok(8)
        );
        assert_eq!(deadline, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_timed_and_bounded() {
        let slow = tokio::time::sleep(Duration::from_millis(300));
        let (_, waited) = within(Duration::from_secs(1), slow).await.expect("in time");
        assert_eq!(waited, Duration::from_millis(300));
        let never = std::future::pending::<()>();
        assert_eq!(within(Duration::from_secs(1), never).await, Err(Elapsed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_deadline_is_set_once() {
        let mut deadline = None;
        let start = Instant::now();
        let first = tokio::time::sleep(Duration::from_millis(600));
        assert!(
            by(&mut deadline, Duration::from_secs(1), first)
                .await
                .is_ok()
        );
        assert_eq!(deadline, Some(start + Duration::from_secs(1)));
        // 400 ms of the second left: a 500 ms wait misses it.
        let second = tokio::time::sleep(Duration::from_millis(500));
        assert_eq!(
            by(&mut deadline, Duration::from_secs(1), second).await,
            Err(Elapsed)
        );
    }
}
