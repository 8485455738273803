//! Control-thread tasks around the data path: active health checks and DNS
//! re-resolution for the current site's upstreams, the download
//! redirector's scans, probes and hashing and, in a fleet, the sharing
//! of its runtime edits (restarted with each site, so a reload's new
//! checks replace the old ones), and the admin listener.

use std::net::SocketAddr;
use std::sync::Arc;

use levee_http::Site;
use tokio::task::{AbortHandle, JoinSet};

/// The checks and resolvers of one site; dropping it stops them.
#[derive(Debug, Default)]
pub struct Upkeep {
    _tasks: JoinSet<()>,
}

impl Upkeep {
    /// Starts the tasks `site` needs. Must run inside the control runtime.
    pub fn start(site: &Site) -> Upkeep {
        let mut tasks = JoinSet::new();
        for group in site.upstreams.values() {
            if group.config.health_check.is_some() {
                tasks.spawn(levee_upstream::health::check_group(group.clone()));
            }
            if levee_upstream::has_names(&group.config) {
                tasks.spawn(levee_upstream::dns::resolve_loop(group.clone()));
            }
        }
        let fleet = levee_fleet::current();
        for set in site.mirrors.values() {
            tasks.spawn(levee_mirror::upkeep::run(set.clone()));
            // In a fleet the runtime edits are shared (fleet/mirrors.rs).
            match &fleet {
                Some(f) => {
                    tasks.spawn(crate::fleet::mirrors::share(set.clone(), f.clone()));
                }
                None => set.set_shared(false),
            }
        }
        Upkeep { _tasks: tasks }
    }
}

/// The admin listener's task.
#[derive(Debug)]
pub struct AdminListener {
    pub addr: SocketAddr,
    task: AbortHandle,
}

impl AdminListener {
    /// Binds the admin address (before the runtime serves it).
    pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Serves `listener` with `admin`'s rules and sessions (kept when the
    /// listener moves); must run inside the control runtime.
    pub fn start(
        addr: SocketAddr,
        listener: std::net::TcpListener,
        admin: Arc<levee_admin::Admin>,
    ) -> std::io::Result<AdminListener> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        // The bound address too: with port 0 the OS chose it.
        let bound = listener.local_addr()?;
        tracing::info!(admin = %addr, %bound, "control API and /metrics listening");
        let task = tokio::spawn(levee_admin::serve(listener, admin)).abort_handle();
        Ok(AdminListener { addr, task })
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
