//! The cache's side of a miss: [`Fill`] sees the response head, decides
//! whether to store it, takes a copy of the body while it streams to the
//! client, and stores it once complete. It also knows whether a stale
//! response may stand in when the upstream fails.
//!
//! The body is never held back: the client gets each chunk as it arrives,
//! and the copy stops (and the object is not stored) past
//! `[cache] max_object_size`, or, with a disk tier, goes on in a file of
//! the disk tier up to `[cache.disk] max_object_size` (a body announced
//! larger than memory takes goes to the file from its first byte). A
//! stored object within the shared tier's bound is also sent there by
//! [`Fill::finish`], which then releases the fleet's lock on the key.

use std::sync::Arc;

use levee_cache::body::BodyCopy;
use levee_cache::disk::DiskCopy;
use levee_cache::flight::{Landing, Lead};
use levee_cache::freshness::{Heuristic, Stored, age_field, fmt_http_date, stale_on_error};
use levee_cache::key::KeySpec;
use levee_cache::policy::{self, Rules};
use levee_cache::shared::FleetLock;
use levee_cache::stats::{Counters, STATS};
use levee_cache::store::{Entry, Object, Storage, variant_key};
use levee_cache::targeted::Control;
use levee_cache::tiers::Source;
use levee_cache::{Field, key};

mod tiers;

use super::setup::SiteCache;
use super::unix_now;
use crate::body::BodySink;
use crate::message::{Framing, RequestHead, ResponseHead};

/// What the proxy does with a response head.
#[derive(Debug)]
pub enum Admit {
    /// Do not relay it: the cache answers (stale instead of an error, or
    /// the stored response the upstream's 304 just refreshed).
    Answer,
    /// Relay it, copying the body into the fill (a [`BodySink`]) when
    /// `copy`; `status_line` goes into the client's head.
    Relay { copy: bool, status_line: Vec<u8> },
}

/// A stored response that answers instead of the upstream's.
#[derive(Debug, Clone)]
pub struct Answer {
    pub obj: Arc<Object>,
    /// The RFC 9211 `Cache-Status` detail saying why.
    pub detail: String,
    /// Lines for this client only: a 304's `Set-Cookie`, never stored.
    pub extra: Vec<u8>,
    /// The tier it came from.
    pub source: Source,
}

/// What [`Fill::finish`] sends to the shared tier.
#[derive(Debug)]
struct ToShare {
    key: Vec<u8>,
    entry: Entry,
    /// For how long (seconds).
    ttl: u64,
    /// The Vary marker to put beside it.
    marker: Option<Arc<[String]>>,
    /// No local tier took them: this member sees them staged until the
    /// shared tier has them.
    staged: bool,
    /// [`Tiers::purges`](levee_cache::tiers::Tiers::purges) when it was
    /// stored locally.
    purges: u64,
}

/// An object waiting for its body.
#[derive(Debug)]
struct Pending {
    object: Object,
    /// `Some` when the response varies: the names and this request's secondary key.
    vary: Option<(Arc<[String]>, Vec<u8>)>,
}

