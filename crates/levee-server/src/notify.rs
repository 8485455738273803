//! What systemd is told (`Type=notify`, `sd_notify(3)`): ready once every
//! listener is bound and served, reloading and ready again around a
//! reload, stopping, and, on a binary upgrade, the new main pid. Without
//! `NOTIFY_SOCKET` (not under systemd) each call does nothing.

/// The service is up: listeners bound and accepting, the admin listener
/// serving.
pub(crate) fn ready() {
    send(&[sd_notify::NotifyState::Ready]);
}

/// A reload starts; [`ready`] follows when it is done, taken or refused.
pub(crate) fn reloading() {
    send(&[sd_notify::NotifyState::Reloading]);
}

pub(crate) fn stopping() {
    send(&[sd_notify::NotifyState::Stopping]);
}

/// After an upgrade: `pid` (the new binary) is the service's main process
/// from now on. Sent by the old one, which is still the main process, so
/// `NotifyAccess=main` suffices; the new one then sends [`ready`].
pub(crate) fn main_pid(pid: u32) {
    send(&[sd_notify::NotifyState::MainPid(pid)]);
}

fn send(state: &[sd_notify::NotifyState<'_>]) {
    // The variable is kept: a reload, and a binary upgrade's new process
    // (which inherits the environment), notify through it too.
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
