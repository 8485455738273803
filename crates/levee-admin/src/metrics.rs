//! `/metrics` in the Prometheus text format (version 0.0.4). Every upstream,
//! listener, route and TLS metric is defined here, once: its name, type and help, so
//! names follow one convention (`levee_` prefix, base units, `_total`
//! counters), the download redirector's (`levee_mirror_`) too. Protection metrics follow the same convention and are defined
//! beside their counters in `levee_protect::metrics`, which `render` appends.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use levee_http::Site;
use levee_upstream::stats::{ErrorKind, LATENCY_BUCKETS};
use levee_upstream::{Group, Status};
use tokio::time::Instant;

mod defs;

use defs::DEFS;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub const UPSTREAM_REQUESTS: &str = "levee_upstream_requests_total";
pub const UPSTREAM_RESPONSES: &str = "levee_upstream_responses_total";
pub const UPSTREAM_ERRORS: &str = "levee_upstream_errors_total";
pub const UPSTREAM_LATENCY: &str = "levee_upstream_response_seconds";
pub const UPSTREAM_UP: &str = "levee_upstream_server_up";
pub const UPSTREAM_STATE: &str = "levee_upstream_server_state";
pub const UPSTREAM_ACTIVE: &str = "levee_upstream_active_requests";
pub const UPSTREAM_IDLE: &str = "levee_upstream_idle_connections";
pub const UPSTREAM_PANIC: &str = "levee_upstream_panic_total";
pub const LISTENER_CONNECTIONS: &str = "levee_listener_connections_total";
pub const LISTENER_REQUESTS: &str = "levee_listener_requests_total";
pub const CACHE_HITS: &str = "levee_cache_hits_total";
pub const CACHE_MISSES: &str = "levee_cache_misses_total";
pub const CACHE_STALE: &str = "levee_cache_stale_total";
pub const CACHE_COALESCED: &str = "levee_cache_coalesced_total";
pub const CACHE_STORED: &str = "levee_cache_stored_total";
pub const CACHE_PURGED: &str = "levee_cache_purged_total";
pub const CACHE_EVICTIONS: &str = "levee_cache_evictions_total";
pub const CACHE_BYTES: &str = "levee_cache_bytes";
pub const CACHE_OBJECTS: &str = "levee_cache_entries";
pub const CACHE_TIER_HITS: &str = "levee_cache_tier_hits_total";
pub const CACHE_DISK_BYTES: &str = "levee_cache_disk_bytes";
pub const CACHE_DISK_OBJECTS: &str = "levee_cache_disk_entries";
pub const CACHE_DISK_WRITABLE: &str = "levee_cache_disk_writable";
pub const CACHE_DISK_WRITES: &str = "levee_cache_disk_writes_total";
pub const CACHE_DISK_SKIPPED: &str = "levee_cache_disk_skipped_total";
pub const CACHE_DISK_ERRORS: &str = "levee_cache_disk_errors_total";
pub const CACHE_DISK_EVICTIONS: &str = "levee_cache_disk_evictions_total";
pub const CACHE_SHARED_LOOKUPS: &str = "levee_cache_shared_lookups_total";
pub const CACHE_SHARED_STORED: &str = "levee_cache_shared_stored_total";
pub const CACHE_SHARED_LOCKS: &str = "levee_cache_shared_locks_total";
pub const MIRROR_REDIRECTS: &str = "levee_mirror_redirects_total";
pub const MIRROR_BYTES: &str = "levee_mirror_redirected_bytes_total";
pub const MIRROR_LOCAL: &str = "levee_mirror_local_total";
pub const MIRROR_UP: &str = "levee_mirror_up";
pub const MIRROR_STRIKES: &str = "levee_mirror_strikes";
pub const MIRROR_FILES: &str = "levee_mirror_files";
pub const MIRROR_STALE: &str = "levee_mirror_stale_files";
pub const MIRROR_TREE_FILES: &str = "levee_mirror_tree_files";
pub const MIRROR_HASHED: &str = "levee_mirror_hashed_files";
pub const MIRROR_COUNTRY: &str = "levee_mirror_country_downloads_total";
pub const MIRROR_DAY: &str = "levee_mirror_day_downloads";
pub const MIRROR_FILE: &str = "levee_mirror_file_downloads_total";
pub const ROUTE_RESPONSES: &str = "levee_route_responses_total";
pub const ROUTE_LATENCY: &str = "levee_route_request_seconds";
pub const TLS_HANDSHAKES: &str = "levee_tls_handshakes_total";
pub const TLS_EXPIRY: &str = "levee_tls_certificate_expiry_timestamp_seconds";