/// One miss's dealings with the cache.
#[derive(Debug)]
pub struct Fill<'a> {
    cache: &'a SiteCache,
    /// Empty for a request that bypasses the cache: nothing is stored.
    key: Vec<u8>,
    rules: &'a Rules,
    /// Also serve stale when the upstream is down (the route allows it).
    stale_if_down: bool,
    status_header: bool,
    /// RFC 9211 `fwd` reason: `miss`, `stale` or `request`.
    fwd: &'static str,
    request_time: u64,
    /// The stored response this miss would replace, if any, and its key.
    stale: Option<(Arc<Object>, Vec<u8>)>,
    /// Validators were sent: a 304 refreshes `stale`.
    validating: bool,
    /// The stored response that answers instead of the upstream's.
    answer: Option<Answer>,
    pending: Option<Pending>,
    /// The copy of the body being relayed.
    tee: Option<BodyCopy<'a>>,
    /// The copy going to a disk tier file (too large for memory).
    disk_tee: Option<DiskCopy<'a>>,
    /// The tier `stale` came from.
    stale_source: Source,
    /// The fleet's lock on the key, when this member fetches for the fleet.
    fleet_lock: Option<FleetLock>,
    /// What to send to the shared tier once the body is stored.
    share: Option<ToShare>,
    /// Keys to remove from the shared tier (invalidated, retired).
    share_remove: Vec<Vec<u8>>,
    landing: Landing,
    /// The flight this fill fetches for, landed as soon as the outcome is
    /// known: at the head for an uncacheable response, when stored for one
    /// that is stored (before the client has its last byte).
    lead: Option<Lead<'a>>,
    /// How the route builds keys (for invalidation).
    spec: &'a KeySpec,
    /// The client's connection has TLS: the origin invalidation is for.
    https: bool,
}

