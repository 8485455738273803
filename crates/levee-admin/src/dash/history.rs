//! The dashboard's history without Prometheus: the last hour at one point
//! a second and the last day at one point a minute, in two ring buffers
//! allocated once at their full size, so memory is fixed from the start
//! (`docs/dashboard.md` states the bound; a test measures it).
//!
//! A point holds the figures the charts draw, as rates over its interval;
//! a minute point is the mean of its seconds.

use serde_json::{Map, Value, json};

/// Seconds in the short history.
pub const HOUR: usize = 3600;
/// Minutes in the long history.
pub const DAY: usize = 1440;

/// The figures of one interval. `f32` is plenty for a chart and halves the
/// memory; a figure with nothing to measure (a hit ratio with no cache
/// lookups) is NaN and reaches the page as `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Seconds since the Unix epoch at the end of the interval.
    pub t: u32,
    /// Requests per second answered with 1xx … 5xx.
    pub rps: [f32; 5],
    /// Request latency percentiles over every route, in milliseconds.
    pub p50: f32,
    pub p95: f32,
    pub p99: f32,
    /// Open client connections.
    pub connections: f32,
    /// CPU used by levee, percent of one core.
    pub cpu: f32,
    /// Resident memory, MiB.
    pub rss_mib: f32,
    /// Cache hits over lookups, 0 to 1.
    pub hit_ratio: f32,
    pub mail_logins: f32,
    pub mail_failures: f32,
    pub tls_handshakes: f32,
    /// Requests refused by rate limits, per second.
    pub limited: f32,
    /// Failed exchanges with upstream servers, per second.
    pub upstream_errors: f32,
}

/// The names of [`Point`]'s series, in the order [`Point::values`] gives them.
pub const SERIES: [&str; 17] = [
    "rps_1xx",
    "rps_2xx",
    "rps_3xx",
    "rps_4xx",
    "rps_5xx",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "connections",
    "cpu_percent",
    "rss_mib",
    "hit_ratio",
    "mail_logins_per_s",
    "mail_failures_per_s",
    "tls_handshakes_per_s",
    "limited_per_s",
    "upstream_errors_per_s",
];

impl Point {
    pub fn values(&self) -> [f32; 17] {
        let r = self.rps;
        [
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            self.p50,
            self.p95,
            self.p99,
            self.connections,
            self.cpu,
            self.rss_mib,
            self.hit_ratio,
            self.mail_logins,
            self.mail_failures,
            self.tls_handshakes,
            self.limited,
            self.upstream_errors,
        ]
    }

    fn from_values(t: u32, v: [f32; 17]) -> Point {
        Point {
            t,
            rps: [v[0], v[1], v[2], v[3], v[4]],
            p50: v[5],
            p95: v[6],
            p99: v[7],
            connections: v[8],
            cpu: v[9],
            rss_mib: v[10],
            hit_ratio: v[11],
            mail_logins: v[12],
            mail_failures: v[13],
            tls_handshakes: v[14],
            limited: v[15],
            upstream_errors: v[16],
        }
    }

    /// The point as `{"t": …, "rps_1xx": …, …}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("t".into(), json!(self.t));
        for (name, v) in SERIES.iter().zip(self.values()) {
            m.insert((*name).into(), number(v));
        }
        Value::Object(m)
    }
}

/// A figure for JSON, rounded to what a chart can show; NaN is `null`.
pub fn number(v: f32) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    let v = f64::from(v);
    let rounded = if v.abs() >= 100.0 {
        v.round()
    } else {
        (v * 100.0).round() / 100.0
    };
    json!(rounded)
}

/// A ring of `N` points, allocated whole (on the heap) at creation.
#[derive(Debug)]
pub struct Ring<const N: usize> {
    points: Box<[Point]>,
    /// Index of the next write.
    next: usize,
    len: usize,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Ring {
            points: vec![Point::default(); N].into_boxed_slice(),
            next: 0,
            len: 0,
        }
    }
}

