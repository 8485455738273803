//! The fleet's metrics in the Prometheus text format, names defined here
//! and nowhere else (the per-rule fallback counts are with the other
//! rate-limit counters in `levee_protect::metrics`).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crate::health::State;

/// Appends the fleet's metrics; nothing when `[fleet]` is not configured.
pub fn render_prometheus(out: &mut String) {
    let Some(f) = crate::current() else { return };
    let h = &f.link.health;
    let l = &f.link;
    let snapshot = f.snapshot();
    let fresh = snapshot.members.iter().filter(|m| m.fresh).count();
    let stale = snapshot.members.len() - fresh;
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    family(
        "levee_fleet_redis_up",
        "gauge",
        "1 while fleet limits apply (Redis answers and local admissions are charged), else 0.",
        &[("", u64::from(h.state() == State::Up))],
    );
    family(
        "levee_fleet_fallbacks_total",
        "counter",
        "Times Redis was found unreachable and limits fell back to each member's share.",
        &[("", h.went_down.load(Relaxed))],
    );
    family(
        "levee_fleet_resumes_total",
        "counter",
        "Times fleet limits resumed after Redis came back.",
        &[("", h.came_up.load(Relaxed))],
    );
    family(
        "levee_fleet_redis_commands_total",
        "counter",
        "Commands sent to Redis (script calls, heartbeats, publishes).",
        &[("", l.commands.load(Relaxed))],
    );
    family(
        "levee_fleet_redis_errors_total",
        "counter",
        "Redis commands that failed, by kind.",
        &[
            ("{kind=\"error\"}", l.errors.load(Relaxed)),
            ("{kind=\"timeout\"}", l.timeouts.load(Relaxed)),
        ],
    );
    family(
        "levee_fleet_rate_limit_calls_total",
        "counter",
        "Script calls made for fleet-scoped rate limits (each carries a batch of keys).",
        &[("", f.limits.calls.load(Relaxed))],
    );
    family(
        "levee_fleet_rate_limit_keys_total",
        "counter",
        "Keys asked about in those calls.",
        &[("", f.limits.items.load(Relaxed))],
    );
    family(
        "levee_fleet_members",
        "gauge",
        "Members in the last list read, by freshness.",
        &[
            ("{state=\"fresh\"}", fresh as u64),
            ("{state=\"stale\"}", stale as u64),
        ],
    );
}
