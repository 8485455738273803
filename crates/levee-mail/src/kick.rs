//! Closing a user's logged-in sessions on request, when their mailbox moves
//! to another backend (control API: `POST /mail/users/NAME/close`). New
//! logins already go where the auth service or the reloaded user map says;
//! this ends the sessions still open on the old backend.
//!
//! The relay does not parse what it relays, so it says goodbye only at a
//! quiet moment: nothing unsent either way and no byte moved for
//! [`QUIET`], when the last response is complete. A session that stays busy
//! is closed at its first quiet moment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Waker;
use std::time::Duration;

/// How long a session must be still before it is closed.
pub const QUIET: Duration = Duration::from_millis(300);

/// One logged-in session's close request, shared with the registry.
#[derive(Debug)]
pub struct Kick {
    user: Box<[u8]>,
    requested: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

type Registry = HashMap<Box<[u8]>, Vec<Weak<Kick>>>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// A session's registration; leaves the registry when dropped.
#[derive(Debug)]
pub struct Handle(Arc<Kick>);

impl Handle {
    pub fn requested(&self) -> bool {
        self.0.requested.load(Ordering::Acquire)
    }

    /// Remembers the relay's waker so a request wakes it.
    pub fn watch(&self, waker: &Waker) {
        if let Ok(mut w) = self.0.waker.lock()
            && !w.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            *w = Some(waker.clone());
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let Ok(mut r) = registry().lock() else { return };
        if let Some(list) = r.get_mut(&self.0.user) {
            list.retain(|w| {
                w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.0))
            });
            if list.is_empty() {
                r.remove(&self.0.user);
            }
        }
    }
}

/// Registers a logged-in session of `user`.
pub fn register(user: &[u8]) -> Handle {
    let kick = Arc::new(Kick {
        user: user.into(),
        requested: AtomicBool::new(false),
        waker: Mutex::new(None),
    });
    if let Ok(mut r) = registry().lock() {
        r.entry(user.into())
            .or_default()
            .push(Arc::downgrade(&kick));
    }
    Handle(kick)
}

/// Asks every logged-in session of `user` to close; returns how many there are.
pub fn close_user(user: &[u8]) -> usize {
    let Ok(r) = registry().lock() else { return 0 };
    let mut n = 0;
    for kick in r.get(user).into_iter().flatten().filter_map(Weak::upgrade) {
        kick.requested.store(true, Ordering::Release);
        if let Ok(w) = kick.waker.lock()
            && let Some(w) = w.as_ref()
        {
            w.wake_by_ref();
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_the_users_sessions_only_and_handles_leave() {
        let a = register(b"kick-test-alice");
        let b = register(b"kick-test-alice");
        let c = register(b"kick-test-bob");
        assert_eq!(close_user(b"kick-test-alice"), 2);
        assert!(a.requested() && b.requested() && !c.requested());
        drop(a);
        drop(b);
        assert_eq!(close_user(b"kick-test-alice"), 0);
        assert!(
            registry()
                .lock()
                .expect("lock")
                .get(&b"kick-test-alice"[..])
                .is_none()
        );
        drop(c);
    }
}
