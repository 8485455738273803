//! This member's puts to the shared tier in flight, by key. A remove
//! (an invalidation after an unsafe method, a retired response) waits for
//! those of its keys before it deletes: a put sent earlier, still in
//! flight (a script loaded on first use, memcached's several commands, a
//! second connection), could otherwise land after the delete and bring
//! the old object back for the client's next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(super) struct InFlight {
    keys: Mutex<HashMap<Vec<u8>, usize>>,
    ended: Notify,
}

/// One put of `key`, in flight until dropped.
#[derive(Debug)]
pub(super) struct Putting<'a> {
    set: &'a InFlight,
    key: Vec<u8>,
}

impl InFlight {
    /// A put of `key` begins.
    pub(super) fn begin(&self, key: &[u8]) -> Putting<'_> {
        if let Ok(mut keys) = self.keys.lock() {
            *keys.entry(key.to_vec()).or_default() += 1;
        }
        Putting {
            set: self,
            key: key.to_vec(),
        }
    }

    fn any(&self, keys: &[Vec<u8>]) -> bool {
        self.keys
            .lock()
            .is_ok_and(|m| keys.iter().any(|k| m.contains_key(k)))
    }

    /// Waits until no put of `keys` is in flight, at most `within` (a put
    /// gives up on its store after its own bound).
    pub(super) async fn settled(&self, keys: &[Vec<u8>], within: Duration) {
        let wait = async {
            loop {
                let ended = self.ended.notified();
                tokio::pin!(ended);
                // Registered before the look, so no end is missed.
                ended.as_mut().enable();
                if !self.any(keys) {
                    return;
                }
                ended.await;
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
    }
}

impl Drop for Putting<'_> {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.set.keys.lock()
            && let Some(n) = keys.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                keys.remove(&self.key);
            }
        }
        self.set.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_remove_waits_for_the_puts_of_its_keys_only() {
        let set = InFlight::default();
        let a = set.begin(b"a");
        let b = set.begin(b"b");
        let keys = [b"a".to_vec()];
        // Another key's put does not hold it up.
        drop(a);
        tokio::time::timeout(
            Duration::from_millis(1),
            set.settled(&keys, Duration::from_secs(60)),
        )
        .await
        .expect("no put of `a` in flight");
        let a = set.begin(b"a");
        let again = set.begin(b"a");
        let waiting = set.settled(&keys, Duration::from_secs(60));
        tokio::pin!(waiting);
        assert!(futures_poll(waiting.as_mut()).is_pending());
        drop(a);
        assert!(futures_poll(waiting.as_mut()).is_pending(), "one more put");
        drop(again);
        assert!(futures_poll(waiting.as_mut()).is_ready());
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn a_put_that_never_ends_holds_a_remove_up_to_its_bound() {
        let set = InFlight::default();
        let _stuck = set.begin(b"a");
        let started = tokio::time::Instant::now();
        set.settled(&[b"a".to_vec()], Duration::from_secs(2)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    fn futures_poll<F: std::future::Future>(
        f: std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        f.poll(&mut std::task::Context::from_waker(waker))
    }
}