impl<'a> Fill<'a> {
    pub fn new(
        cache: &'a SiteCache,
        key: Vec<u8>,
        route: &'a super::RouteCache,
        fwd: &'static str,
        stale: Option<(Arc<Object>, Vec<u8>)>,
        https: bool,
    ) -> Fill<'a> {
        Fill {
            cache,
            key,
            rules: cache.rules(route),
            stale_if_down: route.stale_if_down,
            status_header: route.status_header,
            fwd,
            request_time: unix_now(),
            stale,
            validating: false,
            answer: None,
            pending: None,
            tee: None,
            disk_tee: None,
            stale_source: Source::Memory,
            fleet_lock: None,
            share: None,
            share_remove: Vec::new(),
            landing: Landing::Failed,
            lead: None,
            spec: &route.spec,
            https,
        }
    }

    /// The tier the stale response came from.
    pub fn stale_from(&mut self, source: Source) {
        self.stale_source = source;
    }

    /// The fleet's lock on the key, released when the fill is done.
    pub fn fleet_lock(&mut self, lock: Option<FleetLock>) {
        self.fleet_lock = lock;
    }

    /// Makes this fill land `lead` (the key's flight).
    pub fn lead(&mut self, lead: Lead<'a>) {
        self.lead = Some(lead);
    }

    /// Releases the requests waiting on the flight with the outcome so far
    /// (`Failed` while the response is not stored yet).
    pub fn land(&mut self) {
        if let Some(lead) = self.lead.take() {
            let pass_for = self.cache.config.hit_for_miss.as_secs();
            lead.land(self.landing, unix_now(), pass_for);
        }
    }

    /// The stored response that answers instead of the upstream's.
    pub fn answer(&self) -> Option<&Answer> {
        self.answer.as_ref()
    }

    /// The stored response's validators as field lines for the upstream
    /// request, so an unchanged response costs a 304; none when not
    /// validating.
    pub fn validators(&self) -> Vec<u8> {
        let mut lines = Vec::new();
        let Some((stale, _)) = &self.stale else {
            return lines;
        };
        if !self.validating {
            return lines;
        }
        if let Some(etag) = stale.field("etag") {
            crate::h1::write::field(&mut lines, b"If-None-Match", etag);
        }
        if let Some(lm) = stale.field("last-modified") {
            crate::h1::write::field(&mut lines, b"If-Modified-Since", lm);
        }
        lines
    }

    /// Asks the upstream to validate the stored response (when it has validators).
    pub fn validate(&mut self) {
        self.validating = self
            .stale
            .as_ref()
            .is_some_and(|(s, _)| s.field("etag").is_some() || s.field("last-modified").is_some());
    }

    /// Whether the stale response may answer for a failure with `status`:
    /// within `stale-if-error`, or, when the upstream could not be reached
    /// (`down`), within `[cache] stale_if_down` where the route allows it.
    pub fn fall_back(&mut self, status: u16) -> bool {
        self.try_fall_back(status, true)
    }

    fn try_fall_back(&mut self, status: u16, down: bool) -> bool {
        let Some((stale, _)) = &self.stale else {
            return false;
        };
        let route_max = if down && self.stale_if_down {
            self.cache.config.stale_if_down.as_secs()
        } else {
            0
        };
        let Some(reason) = stale_on_error(&stale.meta, unix_now(), Heuristic::default(), route_max)
        else {
            return false;
        };
        let detail = format!(
            "hit; fwd=stale; fwd-status={status}; detail={}",
            reason.detail()
        );
        self.answer = Some(Answer {
            obj: stale.clone(),
            detail,
            extra: Vec::new(),
            source: self.stale_source,
        });
        Counters::add(&STATS.stale, 1);
        true
    }

    /// Decides, from the response head, whether to store the response.
    /// Targeted fields that stop at levee are marked hop-by-hop in `resp`,
    /// so the client never gets them.
    pub fn admit(&mut self, req: &RequestHead, resp: &mut ResponseHead) -> Admit {
        self.hide(resp);
        if matches!(resp.status, 500 | 502 | 503 | 504) && self.try_fall_back(resp.status, false) {
            return Admit::Answer;
        }
        if resp.status == 304 && self.validating && self.refresh(resp) {
            return Admit::Answer;
        }
        if req.is_head() && resp.status == 200 {
            self.freshen_from_head(resp);
        }
        if policy::invalidates(req.method(), resp.status) {
            let locations: Vec<&[u8]> = resp
                .fields
                .iter()
                .filter(|(n, _)| {
                    n.eq_ignore_ascii_case(b"location")
                        || n.eq_ignore_ascii_case(b"content-location")
                })
                .map(|(_, v)| v)
                .collect();
            let keys = super::invalidate(self.cache, self.spec, req, self.https, &locations);
            self.share_remove.extend(keys);
        }
        self.landing = Landing::Uncacheable;
        let cache = self.cache;
        let now = unix_now();
        let prepared = if self.key.is_empty() {
            None
        } else {
            self.prepare(req, resp, now)
        };
        if let Some((pending, expected)) = prepared {
            let store = &cache.tier.store;
            // Copied in memory when memory or the shared tier takes it.
            let shared_cap = store
                .shared
                .as_ref()
                .map_or(0, |s| s.settings.max_object_size);
            let copy_cap = cache.config.max_object_size.max(shared_cap);
            if expected.is_some_and(|n| n > copy_cap) {
                // Too large for memory: to a disk tier file from the start.
                let key = self.object_key(&pending);
                self.disk_tee = store
                    .disk
                    .as_ref()
                    .and_then(|d| d.copy(&key, &pending.object, expected));
            } else {
                let budget = store.in_flight();
                self.tee = Some(BodyCopy::new(copy_cap, expected, budget));
            }
            if self.tee.is_some() || self.disk_tee.is_some() {
                self.landing = Landing::Failed;
                self.pending = Some(pending);
            }
        }
        let copy = self.pending.is_some();
        if !copy {
            // Waiters go to the upstream now, not after this body.
            self.land();
            self.release_soon();
        }
        let mut status_line = Vec::new();
        if copy && resp.fields.get("date").is_none() {
            // The stored copy got the same Date (RFC 9110 §6.6.1).
            crate::h1::write::field(&mut status_line, b"Date", fmt_http_date(now).as_bytes());
        }
        if self.status_header && !self.key.is_empty() {
            status_line.extend_from_slice(b"Cache-Status: levee; fwd=");
            status_line.extend_from_slice(self.fwd.as_bytes());
            if copy {
                status_line.extend_from_slice(b"; stored");
            }
            status_line.extend_from_slice(b"\r\n");
        }
        Admit::Relay { copy, status_line }
    }

    /// Marks the targeted fields that stop at levee as hop-by-hop, so the
    /// relay drops them (RFC 9213 lets a cache that obeys a field remove it).
    fn hide(&self, resp: &mut ResponseHead) {
        for name in &self.rules.hidden {
            if resp.fields.get(name).is_some() {
                resp.connection_tokens
                    .push(name.as_bytes().to_vec().into_boxed_slice());
            }
        }
    }

    /// The object to store (without its body) and the body length expected.
    fn prepare(
        &self,
        req: &RequestHead,
        resp: &ResponseHead,
        now: u64,
    ) -> Option<(Pending, Option<u64>)> {
        let req_fields: Vec<Field<'_>> = req.fields.iter().collect();
        let resp_fields: Vec<Field<'_>> = resp.fields.iter().collect();
        let control = policy::storable(
            req.method(),
            &req_fields,
            resp.status,
            &resp_fields,
            self.rules,
        )
        .ok()?;
        let expected = match resp.framing {
            Framing::Length(n) if n > self.cache.tier.store.max_object_anywhere() => return None,
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let names = key::vary_names(&resp_fields)?;
        let vary = (!names.is_empty()).then(|| {
            let secondary = key::secondary(&names, &req_fields);
            (Arc::from(names), secondary)
        });
        let meta = Stored::new(resp.status, self.request_time, now, &resp_fields, control);
        let head = policy::stored_head(&resp_fields, &meta.directives, self.rules, now);
        let object = Object {
            status: resp.status,
            visible: head.visible,
            head: head.lines,
            body: Default::default(),
            meta,
            tags: self.tags(&resp_fields),
        };
        Some((Pending { object, vary }, expected))
    }

    /// The surrogate keys the app set in the tag header.
    fn tags(&self, fields: &[Field<'_>]) -> Box<[Box<str>]> {
        levee_cache::values(fields, &self.cache.config.tag_header)
            .flat_map(|v| v.split(|&b| b == b' ' || b == b','))
            .filter(|t| !t.is_empty())
            .map(|t| Box::from(String::from_utf8_lossy(t).as_ref()))
            .collect()
    }

    /// The stored response `stale` as `resp` (a 304, or a HEAD's 200)
    /// confirms it: its fields updated (RFC 9111 §3.2, §4.3.4), its
    /// freshness from the updated fields and `resp`'s times.
    fn updated(&self, stale: &Object, resp: &ResponseHead) -> Object {
        let stored: Vec<Field<'_>> = stale.fields().collect();
        let update: Vec<Field<'_>> = resp.fields.iter().collect();
        let merged = policy::updated_fields(&stored, &update);
        let now = unix_now();
        let control = Control::of(&merged, &self.rules.targets);
        let mut meta = Stored::new(stale.status, self.request_time, now, &merged, control);
        // The age is the confirming response's (the stored one has none).
        meta.age = age_field(&update);
        let head = policy::stored_head(&merged, &meta.directives, self.rules, now);
        Object {
            status: stale.status,
            visible: head.visible,
            head: head.lines,
            body: stale.body.clone(),
            meta,
            tags: self.tags(&merged),
        }
    }

    /// The upstream's 304 confirms the stored response: it is updated,
    /// stored, and answers; the 304's `Set-Cookie` goes to this client only.
    fn refresh(&mut self, resp: &ResponseHead) -> bool {
        let Some((stale, key)) = &self.stale else {
            return false;
        };
        let object = Arc::new(self.updated(stale, resp));
        let store = &self.cache.tier.store;
        let entry = Entry::Object(object.clone());
        let purges = store.purges();
        let local = store.put(key.clone(), entry.clone());
        self.share_update(key.clone(), entry, local, purges);
        self.landing = Landing::Stored;
        self.land();
        let mut extra = Vec::new();
        for (name, value) in resp.fields.iter() {
            if name.eq_ignore_ascii_case(b"set-cookie") {
                crate::h1::write::field(&mut extra, name, value);
            }
        }
        self.answer = Some(Answer {
            obj: object,
            detail: "hit; fwd=stale; fwd-status=304".to_owned(),
            extra,
            source: self.stale_source,
        });
        true
    }

    /// A HEAD's 200 for a stored GET response (RFC 9111 §4.3.5): when its
    /// validators and length match, it updates the stored fields;
    /// otherwise the stored response is no longer used.
    fn freshen_from_head(&mut self, resp: &ResponseHead) {
        let Some((stale, key)) = &self.stale else {
            return;
        };
        let same = |name: &str| match resp.fields.get(name) {
            Some(v) => stale.field(name) == Some(v.trim_ascii()),
            None => true,
        };
        let length_matches = match resp.fields.get("content-length") {
            Some(v) => {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    == Some(stale.body.len())
            }
            None => true,
        };
        let store = &self.cache.tier.store;
        if same("etag") && same("last-modified") && length_matches {
            let entry = Entry::Object(Arc::new(self.updated(stale, resp)));
            let purges = store.purges();
            let local = store.put(key.clone(), entry.clone());
            let key = key.clone();
            self.share_update(key, entry, local, purges);
        } else {
            store.remove(key);
            self.share_remove.push(key.clone());
        }
    }

    /// Whether the body is still being copied (not past the object cap).
    pub fn copying(&self) -> bool {
        self.tee.as_ref().is_some_and(|t| !t.overflowed())
            || self.disk_tee.as_ref().is_some_and(|t| !t.overflowed())
    }

    /// The body is complete: store the object with it.
    fn store(&mut self, tee: BodyCopy<'_>) {
        let Some(Pending { mut object, vary }) = self.pending.take() else {
            return;
        };
        // Over the object cap the response is uncacheable (hit-for-miss);
        // short of in-flight budget it is only this fetch that failed.
        let starved = tee.starved();
        let Some(body) = tee.finish() else {
            self.landing = if starved {
                Landing::Failed
            } else {
                Landing::Uncacheable
            };
            self.land();
            return;
        };
        object.body = body;
        let store = &self.cache.tier.store;
        let ttl = store
            .shared
            .as_ref()
            .map_or(0, |s| s.ttl(&object.meta, unix_now()));
        let entry = Entry::Object(Arc::new(object));
        let (object_key, marker) = match vary {
            None => (self.key.clone(), None),
            Some((names, secondary)) => (variant_key(&self.key, &secondary), Some(names)),
        };
        // Read before the store: a purge that begins after it is seen.
        let purges = store.purges();
        let local = store.put(object_key.clone(), entry.clone())
            && marker
                .as_ref()
                .is_none_or(|names| store.put(self.key.clone(), Entry::Vary(names.clone())));
        let shared = store.shared.as_ref().is_some_and(|s| s.takes(&entry));
        if shared {
            if !local {
                // Only the shared tier takes it: staged, so this member
                // (and the flight's waiters) see it before Redis has it.
                store.stage(&object_key, Some(entry.clone()));
                if let Some(names) = &marker {
                    store.stage(&self.key, Some(Entry::Vary(names.clone())));
                }
            }
            self.share = Some(ToShare {
                key: object_key,
                entry,
                ttl,
                marker,
                staged: !local,
                purges,
            });
        }
        self.landing = if local || shared {
            Counters::add(&STATS.stored, 1);
            Landing::Stored
        } else {
            Landing::Uncacheable
        };
        self.land();
    }
}

impl BodySink for Fill<'_> {
    fn push(&mut self, data: &[u8]) {
        if self
            .tee
            .as_ref()
            .is_some_and(|t| !t.overflowed() && t.would_overflow(data.len()))
            && self.cache.tier.store.disk.is_some()
        {
            self.move_to_disk();
        }
        if let Some(t) = &mut self.tee {
            t.push(data);
        } else if let Some(d) = &mut self.disk_tee {
            d.push(data);
        }
    }

    fn complete(&mut self) {
        if let Some(t) = self.tee.take() {
            self.store(t);
        } else if let Some(d) = self.disk_tee.take() {
            self.store_disk(d);
        }
    }
}
