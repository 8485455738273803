//! Turns samples into what the page shows: rates from the last second,
//! latency percentiles over the last ten seconds (one second holds too few
//! requests to rank), and the history's point for the second.

use std::collections::HashMap;

use levee_upstream::stats::LATENCY_BUCKETS;
use serde_json::{Value, json};

use super::history::{Point, number};
use super::sample::{Buckets, Sample};

/// The quantile `q` (0 to 1) of a histogram difference, in milliseconds,
/// interpolated within its bucket; `None` with no requests. Past the last
/// bound it says the last bound (10 s): the histogram knows no more.
pub fn quantile(delta: &Buckets, q: f64) -> Option<f64> {
    let total = delta[LATENCY_BUCKETS.len()];
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let i = delta.iter().position(|&c| c as f64 >= rank)?;
    let Some(&upper) = LATENCY_BUCKETS.get(i) else {
        return Some(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] * 1000.0);
    };
    let (lower, below) = match i {
        0 => (0.0, 0),
        _ => (LATENCY_BUCKETS[i - 1], delta[i - 1]),
    };
    let inside = (delta[i] - below) as f64;
    let frac = if inside > 0.0 {
        (rank - below as f64) / inside
    } else {
        1.0
    };
    Some((lower + (upper - lower) * frac.clamp(0.0, 1.0)) * 1000.0)
}

fn minus(a: &Buckets, b: &Buckets) -> Buckets {
    std::array::from_fn(|i| a[i].saturating_sub(b[i]))
}

fn add(a: &mut Buckets, b: &Buckets) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

fn percentiles(delta: &Buckets) -> Value {
    let q = |p| quantile(delta, p).map_or(Value::Null, |v| number(v as f32));
    json!({ "p50": q(0.5), "p95": q(0.95), "p99": q(0.99) })
}

/// Samples of the last seconds, newest last, for rates and windows.
pub struct Window<'a> {
    pub now: &'a Sample,
    /// About a second before `now`.
    pub prev: &'a Sample,
    /// About ten seconds before `now` (the oldest kept).
    pub old: &'a Sample,
}

impl Window<'_> {
    fn secs(a: &Sample, b: &Sample) -> f64 {
        (a.at_ms.saturating_sub(b.at_ms) as f64 / 1000.0).max(0.001)
    }

    /// Per second between `prev` and `now`.
    fn rate(&self, now: u64, prev: u64) -> f64 {
        now.saturating_sub(prev) as f64 / Self::secs(self.now, self.prev)
    }

    /// Per second between `old` and `now`.
    fn rate10(&self, now: u64, old: u64) -> f64 {
        now.saturating_sub(old) as f64 / Self::secs(self.now, self.old)
    }
}

fn by_name<T>(list: &[T], name: impl Fn(&T) -> &str) -> HashMap<&str, &T> {
    list.iter().map(|x| (name(x), x)).collect()
}

