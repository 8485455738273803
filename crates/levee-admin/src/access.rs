//! Who may use the admin listener (`docs/api.md`, "Who may use the admin
//! listener"): the `Host` and `Origin` a request may carry, the content
//! type of a state-changing request, and the credentials (a bearer token,
//! `user:hash` passwords) read from the files or variables `[admin]` names.
//!
//! The checks are plain functions of the request's fields, so they are
//! tested without sockets; `server.rs` applies them in order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use levee_config::{Admin, Config, ConfigError, EnvRef, FileRef, TokenSource};

use crate::secret::{Secret, sha256};

/// A token shorter than this is refused: it could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// The admin listener's rules, loaded from `[admin]` and the files it names.
#[derive(Debug)]
pub struct Access {
    /// Names accepted in `Host` with any port.
    names: Vec<String>,
    /// Origins accepted besides the listener's own.
    origins: Vec<String>,
    pub(crate) token: Option<Secret>,
    /// User name to password hash.
    pub(crate) users: HashMap<String, String>,
    pub(crate) session_lifetime: Duration,
    pub(crate) max_sessions: usize,
    /// Digest of the token and the password hashes: a reload that changes
    /// it ends every session.
    pub(crate) credentials: [u8; 32],
}

/// Why a request is refused before it reaches the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 421: `Host` is not this listener.
    Host,
    /// 403: `Origin` is not this listener nor a configured origin.
    Origin,
    /// 415: a state-changing request without `Content-Type: application/json`.
    ContentType,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Host => 421,
            Refusal::Origin => 403,
            Refusal::ContentType => 415,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Host => {
                "Host is not this admin listener's address nor one of its `[admin] hosts`"
            }
            Refusal::Origin => "Origin is not this admin listener nor one of its `[admin] origins`",
            Refusal::ContentType => {
                "a state-changing request must have Content-Type: application/json"
            }
        }
    }
}

/// Whether `method` can change anything: every method but GET and HEAD.
pub fn changes_state(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD")
}

impl Access {
    /// Reads the credentials `admin` names. Each problem is an error at the
    /// key that named the file or variable, with `source` as the file.
    pub fn load(admin: &Admin, source: &Path) -> Result<Access, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let token = match &admin.token {
            Some(t) => read_token(t)
                .map_err(|message| errors.push(token_error(t, source, message)))
                .ok(),
            None => None,
        };
        let users = match &admin.password_file {
            Some(f) => read_users(&f.path)
                .map_err(|message| errors.push(file_error(f, source, message)))
                .unwrap_or_default(),
            None => HashMap::new(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut fingerprint = Vec::new();
        if let Some(t) = &token {
            fingerprint.extend_from_slice(&t.digest());
        }
        let mut sorted: Vec<_> = users.iter().collect();
        sorted.sort();
        for (user, hash) in sorted {
            fingerprint.extend_from_slice(format!("\n{user}:{hash}").as_bytes());
        }
        Ok(Access {
            names: admin.hosts.clone(),
            origins: admin.origins.clone(),
            token,
            users,
            session_lifetime: admin.session_lifetime,
            max_sessions: admin.max_sessions,
            credentials: sha256(&fingerprint),
        })
    }

    /// Whether every request must carry a token or a session.
    pub fn requires_login(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }

    /// The checks every request passes before authentication, in order:
    /// `Host`, `Origin`, then the content type of a state-changing request.
    /// `local` is the address the connection came in on.
    pub fn admit(
        &self,
        local: SocketAddr,
        method: &str,
        host: Option<&str>,
        origin: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<(), Refusal> {
        let host = host
            .filter(|h| self.host_ok(local, h))
            .ok_or(Refusal::Host)?;
        if let Some(origin) = origin
            && !self.origin_ok(host, origin)
        {
            return Err(Refusal::Origin);
        }
        if changes_state(method) && !content_type.is_some_and(is_json) {
            return Err(Refusal::ContentType);
        }
        Ok(())
    }

    /// The address the client connected to (`127.0.0.1:9090`, `[::1]:9090`),
    /// `localhost:PORT` on loopback, or a configured name with any port.
    fn host_ok(&self, local: SocketAddr, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let port = local.port();
        let own = [
            Some(local.to_string()),
            (port == 80).then(|| ip_text(local)),
            local
                .ip()
                .is_loopback()
                .then(|| format!("localhost:{port}")),
            (local.ip().is_loopback() && port == 80).then(|| "localhost".to_owned()),
        ];
        if own.iter().flatten().any(|o| *o == host) {
            return true;
        }
        let name = levee_http::message::strip_port(host.as_bytes());
        let port_ok = match host.as_bytes().get(name.len()..) {
            Some([]) => true,
            Some([b':', digits @ ..]) => {
                !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
            }
            _ => false,
        };
        port_ok && self.names.iter().any(|n| n.as_bytes() == name)
    }

    /// The page's own origin (`http://` and the accepted `Host`), or one
    /// configured in `[admin] origins`. `null` and anything unparsable are
    /// refused.
    fn origin_ok(&self, host: &str, origin: &str) -> bool {
        let Some(origin) = levee_config::parse_origin(origin) else {
            return false;
        };
        let own = levee_config::parse_origin(&format!("http://{host}"));
        own.as_deref() == Some(origin.as_str()) || self.origins.contains(&origin)
    }
}

fn ip_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

/// `application/json`, with parameters (`; charset=utf-8`) or not.
pub fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The token a [`TokenSource`] holds. The message never contains it.
pub fn read_token(source: &TokenSource) -> Result<Secret, String> {
    let text = match source {
        TokenSource::File(f) => std::fs::read_to_string(&f.path)
            .map_err(|e| format!("cannot read the token file {}: {e}", f.path.display()))?,
        TokenSource::Env(e) => std::env::var(&e.name).map_err(|_| {
            format!(
                "the environment variable `{}` is not set (or not UTF-8)",
                e.name
            )
        })?,
    };
    token(text.trim())
}

/// Checks a token's form: long enough, and printable ASCII without
/// spaces, since it travels in an `Authorization` header.
pub fn token(text: &str) -> Result<Secret, String> {
    if text.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "the token must be at least {MIN_TOKEN_LEN} characters long"
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the token must be printable ASCII without spaces (it is sent in an Authorization header)"
                .to_owned(),
        );
    }
    Ok(Secret::new(text.to_owned()))
}

