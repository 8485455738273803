//! One mirror as requests see it: its profile (from the config or the
//! control API), its live state (health, switches, counters: kept across
//! edits and reloads) and its holdings (which files of the current tree it
//! has, from the last scan).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use levee_config::IpNet;

use crate::bits::Bits;
use crate::geo::code;
use crate::paths::FileId;

/// A mirror's settings, compiled for the request path.
#[derive(Debug, Clone)]
pub struct Profile {
    pub config: levee_config::Mirror,
    pub country: Option<[u8; 2]>,
    pub continent: Option<[u8; 2]>,
    pub allowed: Vec<[u8; 2]>,
}

impl Profile {
    pub fn new(config: levee_config::Mirror) -> Profile {
        Profile {
            country: code(config.country.as_deref()),
            continent: code(config.continent.as_deref()),
            allowed: config
                .allowed_countries
                .iter()
                .filter_map(|c| code(Some(c)))
                .collect(),
            config,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The base URL for a client that came over `https` (never downgraded:
    /// an HTTPS client is sent only to a mirror with an `https` URL).
    pub fn base(&self, https: bool) -> Option<&str> {
        if https {
            self.config.https.as_deref()
        } else {
            self.config.http.as_deref().or(self.config.https.as_deref())
        }
    }

    pub fn prefers(&self, ip: IpAddr) -> bool {
        self.config.networks.iter().any(|n| contains(n, ip))
    }

    /// Whether a client from `country` may be sent here.
    pub fn admits(&self, country: Option<[u8; 2]>) -> bool {
        self.allowed.is_empty() || country.is_some_and(|c| self.allowed.contains(&c))
    }
}

/// Whether `net` contains `ip` (an IPv4-mapped IPv6 client counts as IPv4).
pub fn contains(net: &IpNet, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net.addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits = u32::from(net.prefix.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits = u32::from(net.prefix.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Why a mirror is not offered, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    /// Its probes fail.
    Down,
    /// Switched off by config or the control API.
    Disabled,
    /// Misbehaved `max_strikes` times; an operator must enable it.
    AutoDisabled,
    /// Not scanned yet: nothing is known to be there.
    Unscanned,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Disabled => "disabled",
            State::AutoDisabled => "auto-disabled",
            State::Unscanned => "unscanned",
        }
    }
}

/// Downloads sent to a mirror in the current 10-second window, for its caps.
#[derive(Debug, Default)]
struct Window {
    start: AtomicU64,
    bytes: AtomicU64,
    count: AtomicU64,
}

/// Caps are held over 10 s windows: smooth enough for a rate, one
/// comparison per request.
const WINDOW_SECS: u64 = 10;

/// What is known of a mirror beyond its settings.
#[derive(Debug)]
pub struct Live {
    up: AtomicBool,
    enabled: AtomicBool,
    auto_disabled: AtomicBool,
    strikes: AtomicU32,
    pub redirects: AtomicU64,
    pub bytes: AtomicU64,
    window: Window,
    /// The last misbehaviour or probe failure, for the API and logs.
    pub last_problem: Mutex<Option<String>>,
    pub last_scan: Mutex<Option<String>>,
}

impl Live {
    pub fn new(enabled: bool) -> Live {
        Live {
            up: AtomicBool::new(false),
            enabled: AtomicBool::new(enabled),
            auto_disabled: AtomicBool::new(false),
            strikes: AtomicU32::new(0),
            redirects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            window: Window::default(),
            last_problem: Mutex::new(None),
            last_scan: Mutex::new(None),
        }
    }

    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Switches the mirror on or off; switching it on also forgives its
    /// strikes and lifts an automatic disabling.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        if on {
            self.auto_disabled.store(false, Ordering::Relaxed);
            self.strikes.store(0, Ordering::Relaxed);
        }
    }

    pub fn auto_disabled(&self) -> bool {
        self.auto_disabled.load(Ordering::Relaxed)
    }

    pub fn strikes(&self) -> u32 {
        self.strikes.load(Ordering::Relaxed)
    }

    /// Counts a misbehaviour; returns true when it disabled the mirror.
    pub fn strike(&self, max: u32, why: String) -> bool {
        if let Ok(mut p) = self.last_problem.lock() {
            *p = Some(why);
        }
        let n = self.strikes.fetch_add(1, Ordering::Relaxed) + 1;
        n >= max && !self.auto_disabled.swap(true, Ordering::Relaxed)
    }

    pub fn note(&self, problem: Option<String>) {
        if let Ok(mut p) = self.last_problem.lock() {
            *p = problem;
        }
    }

    pub fn problem(&self) -> Option<String> {
        self.last_problem.lock().ok().and_then(|p| p.clone())
    }

    /// Whether the caps leave room at second `now` (of the set's clock).
    pub fn has_room(&self, config: &levee_config::Mirror, now: u64) -> bool {
        if config.max_bandwidth == 0 && config.max_redirects == 0 {
            return true;
        }
        let window = now / WINDOW_SECS;
        if self.window.start.load(Ordering::Relaxed) != window {
            return true;
        }
        let bytes_ok = config.max_bandwidth == 0
            || self.window.bytes.load(Ordering::Relaxed)
                < config.max_bandwidth.saturating_mul(WINDOW_SECS);
        let count_ok = config.max_redirects == 0
            || self.window.count.load(Ordering::Relaxed)
                < u64::from(config.max_redirects) * WINDOW_SECS;
        bytes_ok && count_ok
    }

    /// Counts a download of `size` bytes sent here at second `now`.
    pub fn count(&self, size: u64, now: u64) {
        self.redirects.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        let window = now / WINDOW_SECS;
        let w = &self.window;
        if w.start.swap(window, Ordering::Relaxed) != window {
            w.bytes.store(0, Ordering::Relaxed);
            w.count.store(0, Ordering::Relaxed);
        }
        w.bytes.fetch_add(size, Ordering::Relaxed);
        w.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Which files of one tree a mirror has, from one scan.
#[derive(Debug)]
pub struct Holdings {
    /// The tree these bits index ([`crate::tree::Tree::generation`]).
    pub generation: u64,
    /// Files whose copy there has the local size and is not older.
    pub has: Bits,
    /// Copies found with another size, or older: never offered.
    pub stale: u32,
    /// A few stale paths, for the report.
    pub stale_examples: Vec<String>,
    pub scanned_at: Option<SystemTime>,
    /// A small file it has, for probes.
    pub probe: Option<FileId>,
}

impl Holdings {
    pub fn none(generation: u64) -> Holdings {
        Holdings {
            generation,
            has: Bits::new(0),
            stale: 0,
            stale_examples: Vec::new(),
            scanned_at: None,
            probe: None,
        }
    }
}

/// A mirror in a [`crate::set::View`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub profile: Arc<Profile>,
    pub live: Arc<Live>,
    pub holdings: Arc<Holdings>,
    /// The config file, the control API, or the file edited by the API.
    pub source: crate::edits::Source,
}

impl Mirror {
    pub fn state(&self) -> State {
        if !self.live.enabled() {
            State::Disabled
        } else if self.live.auto_disabled() {
            State::AutoDisabled
        } else if self.holdings.scanned_at.is_none() {
            State::Unscanned
        } else if self.live.up() {
            State::Up
        } else {
            State::Down
        }
    }

    /// Whether the mirror may be offered at all (before looking at files).
    pub fn usable(&self) -> bool {
        self.live.enabled() && !self.live.auto_disabled() && self.live.up()
    }

    /// Whether it has file `id` of the tree of `generation`.
    pub fn has(&self, generation: u64, id: FileId) -> bool {
        self.holdings.generation == generation && self.holdings.has.get(id as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_caps() {
        let net: IpNet = "127.0.2.0/24".parse().expect("literal");
        assert!(contains(&net, "127.0.2.9".parse().expect("literal")));
        assert!(contains(&net, "::ffff:127.0.2.9".parse().expect("literal")));
        assert!(!contains(&net, "127.0.3.9".parse().expect("literal")));
        let mut cfg = levee_config::Mirror::new("m");
        cfg.max_redirects = 1;
        let live = Live::new(true);
        for _ in 0..10 {
            assert!(live.has_room(&cfg, 100));
            live.count(10, 100);
        }
        assert!(!live.has_room(&cfg, 105), "10 per 10 s window used");
        assert!(live.has_room(&cfg, 110), "a new window");
    }

    #[test]
    fn strikes_disable_once_and_enabling_forgives() {
        let live = Live::new(true);
        assert!(!live.strike(2, "404".into()));
        assert!(live.strike(2, "404".into()));
        assert!(!live.strike(2, "404".into()), "reported once");
        assert!(live.auto_disabled());
        live.set_enabled(true);
        assert!(!live.auto_disabled() && live.strikes() == 0);
    }
}
