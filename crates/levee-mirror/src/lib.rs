//! levee's download redirector, without HTTP plumbing (docs/mirrors.md):
//! a `mirrors` route serves a file tree from local disk and sends each
//! download to the best healthy mirror that has the same file.
//!
//! - [`tree`]: the index of the local tree ([`paths`], [`bits`]), with the
//!   symlink policy and `exclude` patterns ([`glob`]);
//! - [`listing`]: parsers of `rsync --list-only` and HTTP directory
//!   listings (no I/O); [`scan`]: running them and matching the result;
//! - [`mirror`]: a mirror's profile, live state and holdings;
//!   [`health`]: probes, spot checks and checks of redirects;
//! - [`hash`]: SHA-256 and piece hashes, computed in the background and
//!   kept in the state directory;
//! - [`geo`] and [`choose`]: where the client is and which mirror it gets;
//! - [`render`]: Metalink 4, the mirror list (HTML, JSON) and the header
//!   fields of a redirect;
//! - [`set`]: a set at run time and [`set::MirrorSet::decide`], the request
//!   path; [`edits`]: the list as the control API changes it;
//!   [`stats`]: download counts; [`upkeep`]: the background loops;
//! - [`fetch`]: the small HTTP client the checks use.

pub mod bits;
pub mod choose;
pub mod edits;
pub mod fetch;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod health;
pub mod listing;
pub mod mirror;
pub mod paths;
pub mod render;
pub mod scan;
pub mod set;
pub mod stats;
pub mod tree;
pub mod upkeep;

use std::path::PathBuf;

pub use set::{Answer, Ask, MirrorSet};

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("GeoIP database {path}: {reason}")]
    GeoIp { path: PathBuf, reason: String },
    #[error("mirror tree root {0} is not a directory")]
    Root(PathBuf),
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mirror set state is unusable after a panic")]
    Poisoned,
}

/// What `levee check`, `levee run` and a reload all refuse in
/// `[mirrors.NAME]`, before anything is built: a root that is not a
/// directory, a state directory that cannot be made, a GeoIP database that
/// does not load. Each error is at its key, with the file's line and
/// column.
pub fn check(config: &levee_config::Config) -> Vec<levee_config::ConfigError> {
    let at = levee_config::Locator::new(config);
    let mut errors = Vec::new();
    for set in &config.mirrors {
        let table = levee_config::child_key("mirrors", &set.name);
        let mut report = |key: &str, message: String| {
            errors.push(at.error(&format!("{table}.{key}"), message));
        };
        if !set.root.is_dir() {
            report(
                "root",
                format!("`{}` is not a directory", set.root.display()),
            );
        }
        let mut dir = set.state_dir.as_path();
        while !dir.exists() {
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => dir = p,
                _ => break,
            }
        }
        if dir.exists() && !dir.is_dir() {
            report(
                "state_dir",
                format!("`{}` is not a directory", dir.display()),
            );
        }
        for (key, db) in [("geoip", &set.geoip), ("geoip_asn", &set.geoip_asn)] {
            if let Some(path) = db
                && let Err(e) = geo::Geo::open(Some(path), None)
            {
                report(key, e.to_string());
            }
        }
    }
    errors
}
