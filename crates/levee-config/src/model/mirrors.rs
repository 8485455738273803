//! The download redirector: `[mirrors.NAME]` sets of mirrors and the
//! `mirrors = "NAME"` route action that serves them (docs/mirrors.md).

use std::path::PathBuf;
use std::time::Duration;

use super::IpNet;

/// `[mirrors.NAME]`: a file tree on local disk and the mirrors that carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSet {
    pub name: String,
    /// The canonical copy of the tree.
    pub root: PathBuf,
    /// Where hashes, piece hashes and the mirror list edited through the
    /// control API are kept between runs.
    pub state_dir: PathBuf,
    /// Files smaller than this are always served locally.
    pub min_size: u64,
    /// Glob patterns (`*`, `?`) of paths always served locally: a pattern
    /// with a `/` matches the whole path from the root, one without matches
    /// the file name.
    pub exclude: Vec<String>,
    /// How often the local tree is walked and each mirror scanned.
    pub scan_interval: Duration,
    /// How often each mirror is probed.
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    /// Up to this percent of `probe_interval` is added at random to each wait.
    pub probe_jitter: u32,
    /// Failed probes in a row that take a mirror out.
    pub probe_fall: u32,
    /// Passed probes in a row that put it back.
    pub probe_rise: u32,
    /// How often one random slice of one file of each mirror is compared
    /// with the local hash.
    pub spot_check_interval: Duration,
    /// A MaxMind-format database with country, continent and location.
    pub geoip: Option<PathBuf>,
    /// A second database for the ASN (GeoLite2-ASN), when `geoip` has none.
    pub geoip_asn: Option<PathBuf>,
    /// Bytes per second the background hasher reads, at most.
    pub hash_rate: u64,
    /// Files larger than this get piece hashes of this length in Metalinks.
    pub piece_size: u64,
    /// A mirror's copy whose modification time is older than the local
    /// file's by more than this is stale.
    pub mtime_tolerance: Duration,
    /// One redirect in this many is checked afterwards with a HEAD request
    /// (0: none).
    pub verify_sample: u32,
    /// Misbehaviours (wrong size, 404, failed spot check) after which a
    /// mirror is disabled until an operator enables it.
    pub max_strikes: u32,
    /// Files listed in the per-file download statistics.
    pub top_files: u32,
    pub mirrors: Vec<Mirror>,
}

impl MirrorSet {
    /// A set with every default and no mirrors.
    pub fn new(name: &str, root: PathBuf, state_dir: PathBuf) -> MirrorSet {
        MirrorSet {
            name: name.to_owned(),
            root,
            state_dir,
            min_size: 4096,
            exclude: Vec::new(),
            scan_interval: Duration::from_secs(3600),
            probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(5),
            probe_jitter: 20,
            probe_fall: 1,
            probe_rise: 2,
            spot_check_interval: Duration::from_secs(600),
            geoip: None,
            geoip_asn: None,
            hash_rate: 64 * 1024 * 1024,
            piece_size: 4 * 1024 * 1024,
            mtime_tolerance: Duration::from_secs(86_400),
            verify_sample: 1000,
            max_strikes: 3,
            top_files: 100,
            mirrors: Vec::new(),
        }
    }
}

/// One `[[mirrors.NAME.mirror]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// Unique within its set.
    pub name: String,
    /// `http://host[:port][/path]` without a trailing `/`.
    pub http: Option<String>,
    /// `https://host[:port][/path]` without a trailing `/`.
    pub https: Option<String>,
    /// `rsync://host[:port]/module[/path]`, scanned instead of the HTTP listing.
    pub rsync: Option<String>,
    /// 1–1000; a mirror's share within its tier.
    pub weight: u32,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// AF, AN, AS, EU, NA, OC or SA.
    pub continent: Option<String>,
    pub asn: Vec<u32>,
    /// Latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    /// Client networks this mirror is preferred for.
    pub networks: Vec<IpNet>,
    /// When not empty, only clients from these countries are sent here.
    pub allowed_countries: Vec<String>,
    /// Bytes per second of downloads sent here, at most (0: no cap).
    pub max_bandwidth: u64,
    /// Downloads per second sent here, at most (0: no cap).
    pub max_redirects: u32,
    pub enabled: bool,
    /// A file to probe; by default a small file the scan found there.
    pub probe_path: Option<String>,
}

impl Mirror {
    pub fn new(name: &str) -> Mirror {
        Mirror {
            name: name.to_owned(),
            http: None,
            https: None,
            rsync: None,
            weight: 100,
            country: None,
            continent: None,
            asn: Vec::new(),
            location: None,
            networks: Vec::new(),
            allowed_countries: Vec::new(),
            max_bandwidth: 0,
            max_redirects: 0,
            enabled: true,
            probe_path: None,
        }
    }
}

/// A route's `mirrors = "NAME"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorsAction {
    /// Names an entry of `Config::mirrors` (validated).
    pub set: String,
}

/// The continent codes of GeoIP databases.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];
