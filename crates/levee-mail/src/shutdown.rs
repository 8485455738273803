//! Telling sessions that levee is stopping. Sessions still before login
//! are told so in their protocol (`* BYE`, `-ERR`, `421`) and closed, as an
//! idle HTTP connection is closed on stop; logged-in sessions keep relaying
//! until the process exits. Only a session waiting for its client listens,
//! so a logged-in idle session pays nothing for this.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

static STOPPING: AtomicBool = AtomicBool::new(false);
static NOTIFY: Notify = Notify::const_new();

/// Starts the stop: every pre-auth session waiting for its client wakes.
pub fn begin() {
    STOPPING.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}

/// Resolves once [`begin`] has been called.
pub(crate) async fn stopping() {
    let notified = NOTIFY.notified();
    tokio::pin!(notified);
    // Registered before the flag is read, so a `begin` in between is not missed.
    notified.as_mut().enable();
    if STOPPING.load(Ordering::SeqCst) {
        return;
    }
    notified.await;
}
