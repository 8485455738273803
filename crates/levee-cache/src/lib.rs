//! levee's HTTP cache: the RFC 9111 rules, without I/O.
//!
//! - [`body`]: stored bodies, in allocator-friendly pieces, and the copy
//!   taken while one is relayed (bounded by the in-flight budget);
//! - [`directives`]: `Cache-Control` of requests and responses;
//! - [`freshness`]: freshness lifetime, age, and whether a stored response
//!   may be served, must be revalidated, or may be served stale;
//! - [`targeted`]: targeted cache control (RFC 9213), which overrides
//!   `Cache-Control` for levee;
//! - [`policy`]: whether a response may be stored at all, which of its
//!   fields are, and which requests invalidate;
//! - [`key`]: the cache key and the Vary secondary key;
//! - [`store`]: where stored responses live (memory, bounded in bytes);
//! - [`disk`]: the disk tier, files that survive restarts, and [`codec`],
//!   stored entries as bytes (its files' headers, the shared tier's values);
//! - [`tiers`]: memory and disk behind one store; [`shared`]: the fleet's
//!   tier (Redis or memcached) with its cross-member coalescing lock;
//! - [`purge`]: what a purge names, tested against every tier's keys;
//! - [`flight`]: request coalescing and hit-for-miss;
//! - [`stats`]: counters for the admin metrics.
//!
//! The RFC 9111 rules do no I/O: time is always a parameter (seconds since
//! the epoch), so they are tested without clocks. The tiers do theirs
//! (files, the network) in their own modules. The proxy hook that uses all
//! this lives in levee-http (`cache.rs`).

pub mod body;
pub mod codec;
pub mod directives;
pub mod disk;
pub mod flight;
pub mod freshness;
pub mod key;
pub mod policy;
pub mod purge;
pub mod shared;
pub mod stats;
pub mod store;
pub mod targeted;
pub mod tiers;

/// A header field as the cache sees it: name (any case) and value.
pub type Field<'a> = (&'a [u8], &'a [u8]);

/// All values of the field `name`, in order.
pub fn values<'a>(fields: &'a [Field<'a>], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
}

/// The first value of `name`.
pub fn first<'a>(fields: &'a [Field<'a>], name: &'a str) -> Option<&'a [u8]> {
    values(fields, name).next()
}