/// The history's point for the second ending at `w.now`.
pub fn point(w: &Window<'_>) -> Point {
    let (now, prev) = (w.now, w.prev);
    let prev_routes = by_name(&prev.routes, |r| &r.name);
    let mut rps = [0f32; 5];
    let mut lat = [0u64; 13];
    for r in &now.routes {
        let before = prev_routes.get(r.name.as_str());
        for (c, slot) in rps.iter_mut().enumerate() {
            let old = before.map_or(0, |b| b.responses[c]);
            *slot += w.rate(r.responses[c], old) as f32;
        }
        let old = before.map_or([0; 13], |b| b.latency);
        add(&mut lat, &minus(&r.latency, &old));
    }
    let q = |p| quantile(&lat, p).map_or(f32::NAN, |v| v as f32);
    let cache_hit = now.cache.as_ref().map_or(f32::NAN, |c| {
        let p = prev.cache.clone().unwrap_or_default();
        let hits = c.hits.saturating_sub(p.hits);
        let lookups = hits + c.misses.saturating_sub(p.misses);
        if lookups == 0 {
            f32::NAN
        } else {
            hits as f32 / lookups as f32
        }
    });
    let logins = |s: &Sample, ok: bool| -> u64 {
        s.mail
            .logins
            .iter()
            .map(|row| if ok { row[0] } else { row[1..].iter().sum() })
            .sum()
    };
    let refused = |s: &Sample| s.rules.iter().map(|r| r.refused).sum::<u64>();
    let errors = |s: &Sample| {
        s.upstreams
            .iter()
            .flat_map(|u| &u.servers)
            .map(|x| x.errors)
            .sum::<u64>()
    };
    let cpu = (now.process.cpu_seconds - prev.process.cpu_seconds).max(0.0)
        / Window::secs(now, prev)
        * 100.0;
    Point {
        t: (now.at_ms / 1000) as u32,
        rps,
        p50: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        connections: levee_protect::conns::open_all() as f32,
        cpu: cpu as f32,
        rss_mib: now.process.rss_bytes as f32 / (1024.0 * 1024.0),
        hit_ratio: cache_hit,
        mail_logins: w.rate(
            logins(now, true) + logins(now, false),
            logins(prev, true) + logins(prev, false),
        ) as f32,
        mail_failures: w.rate(logins(now, false), logins(prev, false)) as f32,
        tls_handshakes: w.rate(now.tls.handshakes, prev.tls.handshakes) as f32,
        limited: w.rate(refused(now), refused(prev)) as f32,
        upstream_errors: w.rate(errors(now), errors(prev)) as f32,
    }
}

/// Everything the live view shows, as one JSON object.
pub fn view(w: &Window<'_>, point: &Point) -> Value {
    let now = w.now;
    let old_routes = by_name(&w.old.routes, |r| &r.name);
    let prev_routes = by_name(&w.prev.routes, |r| &r.name);
    let routes: Vec<Value> = now
        .routes
        .iter()
        .map(|r| {
            let prev = prev_routes.get(r.name.as_str());
            let old = old_routes
                .get(r.name.as_str())
                .map_or([0; 13], |o| o.latency);
            let total = |s: &[u64; 5]| s.iter().sum::<u64>();
            let rps = w.rate(total(&r.responses), prev.map_or(0, |p| total(&p.responses)));
            let errors = w.rate(r.responses[4], prev.map_or(0, |p| p.responses[4]));
            json!({
                "name": r.name,
                "rps": number(rps as f32),
                "errors_per_s": number(errors as f32),
                "latency_ms": percentiles(&minus(&r.latency, &old)),
                "requests": total(&r.responses),
            })
        })
        .collect();
    let prev_listeners = by_name(&w.prev.listeners, |l| &l.address);
    let listeners: Vec<Value> = now
        .listeners
        .iter()
        .map(|l| {
            let p = prev_listeners.get(l.address.as_str());
            json!({
                "address": l.address,
                "open": l.open,
                "idle": l.idle,
                "active": l.open.zip(l.idle).map(|(o, i)| o.saturating_sub(i)),
                "connections_per_s": number(w.rate(l.connections, p.map_or(0, |p| p.connections)) as f32),
                "requests_per_s": number(w.rate(l.requests, p.map_or(0, |p| p.requests)) as f32),
            })
        })
        .collect();
    json!({
        "t": now.at_ms,
        "point": point.to_json(),
        "routes": routes,
        "listeners": listeners,
        "descriptors": { "open": now.process.fds, "limit": now.process.fd_limit },
        "upstreams": upstreams(w),
        "cache": cache(w),
        "mail": mail(w),
        "rate_limits": rules(w),
        "tls": tls(w),
        "process": {
            "cpu_percent": number(point.cpu),
            "rss_bytes": now.process.rss_bytes,
        },
        "bans": { "active": now.bans, "refused_total": now.banned_total },
    })
}