const STATES: [Status; 7] = [
    Status::Up,
    Status::SlowStart,
    Status::Draining,
    Status::Disabled,
    Status::Down,
    Status::Ejected,
    Status::Removed,
];

/// Renders every metric for the current site.
pub fn render(site: &Site) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut groups: Vec<&std::sync::Arc<Group>> = site.upstreams.values().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let now = Instant::now();
    for def in DEFS {
        let _ = writeln!(out, "# HELP {} {}", def.name, def.help);
        let _ = writeln!(out, "# TYPE {} {}", def.name, def.kind);
        if def.name.starts_with("levee_listener_") {
            listener_series(&mut out, def.name);
            continue;
        }
        if def.name.starts_with("levee_cache_") {
            cache_series(&mut out, def.name, site);
            continue;
        }
        if def.name.starts_with("levee_mirror_") {
            mirror_series(&mut out, def.name, site);
            continue;
        }
        if def.name == UPSTREAM_PANIC {
            for g in &groups {
                let panic = g.stats.panic.load(Relaxed);
                let _ = writeln!(
                    out,
                    "{UPSTREAM_PANIC}{{upstream=\"{}\"}} {panic}",
                    escape(&g.name)
                );
            }
            continue;
        }
        for g in &groups {
            let members = g.members();
            for m in &members.list {
                let labels = format!("upstream=\"{}\",server=\"{}\"", escape(&g.name), m.addr);
                server_series(&mut out, def.name, &labels, g, m, now);
            }
        }
    }
    routes(&mut out);
    tls(&mut out);
    levee_protect::metrics::render_prometheus(&mut out);
    levee_mail::metrics::render_prometheus(&mut out);
    levee_fleet::metrics::render_prometheus(&mut out);
    crate::process_metrics::render(&mut out);
    levee_acme::status::render_prometheus(&mut out);
    levee_dns::metrics::render_prometheus(&mut out);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Responses and request latency per route (a route is named by its
/// hosts and path prefix; requests that matched none are `(no route)`).
fn routes(out: &mut String) {
    let routes = levee_upstream::stats::all_routes();
    header(
        out,
        ROUTE_RESPONSES,
        "counter",
        "Responses to clients per route by status class.",
    );
    for (name, r) in &routes {
        for class in 0..5 {
            let _ = writeln!(
                out,
                "{ROUTE_RESPONSES}{{route=\"{}\",class=\"{}xx\"}} {}",
                escape(name),
                class + 1,
                r.responses(class)
            );
        }
    }
    header(
        out,
        ROUTE_LATENCY,
        "histogram",
        "Time from a request's head to its response's end, per route.",
    );
    for (name, r) in &routes {
        let labels = format!("route=\"{}\"", escape(name));
        let (buckets, sum) = r.latency();
        histogram(out, ROUTE_LATENCY, &labels, &buckets, sum);
    }
}

/// A histogram's series from cumulative buckets over [`LATENCY_BUCKETS`].
fn histogram(out: &mut String, name: &str, labels: &str, buckets: &[u64; 13], sum: f64) {
    for (le, count) in LATENCY_BUCKETS.iter().zip(buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let total = buckets.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

/// TLS handshakes and the expiry of every certificate in use.
fn tls(out: &mut String) {
    use levee_tls::expiry::{HANDSHAKE_FAILURES, HANDSHAKES, certificates};
    header(
        out,
        TLS_HANDSHAKES,
        "counter",
        "TLS handshakes on every TLS listener, by result (ok or failed).",
    );
    let _ = writeln!(
        out,
        "{TLS_HANDSHAKES}{{result=\"ok\"}} {}",
        HANDSHAKES.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "{TLS_HANDSHAKES}{{result=\"failed\"}} {}",
        HANDSHAKE_FAILURES.load(Relaxed)
    );
    header(
        out,
        TLS_EXPIRY,
        "gauge",
        "The notAfter of each certificate in use, in seconds since the Unix epoch.",
    );
    for c in certificates() {
        let Some(at) = c.not_after else { continue };
        let _ = writeln!(
            out,
            "{TLS_EXPIRY}{{path=\"{}\",names=\"{}\"}} {at}",
            escape(&c.path.display().to_string()),
            escape(&c.names.join(","))
        );
    }
}

/// The cache's counters (process-wide) and its store's size (none without a caching route).
fn cache_series(out: &mut String, name: &str, site: &Site) {
    use levee_cache::stats::{Counters, STATS};
    use levee_cache::store::Storage;
    let store = site.cache.as_ref().map(|c| &c.tier.store);
    if tier_series(out, name, store) {
        return;
    }
    let value = match name {
        CACHE_HITS => Counters::get(&STATS.hits),
        CACHE_MISSES => Counters::get(&STATS.misses),
        CACHE_STALE => Counters::get(&STATS.stale),
        CACHE_COALESCED => Counters::get(&STATS.coalesced),
        CACHE_STORED => Counters::get(&STATS.stored),
        CACHE_PURGED => Counters::get(&STATS.purged),
        CACHE_EVICTIONS => store.map_or(0, |s| s.evictions()),
        CACHE_BYTES => store.map_or(0, |s| s.bytes()),
        CACHE_OBJECTS => store.map_or(0, |s| s.len() as u64),
        _ => return,
    };
    let _ = writeln!(out, "{name} {value}");
}

/// The per-tier series (labelled, or for the disk and shared tiers);
/// false for another name.
fn tier_series(out: &mut String, name: &str, store: Option<&levee_cache::tiers::Tiers>) -> bool {
    use levee_cache::stats::{Counters, STATS};
    let disk = store.and_then(|s| s.disk.as_deref());
    let shared = store.and_then(|s| s.shared.as_deref());
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    let labelled: Vec<(&str, u64)> = match name {
        CACHE_TIER_HITS => vec![
            ("{tier=\"memory\"}", Counters::get(&STATS.hits_memory)),
            ("{tier=\"disk\"}", Counters::get(&STATS.hits_disk)),
            ("{tier=\"shared\"}", Counters::get(&STATS.hits_shared)),
        ],
        CACHE_DISK_BYTES => vec![("", disk.map_or(0, |d| d.bytes()))],
        CACHE_DISK_OBJECTS => vec![("", disk.map_or(0, |d| d.len() as u64))],
        CACHE_DISK_WRITABLE => vec![(
            "",
            u64::from(disk.is_some_and(|d| d.health() == levee_cache::disk::Health::Ready)),
        )],
        CACHE_DISK_WRITES => vec![("", disk.map_or(0, |d| get(&d.stats().writes)))],
        CACHE_DISK_SKIPPED => vec![("", disk.map_or(0, |d| get(&d.stats().skipped)))],
        CACHE_DISK_ERRORS => vec![
            (
                "{kind=\"error\"}",
                disk.map_or(0, |d| get(&d.stats().errors)),
            ),
            (
                "{kind=\"corrupt\"}",
                disk.map_or(0, |d| get(&d.stats().corrupt)),
            ),
        ],
        CACHE_DISK_EVICTIONS => vec![("", disk.map_or(0, |d| get(&d.stats().evictions)))],
        CACHE_SHARED_LOOKUPS => vec![
            ("{result=\"hit\"}", shared.map_or(0, |s| get(&s.stats.hits))),
            (
                "{result=\"miss\"}",
                shared.map_or(0, |s| get(&s.stats.misses)),
            ),
            (
                "{result=\"error\"}",
                shared.map_or(0, |s| get(&s.stats.errors)),
            ),
        ],
        CACHE_SHARED_STORED => vec![("", shared.map_or(0, |s| get(&s.stats.stored)))],
        CACHE_SHARED_LOCKS => vec![
            (
                "{outcome=\"won\"}",
                shared.map_or(0, |s| get(&s.stats.locks_won)),
            ),
            (
                "{outcome=\"waited\"}",
                shared.map_or(0, |s| get(&s.stats.locks_waited)),
            ),
            (
                "{outcome=\"timeout\"}",
                shared.map_or(0, |s| get(&s.stats.lock_timeouts)),
            ),
        ],
        _ => return false,
    };
    for (labels, v) in labelled {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
    true
}

fn server_series(
    out: &mut String,
    name: &str,
    labels: &str,
    g: &Group,
    m: &levee_upstream::Member,
    now: Instant,
) {
    let s = &m.state;
    match name {
        UPSTREAM_REQUESTS => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", s.stats.requests());
        }
        UPSTREAM_RESPONSES => {
            for class in 0..5 {
                let _ = writeln!(
                    out,
                    "{name}{{{labels},class=\"{}xx\"}} {}",
                    class + 1,
                    s.stats.responses(class)
                );
            }
        }
        UPSTREAM_ERRORS => {
            for kind in ErrorKind::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{{labels},kind=\"{}\"}} {}",
                    kind.as_str(),
                    s.stats.errors(kind)
                );
            }
        }
        UPSTREAM_LATENCY => {
            let (buckets, sum) = s.stats.latency();
            histogram(out, name, labels, &buckets, sum);
        }
        UPSTREAM_UP => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", u8::from(s.usable(now)));
        }
        UPSTREAM_STATE => {
            let current = s.status(now, g.config.slow_start);
            for st in STATES {
                let _ = writeln!(
                    out,
                    "{name}{{{labels},state=\"{}\"}} {}",
                    st.as_str(),
                    u8::from(st == current)
                );
            }
        }
        UPSTREAM_ACTIVE => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", s.active());
        }
        UPSTREAM_IDLE => {
            let idle = s.stats.idle().max(0);
            let _ = writeln!(out, "{name}{{{labels}}} {idle}");
        }
        _ => {}
    }
}

