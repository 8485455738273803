//! The admin listener (`[admin]`): where the control API and `/metrics`
//! listen, and who may use them. Secrets are never part of the config: it
//! names the file or environment variable that holds them, and
//! `levee-admin` reads them at start and on each reload.

use std::net::SocketAddr;
use std::time::Duration;

use super::FileRef;

/// Default `[admin] session_lifetime`: a working day.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Default `[admin] max_sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 64;

/// The listener of the control API and `/metrics`, and its access rules
/// (`docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub address: SocketAddr,
    /// Where the bearer token comes from; `None`: no token. Required when
    /// `address` is not a loopback address.
    pub token: Option<TokenSource>,
    /// `user:hash` lines (bcrypt, argon2 or SHA-512-crypt) for `POST /login`.
    pub password_file: Option<FileRef>,
    /// Names accepted in `Host` besides the listener's own address,
    /// lower-case, without a port.
    pub hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lower-case) accepted besides the
    /// listener's own.
    pub origins: Vec<String>,
    /// How long a login session lasts, from the login.
    pub session_lifetime: Duration,
    /// Sessions kept at once; a login beyond it ends the oldest.
    pub max_sessions: usize,
}

impl Admin {
    /// No token, no password, no extra names: what a loopback listener
    /// needs at least.
    pub fn on(address: SocketAddr) -> Admin {
        Admin {
            address,
            token: None,
            password_file: None,
            hosts: Vec::new(),
            origins: Vec::new(),
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// Where the admin token is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `token_file`: the file's content, without surrounding whitespace.
    File(FileRef),
    /// `token_env`: the variable's value in levee's environment.
    Env(EnvRef),
}

/// An environment variable named in the config, with where it was named.
/// Equal when the names are (positions are only for messages).
#[derive(Debug, Clone, Eq)]
pub struct EnvRef {
    pub name: String,
    /// The key path, `admin.token_env`.
    pub key: String,
    /// 1-based; 0 when the config was built in code.
    pub line: usize,
    pub column: usize,
}

impl PartialEq for EnvRef {
    fn eq(&self, other: &EnvRef) -> bool {
        self.name == other.name
    }
}