fn upstreams(w: &Window<'_>) -> Vec<Value> {
    let key = |u: &str, s: &str| format!("{u}\u{0}{s}");
    let mut prev = HashMap::new();
    let mut old = HashMap::new();
    for (map, sample) in [(&mut prev, w.prev), (&mut old, w.old)] {
        for u in &sample.upstreams {
            for s in &u.servers {
                map.insert(key(&u.name, &s.address), s);
            }
        }
    }
    w.now
        .upstreams
        .iter()
        .map(|u| {
            // The upstream's own percentiles: its servers' histograms summed.
            let mut lat = [0u64; 13];
            let mut rps = 0.0;
            for s in &u.servers {
                let k = key(&u.name, &s.address);
                let o = old.get(&k).map_or([0; 13], |o| o.latency);
                add(&mut lat, &minus(&s.latency, &o));
                rps += w.rate(s.requests, prev.get(&k).map_or(0, |p| p.requests));
            }
            let servers: Vec<Value> = u
                .servers
                .iter()
                .map(|s| {
                    let k = key(&u.name, &s.address);
                    let p = prev.get(&k);
                    let o = old.get(&k);
                    // Error rate over ten seconds: failed exchanges and 5xx
                    // answers over attempts.
                    let attempts = s.requests.saturating_sub(o.map_or(0, |o| o.requests));
                    let failed = (s.errors + s.responses[4])
                        .saturating_sub(o.map_or(0, |o| o.errors + o.responses[4]));
                    let error_rate = if attempts == 0 {
                        Value::Null
                    } else {
                        number((failed as f64 / attempts as f64).min(1.0) as f32)
                    };
                    json!({
                        "address": s.address,
                        "configured": s.configured,
                        "backup": s.backup,
                        "state": s.state,
                        "why": why(s),
                        "admin": s.admin,
                        "weight": s.weight,
                        "weight_override": s.weight_override,
                        "effective_weight": number(s.effective_weight as f32),
                        "active": s.active,
                        "rps": number(w.rate(s.requests, p.map_or(0, |p| p.requests)) as f32),
                        "requests": s.requests,
                        "error_rate": error_rate,
                        "latency_ms": percentiles(&minus(&s.latency, &o.map_or([0; 13], |o| o.latency))),
                    })
                })
                .collect();
            json!({
                "name": u.name,
                "rps": number(rps as f32),
                "latency_ms": percentiles(&lat),
                "servers": servers,
            })
        })
        .collect()
}

/// Why a server is in its state, in words.
fn why(s: &super::sample::ServerSample) -> String {
    match s.state {
        "up" => String::new(),
        "slow_start" => "back up; its weight is ramping up (slow start)".into(),
        "draining" => "drained by an operator: no new requests".into(),
        "disabled" => "disabled by an operator".into(),
        "down" => "failing its health check".into(),
        "ejected" => match s.ejected_ms {
            Some(ms) => format!(
                "ejected after failed requests; back in {} s",
                ms.div_ceil(1000)
            ),
            None => "ejected after failed requests".into(),
        },
        "removed" => "removed from the config; finishing its requests".into(),
        other => other.to_owned(),
    }
}

fn cache(w: &Window<'_>) -> Value {
    let Some(c) = &w.now.cache else {
        return Value::Null;
    };
    let o = w.old.cache.clone().unwrap_or_default();
    let p = w.prev.cache.clone().unwrap_or_default();
    let hits = c.hits.saturating_sub(o.hits);
    let lookups = hits + c.misses.saturating_sub(o.misses);
    json!({
        "hit_ratio": if lookups == 0 { Value::Null } else { number(hits as f32 / lookups as f32) },
        "bytes": c.bytes,
        "max_bytes": c.max_bytes,
        "entries": c.entries,
        "evictions_total": c.evictions,
        "evictions_per_s": number(w.rate(c.evictions, p.evictions) as f32),
        "stale_per_s": number(w.rate(c.stale, p.stale) as f32),
    })
}

