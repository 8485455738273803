//! The tiers' side of a [`Fill`]: a body that goes on in a disk tier file,
//! and what goes to the fleet's shared tier once the exchange is over.

use levee_cache::disk::DiskCopy;
use levee_cache::flight::Landing;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::{Entry, Storage, variant_key};

use super::{Fill, Pending, ToShare};
use crate::cache::unix_now;

impl Fill<'_> {
    /// Sends what was stored to the shared tier (then the local flight
    /// lands, when only the shared tier took it), releases the fleet's
    /// lock, and lands. Call once the exchange is over.
    pub async fn finish(&mut self) {
        self.remove_shared().await;
        let store = &self.cache.tier.store;
        if let Some(shared) = &store.shared
            && let Some(ToShare {
                key,
                entry,
                ttl,
                marker,
                staged,
                purges,
            }) = self.share.take()
        {
            // A purge of it since the local store: not sent (it may
            // have run on the shared tier already). This member's
            // purges wait for the gate; another member's, heard on the
            // bus during the puts, may have missed what they wrote:
            // removed again.
            let _gate = shared.gate.read().await;
            let tags = entry.tags().to_vec();
            let purged = || {
                store.purged_since(purges, &key, &tags)
                    || (marker.is_some() && store.purged_since(purges, &self.key, &[]))
            };
            let object = Some(entry);
            if !purged() && (!staged || store.is_staged(&key, &object)) {
                if let Some(entry) = &object {
                    shared.put(&key, entry, ttl).await;
                }
                if let Some(names) = &marker {
                    shared
                        .put(&self.key, &Entry::Vary(names.clone()), ttl)
                        .await;
                }
                if purged() {
                    let mut keys = vec![key.clone()];
                    if marker.is_some() {
                        keys.push(self.key.clone());
                    }
                    shared.remove(&keys).await;
                }
            }
            if staged {
                store.unstage(&key, &object);
                if let Some(names) = marker {
                    store.unstage(&self.key, &Some(Entry::Vary(names)));
                }
            }
        }
        if let (Some(lock), Some(shared)) = (
            self.fleet_lock.take(),
            self.cache.tier.store.shared.as_ref(),
        ) {
            shared.release(lock).await;
        }
        self.land();
    }

    /// Removes from the shared tier what this exchange invalidated or
    /// replaced. The proxy calls it before relaying the response head of an
    /// unsafe method, so the client's next request, to this member or any
    /// other, cannot find the old response there (read-your-writes). As a
    /// purge does, it holds the gate: a store of the old response still on
    /// its way to the shared tier lands first (and, seeing the invalidation
    /// counted as a purge, removes itself again), never after the delete.
    /// Until the delete has succeeded the keys stay hidden from this
    /// member's lookups (staged as removed).
    pub async fn remove_shared(&mut self) {
        let store = &self.cache.tier.store;
        let Some(shared) = &store.shared else { return };
        let removed = std::mem::take(&mut self.share_remove);
        if removed.is_empty() {
            return;
        }
        let _gate = shared.gate.write().await;
        if shared.remove(&removed).await {
            for key in &removed {
                store.unstage(key, &None);
            }
        } else {
            tracing::warn!(
                keys = removed.len(),
                "shared cache invalidation failed; this member keeps looking past the shared tier for those keys"
            );
        }
    }

    /// Releases the fleet's lock without waiting (the response turned out
    /// uncacheable: the other members fetch for themselves at once).
    pub(super) fn release_soon(&mut self) {
        if let (Some(lock), Some(shared)) =
            (self.fleet_lock.take(), self.cache.tier.store.shared.clone())
        {
            tokio::spawn(async move { shared.release(lock).await });
        }
    }

    /// An updated stored response goes to the shared tier too (staged when
    /// no local tier took it); `purges` was read before the local store.
    pub(super) fn share_update(&mut self, key: Vec<u8>, entry: Entry, local: bool, purges: u64) {
        let store = &self.cache.tier.store;
        let Some(shared) = &store.shared else { return };
        let Entry::Object(object) = &entry else {
            return;
        };
        if !shared.takes(&entry) {
            return;
        }
        let ttl = shared.ttl(&object.meta, unix_now());
        if !local {
            store.stage(&key, Some(entry.clone()));
        }
        self.share = Some(ToShare {
            key,
            entry,
            ttl,
            marker: None,
            staged: !local,
            purges,
        });
    }

    /// The key the object goes under: its variant's when it varies.
    pub(super) fn object_key(&self, pending: &Pending) -> Vec<u8> {
        match &pending.vary {
            None => self.key.clone(),
            Some((_, secondary)) => variant_key(&self.key, secondary),
        }
    }

    /// The memory copy is about to pass its cap: its bytes so far go to a
    /// disk tier file, which takes the rest (a body of unknown length that
    /// turned out too large for memory).
    pub(super) fn move_to_disk(&mut self) {
        let Some(tee) = self.tee.take() else { return };
        let Some(pending) = self.pending.as_ref() else {
            return;
        };
        let key = self.object_key(pending);
        let disk = self.cache.tier.store.disk.as_ref();
        let Some(mut copy) = disk.and_then(|d| d.copy(&key, &pending.object, None)) else {
            // No disk to go on: the memory copy overflows as before.
            self.tee = Some(tee);
            return;
        };
        for piece in tee.into_pieces() {
            copy.push(&piece);
        }
        self.disk_tee = Some(copy);
    }

    /// A body streamed to a disk tier file is complete: commit it.
    pub(super) fn store_disk(&mut self, copy: DiskCopy<'_>) {
        let Some(Pending { object: _, vary }) = self.pending.take() else {
            return;
        };
        let overflowed = copy.overflowed();
        let stored = copy.finish()
            && vary.is_none_or(|(names, _)| {
                self.cache
                    .tier
                    .store
                    .put(self.key.clone(), Entry::Vary(names))
            });
        self.landing = if stored {
            Counters::add(&STATS.stored, 1);
            Landing::Stored
        } else if overflowed {
            Landing::Uncacheable
        } else {
            Landing::Failed
        };
        self.land();
    }
}
