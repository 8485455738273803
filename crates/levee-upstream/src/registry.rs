//! Server state that outlives one config: the operator's drain, disable and
//! weight, and the health verdicts, survive a reload until the config itself
//! changes that server (its weight or backup flag, or its removal).
//!
//! The per-upstream counters (panic mode) live here too, for the same reason.
//!
//! One registry lives for the whole process. Each build of an upstream asks
//! it for the state of every (upstream, address) pair; it hands back the same
//! `Arc` while the server's configuration is unchanged and someone still
//! holds it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use tokio::time::Instant;

use crate::state::ServerState;
use crate::stats::GroupStats;

#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<(String, SocketAddr), Entry>>,
    /// Per upstream name. Never removed: a name costs a few words, and a
    /// counter must not restart when the upstream comes back.
    groups: Mutex<HashMap<String, Arc<GroupStats>>>,
}

#[derive(Debug)]
struct Entry {
    configured: String,
    weight: u32,
    backup: bool,
    state: Weak<ServerState>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// The counters of upstream `upstream`, the same across reloads.
    pub fn group_stats(&self, upstream: &str, now: Instant) -> Arc<GroupStats> {
        let mut groups = match self.groups.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        groups
            .entry(upstream.to_owned())
            .or_insert_with(|| Arc::new(GroupStats::new(now)))
            .clone()
    }

    /// The state for `addr`, a record of `server` in upstream `upstream`.
    pub fn state(
        &self,
        upstream: &str,
        server: &levee_config::Server,
        addr: SocketAddr,
        now: Instant,
    ) -> Arc<ServerState> {
        let mut entries = match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (upstream.to_owned(), addr);
        if let Some(e) = entries.get(&key)
            && e.configured == server.address
            && e.weight == server.weight
            && e.backup == server.backup
            && let Some(state) = e.state.upgrade()
        {
            state.set_retired(false);
            return state;
        }
        let state = Arc::new(ServerState::new(now));
        entries.retain(|_, e| e.state.strong_count() > 0);
        entries.insert(
            key,
            Entry {
                configured: server.address.clone(),
                weight: server.weight,
                backup: server.backup,
                state: Arc::downgrade(&state),
            },
        );
        state
    }
}
