//! Each metric family's type and help text, as `/metrics` announces them
//! (`# TYPE`, `# HELP`), in the order it renders them.

use super::*;

/// One metric family.
pub(super) struct Def {
    pub(super) name: &'static str,
    pub(super) kind: &'static str,
    pub(super) help: &'static str,
}

pub(super) const DEFS: &[Def] = &[
    Def {
        name: MIRROR_REDIRECTS,
        kind: "counter",
        help: "Downloads redirected to a mirror.",
    },
    Def {
        name: MIRROR_BYTES,
        kind: "counter",
        help: "Bytes of the files redirected to a mirror.",
    },
    Def {
        name: MIRROR_LOCAL,
        kind: "counter",
        help: "Downloads of a mirror set served locally (small, excluded, or on no usable mirror).",
    },
    Def {
        name: MIRROR_UP,
        kind: "gauge",
        help: "1 if the mirror is offered now (enabled, probes pass, not disabled for misbehaving), else 0.",
    },
    Def {
        name: MIRROR_STRIKES,
        kind: "gauge",
        help: "Misbehaviours counted against the mirror (wrong size or content, 404 for a listed file).",
    },
    Def {
        name: MIRROR_FILES,
        kind: "gauge",
        help: "Files of the tree the mirror has with the local size, from its last scan.",
    },
    Def {
        name: MIRROR_STALE,
        kind: "gauge",
        help: "Files the mirror has with another size or an older time, never offered.",
    },
    Def {
        name: MIRROR_TREE_FILES,
        kind: "gauge",
        help: "Files in the set's local tree.",
    },
    Def {
        name: MIRROR_HASHED,
        kind: "gauge",
        help: "Files of the local tree whose SHA-256 is known.",
    },
    Def {
        name: MIRROR_COUNTRY,
        kind: "counter",
        help: "Downloads by the client's country (GeoIP; -- for unknown).",
    },
    Def {
        name: MIRROR_DAY,
        kind: "gauge",
        help: "Downloads per UTC day, for the last 32 days.",
    },
    Def {
        name: MIRROR_FILE,
        kind: "counter",
        help: "Downloads of the most downloaded files (top_files of them).",
    },
    Def {
        name: UPSTREAM_REQUESTS,
        kind: "counter",
        help: "Requests sent to an upstream server (each attempt of a retried request counts on its server).",
    },
    Def {
        name: UPSTREAM_RESPONSES,
        kind: "counter",
        help: "Responses from an upstream server by status class.",
    },
    Def {
        name: UPSTREAM_ERRORS,
        kind: "counter",
        help: "Failed exchanges with an upstream server by kind: connect, connect_timeout, reset, timeout, protocol.",
    },
    Def {
        name: UPSTREAM_LATENCY,
        kind: "histogram",
        help: "Time from sending a request to an upstream server to its response head.",
    },
    Def {
        name: UPSTREAM_UP,
        kind: "gauge",
        help: "1 if the server takes new requests now, else 0.",
    },
    Def {
        name: UPSTREAM_STATE,
        kind: "gauge",
        help: "1 for the server's current state: up, slow_start, draining, disabled, down, ejected, removed.",
    },
    Def {
        name: UPSTREAM_ACTIVE,
        kind: "gauge",
        help: "Requests in flight to the server.",
    },
    Def {
        name: UPSTREAM_IDLE,
        kind: "gauge",
        help: "Idle pooled connections to the server, over all workers.",
    },
    Def {
        name: UPSTREAM_PANIC,
        kind: "counter",
        help: "Servers chosen in panic mode: no server of the upstream was usable, so health was ignored.",
    },
    Def {
        name: LISTENER_CONNECTIONS,
        kind: "counter",
        help: "Client connections accepted by a listener.",
    },
    Def {
        name: LISTENER_REQUESTS,
        kind: "counter",
        help: "Requests received on a listener.",
    },
    Def {
        name: CACHE_HITS,
        kind: "counter",
        help: "Requests answered from a fresh stored response (coalesced waiters included).",
    },
    Def {
        name: CACHE_MISSES,
        kind: "counter",
        help: "Cacheable requests that went to the upstream (including revalidations).",
    },
    Def {
        name: CACHE_STALE,
        kind: "counter",
        help: "Stale responses served: allowed by the client, while revalidating, or standing in for a failed upstream.",
    },
    Def {
        name: CACHE_COALESCED,
        kind: "counter",
        help: "Misses that waited for another request's fetch of the same key.",
    },
    Def {
        name: CACHE_STORED,
        kind: "counter",
        help: "Responses stored.",
    },
    Def {
        name: CACHE_PURGED,
        kind: "counter",
        help: "Entries removed by purges and by invalidation after unsafe methods.",
    },
    Def {
        name: CACHE_EVICTIONS,
        kind: "counter",
        help: "Entries evicted to stay within [cache] max_size.",
    },
    Def {
        name: CACHE_BYTES,
        kind: "gauge",
        help: "Bytes held by the cache store (objects, heads and keys).",
    },
    Def {
        name: CACHE_OBJECTS,
        kind: "gauge",
        help: "Entries in the cache store (objects and Vary markers).",
    },
    Def {
        name: CACHE_TIER_HITS,
        kind: "counter",
        help: "Answers from a stored response by the tier that held it: memory, disk or shared (stale and collapsed answers included).",
    },
    Def {
        name: CACHE_DISK_BYTES,
        kind: "gauge",
        help: "Bytes of the disk tier's files (in 4 KiB blocks).",
    },
    Def {
        name: CACHE_DISK_OBJECTS,
        kind: "gauge",
        help: "Entries in the disk tier (objects and Vary markers).",
    },
    Def {
        name: CACHE_DISK_WRITABLE,
        kind: "gauge",
        help: "1 while the disk tier writes, 0 while loading, after a failed write (for a while) or when unusable.",
    },
    Def {
        name: CACHE_DISK_WRITES,
        kind: "counter",
        help: "Objects and Vary markers written to the disk tier.",
    },
    Def {
        name: CACHE_DISK_SKIPPED,
        kind: "counter",
        help: "Writes to the disk tier not done: too large, writes off, or its queue full.",
    },
    Def {
        name: CACHE_DISK_ERRORS,
        kind: "counter",
        help: "Disk tier failures by kind: error (a write or read failed), corrupt (a file missing, torn or damaged, answered as a miss).",
    },
    Def {
        name: CACHE_DISK_EVICTIONS,
        kind: "counter",
        help: "Entries evicted from the disk tier to stay within [cache.disk] max_size.",
    },
    Def {
        name: CACHE_SHARED_LOOKUPS,
        kind: "counter",
        help: "Lookups in the fleet's shared tier by result: hit, miss, error (Redis down or slow: a miss).",
    },
    Def {
        name: CACHE_SHARED_STORED,
        kind: "counter",
        help: "Objects this member stored in the shared tier.",
    },
    Def {
        name: CACHE_SHARED_LOCKS,
        kind: "counter",
        help: "Cold keys by what this member did: won (fetched for the fleet), waited (for another member), timeout (waited in vain, fetched too).",
    },
];