/// `user:hash` lines, `#` comments.
fn read_users(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
    parse_users(&text).map_err(|(line, why)| match line {
        0 => format!("{}: {why}", path.display()),
        n => format!("{}:{n}: {why}", path.display()),
    })
}

/// On error, the 1-based line (0 for the whole file) and why; never the
/// line's text, which may hold a password typed by mistake.
pub(crate) fn parse_users(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err((i + 1, "expected `user:hash`".to_owned()));
        };
        if user.is_empty() {
            return Err((i + 1, "the user name is empty".to_owned()));
        }
        if !levee_mail::auth::user_map::supported(hash) {
            return Err((
                i + 1,
                "unsupported hash: expected bcrypt ($2b$, $2y$, $2a$), argon2 ($argon2id$) or SHA-512-crypt ($6$)"
                    .to_owned(),
            ));
        }
        if users.insert(user.to_owned(), hash.to_owned()).is_some() {
            return Err((i + 1, format!("user `{user}` appears twice")));
        }
    }
    if users.is_empty() {
        return Err((0, "no users".to_owned()));
    }
    Ok(users)
}

/// Every credential problem of `config`'s `[admin]`, for `levee check`
/// (which must refuse what `levee run` would).
pub fn check(config: &Config) -> Vec<ConfigError> {
    let Some(admin) = &config.admin else {
        return Vec::new();
    };
    let source = config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(levee_config::BUILTIN_SOURCE));
    Access::load(admin, &source).err().unwrap_or_default()
}

fn token_error(t: &TokenSource, source: &Path, message: String) -> ConfigError {
    match t {
        TokenSource::File(f) => file_error(f, source, message),
        TokenSource::Env(EnvRef {
            key, line, column, ..
        }) => ConfigError {
            file: source.to_path_buf(),
            line: *line,
            column: *column,
            key: key.clone(),
            message,
        },
    }
}

fn file_error(f: &FileRef, source: &Path, message: String) -> ConfigError {
    ConfigError {
        file: source.to_path_buf(),
        line: f.line,
        column: f.column,
        key: f.key.clone(),
        message,
    }
}

#[cfg(test)]
mod tests;