/// One family of the download redirector's series, for every set.
fn mirror_series(out: &mut String, name: &str, site: &Site) {
    let mut sets: Vec<&std::sync::Arc<levee_mirror::MirrorSet>> = site.mirrors.values().collect();
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    for set in sets {
        let s = escape(&set.name);
        let view = set.view();
        let per_set = match name {
            MIRROR_LOCAL => Some(set.stats.local.load(Relaxed)),
            MIRROR_TREE_FILES => Some(view.tree.len() as u64),
            MIRROR_HASHED => Some(view.tree.hashed() as u64),
            _ => None,
        };
        if let Some(v) = per_set {
            let _ = writeln!(out, "{name}{{set=\"{s}\"}} {v}");
            continue;
        }
        match name {
            MIRROR_COUNTRY => {
                for (c, n) in set.stats.countries() {
                    let _ = writeln!(out, "{name}{{set=\"{s}\",country=\"{c}\"}} {n}");
                }
            }
            MIRROR_DAY => {
                for (d, n) in set.stats.days(std::time::SystemTime::now()) {
                    let _ = writeln!(out, "{name}{{set=\"{s}\",day=\"{d}\"}} {n}");
                }
            }
            MIRROR_FILE => {
                for (id, n) in view.tree.top(set.settings().top_files as usize) {
                    let path = escape(&String::from_utf8_lossy(view.tree.path(id)));
                    let _ = writeln!(out, "{name}{{set=\"{s}\",path=\"/{path}\"}} {n}");
                }
            }
            _ => {
                for m in &view.mirrors {
                    let v = match name {
                        MIRROR_REDIRECTS => m.live.redirects.load(Relaxed),
                        MIRROR_BYTES => m.live.bytes.load(Relaxed),
                        MIRROR_UP => u64::from(m.usable()),
                        MIRROR_STRIKES => u64::from(m.live.strikes()),
                        MIRROR_FILES => m.holdings.has.count() as u64,
                        MIRROR_STALE => u64::from(m.holdings.stale),
                        _ => continue,
                    };
                    let mirror = escape(m.profile.name());
                    let _ = writeln!(out, "{name}{{set=\"{s}\",mirror=\"{mirror}\"}} {v}");
                }
            }
        }
    }
}

fn listener_series(out: &mut String, name: &str) {
    for (addr, stats) in levee_http::listener::stats::all_listeners() {
        let value = if name == LISTENER_CONNECTIONS {
            stats.connections()
        } else {
            stats.requests()
        };
        let _ = writeln!(out, "{name}{{listener=\"{addr}\"}} {value}");
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