fn mail(w: &Window<'_>) -> Value {
    use levee_mail::metrics::{LOGIN_RESULTS, PROTOCOL_NAMES};
    let (now, old) = (&w.now.mail, &w.old.mail);
    let protocols: Vec<Value> = PROTOCOL_NAMES
        .iter()
        .enumerate()
        .map(|(p, name)| {
            let logins: u64 = now.logins[p].iter().sum();
            let before: u64 = old.logins[p].iter().sum();
            json!({
                "protocol": name,
                "sessions": now.sessions[p][0] + now.sessions[p][1],
                "logged_in": now.sessions[p][1],
                "logins_per_s": number(w.rate10(logins, before) as f32),
            })
        })
        .collect();
    let failures: Vec<Value> = LOGIN_RESULTS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, reason)| {
            let n: u64 = now.logins.iter().map(|r| r[i]).sum();
            let b: u64 = old.logins.iter().map(|r| r[i]).sum();
            json!({ "reason": reason, "per_s": number(w.rate10(n, b) as f32), "total": n })
        })
        .collect();
    json!({ "protocols": protocols, "failures": failures })
}

fn rules(w: &Window<'_>) -> Vec<Value> {
    let old = by_name(&w.old.rules, |r| &r.name);
    w.now
        .rules
        .iter()
        .map(|r| {
            let o = old.get(r.name.as_str());
            let before: HashMap<&str, u64> = o
                .map(|o| o.top.iter().map(|(k, n)| (k.as_str(), *n)).collect())
                .unwrap_or_default();
            let mut top: Vec<(f64, &str, u64)> = r
                .top
                .iter()
                .map(|(k, n)| {
                    let b = before.get(k.as_str()).copied().unwrap_or(0);
                    (w.rate10(*n, b), k.as_str(), *n)
                })
                .collect();
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.2.cmp(&a.2)));
            let top: Vec<Value> = top
                .into_iter()
                .take(10)
                .map(|(rate, key, total)| {
                    json!({ "key": key, "refused_per_s": number(rate as f32), "refused_total": total })
                })
                .collect();
            json!({
                "rule": r.name,
                "admitted_per_s": number(w.rate10(r.admitted, o.map_or(0, |o| o.admitted)) as f32),
                "delayed_per_s": number(w.rate10(r.delayed, o.map_or(0, |o| o.delayed)) as f32),
                "refused_per_s": number(w.rate10(r.refused, o.map_or(0, |o| o.refused)) as f32),
                "refused_total": r.refused,
                "dry_run_refused_total": r.dry_run,
                "top_keys": top,
            })
        })
        .collect()
}

fn tls(w: &Window<'_>) -> Value {
    let t = &w.now.tls;
    let now_s = (w.now.at_ms / 1000) as i64;
    let certs: Vec<Value> = t
        .certs
        .iter()
        .map(|c| {
            json!({
                "path": c.path.display().to_string(),
                "names": c.names,
                "not_after": c.not_after,
                "days_left": c.not_after.map(|n| (n - now_s).div_euclid(86_400)),
            })
        })
        .collect();
    json!({
        "handshakes_per_s": number(w.rate(t.handshakes, w.prev.tls.handshakes) as f32),
        "failures_per_s": number(w.rate(t.failures, w.prev.tls.failures) as f32),
        "handshakes_total": t.handshakes,
        "certificates": certs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        // 100 requests: 50 under 1 ms, 50 between 5 and 10 ms.
        let mut b = [0u64; 13];
        b[0] = 50;
        for c in b.iter_mut().skip(1) {
            *c = 50;
        }
        for c in b.iter_mut().skip(2) {
            *c = 100;
        }
        assert_eq!(quantile(&b, 0.5), Some(1.0));
        let p99 = quantile(&b, 0.99).expect("some");
        assert!((p99 - 9.9).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(&[0; 13], 0.5), None);
        let mut slow = [0u64; 13];
        slow[12] = 4;
        assert_eq!(quantile(&slow, 0.5), Some(10_000.0));
    }
}
