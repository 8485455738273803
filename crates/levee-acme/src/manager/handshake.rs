//! On-demand TLS: a handshake naming a name levee keeps no certificate
//! for asks the manager for one, and waits while policy allows.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime};

use super::{Entry, Manager, Origin, WAIT_FOR_DUE, lock};
use crate::client;
use crate::on_demand::Verdict;
use crate::status::COUNTERS;

impl Manager {
    /// On-demand TLS for a handshake naming `name`: policy first, then an
    /// order, waited for.
    pub async fn on_demand(self: Arc<Self>, name: String) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if levee_tls::auto::get(&name).is_some() {
            return true;
        }
        let settings = self.settings.load_full();
        let Some(policy) = &settings.on_demand else {
            return false;
        };
        // Kept already (configured, or ordered on demand): wait for the
        // attempt if it is about to run; one retrying after a long backoff
        // is not worth holding a handshake for.
        let due = lock(&self.entries).get(&name).map(|e| e.due);
        if let Some(due) = due {
            if due > SystemTime::now() + WAIT_FOR_DUE {
                return false;
            }
            return self.waiter(&name).await.unwrap_or(false);
        }
        let verdict = lock(&self.gate).check(policy, &name, Instant::now());
        let refuse = |why: &str| {
            COUNTERS.on_demand_refused.fetch_add(1, Relaxed);
            tracing::info!(name = %name, why, "on-demand TLS: no certificate ordered");
            false
        };
        match verdict {
            Verdict::Refused(why) => return refuse(why),
            Verdict::Allowed => {}
            Verdict::Ask(url) => {
                if !lock(&self.gate).start_asking() {
                    return refuse("too many questions to the ask service at once");
                }
                let answer = client::ask(&url, &name, policy.ask_timeout).await;
                lock(&self.gate).done_asking();
                match answer {
                    Ok(true) => {}
                    Ok(false) => {
                        lock(&self.gate).refuse(policy, &name, Instant::now());
                        return refuse("the ask service said no");
                    }
                    Err(e) => {
                        lock(&self.gate).refuse(policy, &name, Instant::now());
                        tracing::warn!(error = %e, "on-demand TLS: the ask service failed");
                        return refuse("the ask service did not answer");
                    }
                }
            }
        }
        if !lock(&self.gate).take_order(policy, &name, Instant::now()) {
            return refuse("max_per_hour reached");
        }
        let rx = {
            let mut entries = lock(&self.entries);
            let mut e = Entry::new(Origin::OnDemand);
            e.due = SystemTime::now();
            entries.insert(name.clone(), e);
            self.waiter(&name)
        };
        self.wake.notify_one();
        rx.await.unwrap_or(false)
    }
}

/// The on-demand hook the TLS acceptors call.
pub(crate) struct Hook(pub(crate) Arc<Manager>);

impl levee_tls::auto::OnDemand for Hook {
    fn obtain(
        &self,
        name: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> {
        Box::pin(self.0.clone().on_demand(name))
    }
}