impl<const N: usize> Ring<N> {
    pub fn push(&mut self, p: Point) {
        self.points[self.next] = p;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Points oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Point> {
        let start = (self.next + N - self.len) % N;
        (0..self.len).map(move |i| &self.points[(start + i) % N])
    }

    /// The points as columns: `{"t": [...], "rps_1xx": [...], ...}`.
    pub fn to_json(&self) -> Value {
        let mut cols: Vec<Vec<Value>> = vec![Vec::with_capacity(self.len); SERIES.len()];
        let mut t = Vec::with_capacity(self.len);
        for p in self.iter() {
            t.push(json!(p.t));
            for (col, v) in cols.iter_mut().zip(p.values()) {
                col.push(number(v));
            }
        }
        let mut m = Map::new();
        m.insert("t".into(), Value::Array(t));
        for (name, col) in SERIES.iter().zip(cols) {
            m.insert((*name).into(), Value::Array(col));
        }
        Value::Object(m)
    }
}

/// The hour of seconds, the day of minutes, and the minute being summed.
#[derive(Debug, Default)]
pub struct History {
    pub seconds: Ring<HOUR>,
    pub minutes: Ring<DAY>,
    /// Sums of the current minute's points (NaN-free), and their counts.
    sum: [f64; 17],
    count: [u32; 17],
    minute: Option<u32>,
}

impl History {
    /// Adds a second's point; a minute point is closed when `p` starts a
    /// new minute.
    pub fn push(&mut self, p: Point) {
        let minute = p.t / 60;
        if let Some(open) = self.minute
            && open != minute
        {
            self.close_minute(open);
        }
        self.minute = Some(minute);
        for (i, v) in p.values().into_iter().enumerate() {
            if v.is_finite() {
                self.sum[i] += f64::from(v);
                self.count[i] += 1;
            }
        }
        self.seconds.push(p);
    }

    fn close_minute(&mut self, minute: u32) {
        let values: [f32; 17] = std::array::from_fn(|i| match self.count[i] {
            0 => f32::NAN,
            n => (self.sum[i] / f64::from(n)) as f32,
        });
        self.minutes
            .push(Point::from_values(minute * 60 + 59, values));
        self.sum = [0.0; 17];
        self.count = [0; 17];
    }

    /// Bytes the history holds, whatever it has seen: the rings are
    /// allocated whole.
    pub fn memory(&self) -> usize {
        std::mem::size_of::<History>()
            + std::mem::size_of_val(&*self.seconds.points)
            + std::mem::size_of_val(&*self.minutes.points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: u32, rps2: f32) -> Point {
        Point {
            t,
            rps: [0.0, rps2, 0.0, 0.0, 0.0],
            hit_ratio: f32::NAN,
            ..Point::default()
        }
    }

    #[test]
    fn the_ring_keeps_the_last_n_in_order() {
        let mut r = Ring::<3>::default();
        for t in 1..=5 {
            r.push(point(t, 0.0));
        }
        let ts: Vec<u32> = r.iter().map(|p| p.t).collect();
        assert_eq!(ts, [3, 4, 5]);
        assert_eq!(r.to_json()["t"], json!([3, 4, 5]));
        assert_eq!(r.to_json()["hit_ratio"], json!([null, null, null]));
    }

    #[test]
    fn minutes_are_means_of_their_seconds() {
        let mut h = History::default();
        h.push(point(120, 10.0));
        h.push(point(150, 30.0));
        assert!(h.minutes.is_empty());
        h.push(point(180, 5.0));
        let m: Vec<&Point> = h.minutes.iter().collect();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].t, 179);
        assert_eq!(m[0].rps[1], 20.0);
        assert!(m[0].hit_ratio.is_nan());
    }

    #[test]
    fn the_memory_bound_is_fixed_and_under_400_kib() {
        let full = {
            let mut h = History::default();
            for t in 0..(DAY as u32 * 60 + 10) {
                h.push(point(t, 1.0));
            }
            h
        };
        assert_eq!(full.seconds.len(), HOUR);
        assert_eq!(full.minutes.len(), DAY);
        assert_eq!(std::mem::size_of::<Point>(), 72);
        let bytes = full.memory();
        assert_eq!(
            bytes,
            History::default().memory(),
            "allocated whole at start"
        );
        assert_eq!(bytes, std::mem::size_of::<History>() + 72 * (HOUR + DAY));
        assert!(bytes < 400 * 1024, "{bytes}");
    }
}
