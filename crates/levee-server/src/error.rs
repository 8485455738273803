//! Why levee cannot start or serve a config ([`ServerError`]), and why a
//! reload was refused ([`ReloadError`]).

use std::net::SocketAddr;

use levee_config::ConfigErrors;

use crate::upgrade::UpgradeError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Site(#[from] levee_http::site::SiteError),
    /// What the config asks for that this machine refuses (files that do
    /// not load, addresses that cannot be bound, a pid file that cannot be
    /// written), each at the key asking for it, as `levee check` reports it.
    #[error("{0}")]
    Invalid(ConfigErrors),
    #[error("listener {addr}: {source}")]
    Tls {
        addr: SocketAddr,
        #[source]
        source: levee_tls::TlsError,
    },
    #[error("starting workers: {0}")]
    Workers(std::io::Error),
    /// The user map's error is in the message (and not a `source`, so a
    /// chain printer does not repeat it).
    #[error("mail listener {addr}: {error}")]
    Mail {
        addr: SocketAddr,
        error: levee_mail::front::UserMapError,
    },
    /// `[fleet]` credentials or CA file that do not load, at their keys.
    #[error("{0}")]
    FleetFiles(levee_config::ConfigErrors),
    #[error("fleet: {0}")]
    Fleet(levee_fleet::FleetError),
    #[error("upgrade: {0}")]
    Upgrade(#[from] UpgradeError),
    #[error("dns: {0}")]
    Dns(levee_dns::DnsError),
}

/// Why a reload was refused; the running config stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("levee runs a built-in config; there is no file to reload")]
    Builtin,
    /// Every problem of the file, each at its file:line:column and key.
    #[error("{0}")]
    Config(ConfigErrors),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl From<levee_http::site::SiteError> for ReloadError {
    fn from(e: levee_http::site::SiteError) -> ReloadError {
        ReloadError::Server(ServerError::Site(e))
    }
}

impl ReloadError {
    /// One line per problem, as `levee reload` prints them.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ReloadError::Config(errors)
            | ReloadError::Server(ServerError::Invalid(errors) | ServerError::FleetFiles(errors)) => {
                errors.errors.iter().map(ToString::to_string).collect()
            }
            other => vec![other.to_string()],
        }
    }
}
