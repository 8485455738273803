//! The client behind `levee ctl` and `levee reload`: one blocking HTTP/1.1
//! request to the admin listener per command, with the bearer token when
//! there is one, and the answer printed for a shell.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::secret::Secret;

/// What `levee ctl` can ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A table of every upstream's servers.
    Upstreams,
    /// The JSON of one upstream.
    Upstream(String),
    Drain {
        upstream: String,
        server: String,
    },
    Disable {
        upstream: String,
        server: String,
    },
    Enable {
        upstream: String,
        server: String,
    },
    /// `None` returns to the configured weight.
    Weight {
        upstream: String,
        server: String,
        weight: Option<u32>,
    },
    Metrics,
    /// The cache store's size and entries.
    Cache,
    /// A table of the cache's tiers (`/cache`).
    CacheStats,
    /// Removes cached responses: `by` is `url`, `prefix` or `tag`.
    Purge {
        by: PurgeBy,
        value: String,
    },
    /// Closes a user's logged-in mail sessions (a moved mailbox), on
    /// every member of a fleet.
    CloseUser(String),
    /// The fleet's members (ctl/fleet.rs).
    Fleet,
    /// A ping on the fleet's bus, logged by every member.
    FleetPing(String),
    /// A member leaves (`drained`) or comes back to the fleet's DNS answers.
    FleetDrain {
        instance: String,
        drained: bool,
    },
    /// The download redirector (`/mirrors`).
    Mirrors(MirrorsCommand),
    /// Every certificate levee serves (ctl/certs.rs).
    Certs,
    /// Renew an ACME certificate now.
    CertsRenew(String),
    /// Bans an address or network, for `duration` (`"10m"`) or until lifted.
    Ban {
        address: String,
        duration: Option<String>,
    },
    Unban(String),
    /// The ban list as a table.
    Bans,
    /// Exempts an address or network from every ban, for `duration` or
    /// until lifted.
    Allow {
        address: String,
        duration: Option<String>,
    },
    Unallow(String),
    /// The allow entries as a table.
    Allows,
}

/// `levee ctl mirrors ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorsCommand {
    /// A table of every set's mirrors (or one set's).
    List(Option<String>),
    /// Walk the tree and scan every mirror of a set now.
    Scan(String),
    Enable {
        set: String,
        mirror: String,
    },
    Disable {
        set: String,
        mirror: String,
    },
    /// Download statistics as JSON.
    Stats(String),
    /// Add a mirror: `json` is its `[[mirrors.SET.mirror]]` table in JSON.
    Add {
        set: String,
        json: String,
    },
    /// Replace mirror `mirror` with `json`.
    Edit {
        set: String,
        mirror: String,
        json: String,
    },
    /// Forget mirror `mirror`'s runtime edits.
    Reset {
        set: String,
        mirror: String,
    },
}

impl MirrorsCommand {
    fn request(&self) -> (&'static str, String, String) {
        use MirrorsCommand::*;
        let path = |set: &str, rest: &str| format!("/mirrors/{}{rest}", encode(set));
        match self {
            List(None) => ("GET", "/mirrors".to_owned(), String::new()),
            List(Some(set)) => ("GET", path(set, ""), String::new()),
            Scan(set) => ("POST", path(set, "/scan"), "{}".to_owned()),
            Stats(set) => ("GET", path(set, "/stats"), String::new()),
            Enable { set, mirror } => (
                "POST",
                path(set, &format!("/mirrors/{}/enable", encode(mirror))),
                "{}".to_owned(),
            ),
            Disable { set, mirror } => (
                "POST",
                path(set, &format!("/mirrors/{}/disable", encode(mirror))),
                "{}".to_owned(),
            ),
            Add { set, json } => ("POST", path(set, "/mirrors"), json.clone()),
            Edit { set, mirror, json } => (
                "PUT",
                path(set, &format!("/mirrors/{}", encode(mirror))),
                json.clone(),
            ),
            Reset { set, mirror } => (
                "DELETE",
                path(set, &format!("/mirrors/{}", encode(mirror))),
                "{}".to_owned(),
            ),
        }
    }
}

/// `set mirror source state files stale redirects problem`, one mirror a
/// line.
fn mirrors_table(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    let sets: Vec<Value> = match v.get("sets") {
        Some(Value::Array(a)) => a.clone(),
        _ => vec![v],
    };
    let mut out = format!(
        "{:<12} {:<16} {:<10} {:<14} {:>8} {:>6} {:>10}  {}\n",
        "SET", "MIRROR", "SOURCE", "STATE", "FILES", "STALE", "REDIRECTS", "PROBLEM"
    );
    for set in &sets {
        let name = set.get("name")?.as_str()?;
        for m in set.get("mirrors")?.as_array()? {
            let field = |k: &str| {
                m.get(k).map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".to_owned(),
                    other => other.to_string(),
                })
            };
            out.push_str(&format!(
                "{:<12} {:<16} {:<10} {:<14} {:>8} {:>6} {:>10}  {}\n",
                name,
                field("name")?,
                field("source").unwrap_or_else(|| "-".into()),
                field("state")?,
                field("files")?,
                field("stale")?,
                field("redirects")?,
                field("problem").unwrap_or_default(),
            ));
        }
    }
    Some(out)
}

/// `/cache` as one row per tier: entries, bytes, hits, state.
fn tiers_table(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    let n = |v: Option<&Value>| match v {
        Some(Value::Null) | None => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let hits = v.get("hits")?;
    let mut rows = vec![
        ["TIER", "ENTRIES", "BYTES", "HITS", "STATE"].map(str::to_owned),
        [
            "memory".to_owned(),
            n(v.get("entries")),
            n(v.get("bytes")),
            n(hits.get("memory")),
            "ready".to_owned(),
        ],
    ];
    let disk = v.get("disk").filter(|d| !d.is_null());
    rows.push([
        "disk".to_owned(),
        n(disk.and_then(|d| d.get("entries"))),
        n(disk.and_then(|d| d.get("bytes"))),
        n(hits.get("disk")),
        match disk {
            None => "off".to_owned(),
            Some(d) => match d.get("reason").and_then(Value::as_str) {
                Some(why) => format!("{} ({why})", n(d.get("state"))),
                None => n(d.get("state")),
            },
        },
    ]);
    let shared = v.get("shared").filter(|s| !s.is_null());
    rows.push([
        "shared".to_owned(),
        "-".to_owned(),
        "-".to_owned(),
        n(hits.get("shared")),
        shared.map_or("off".to_owned(), |s| n(s.get("store"))),
    ]);
    Some(columns(&rows))
}

/// What a purge matches (docs/api.md, `POST /cache/purge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeBy {
    Url,
    Prefix,
    Tag,
}

impl PurgeBy {
    pub fn parse(text: &str) -> Option<PurgeBy> {
        match text {
            "url" => Some(PurgeBy::Url),
            "prefix" => Some(PurgeBy::Prefix),
            "tag" => Some(PurgeBy::Tag),
            _ => None,
        }
    }

    fn key(self) -> &'static str {
        match self {
            PurgeBy::Url => "url",
            PurgeBy::Prefix => "prefix",
            PurgeBy::Tag => "tag",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "cannot reach the admin listener at {addr}: {source} (is levee running with [admin] set?)"
    )]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("admin API: {0}")]
    Io(#[from] std::io::Error),
    #[error("admin API answered {status}: {message}")]
    Api { status: u16, message: String },
    /// The running levee refused the new config; one line per problem.
    #[error("reload refused; the running config stays")]
    Refused(Vec<String>),
    #[error("admin API sent a malformed response")]
    BadResponse,
}

/// Where the admin listener is, and the token to show it.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<Secret>,
}

/// Runs `command` against the admin listener; returns what to print.
pub fn run(client: &Client, command: &Command) -> Result<String, CtlError> {
    let action = |upstream: &str, server: &str, what: &str| {
        format!(
            "/upstreams/{}/servers/{}/{what}",
            encode(upstream),
            encode(server)
        )
    };
    let (method, path, body) = match command {
        Command::Upstreams => ("GET", "/upstreams".to_owned(), String::new()),
        Command::Upstream(name) => ("GET", format!("/upstreams/{}", encode(name)), String::new()),
        Command::Metrics => ("GET", "/metrics".to_owned(), String::new()),
        Command::Cache | Command::CacheStats => ("GET", "/cache".to_owned(), String::new()),
        Command::Purge { by, value } => (
            "POST",
            "/cache/purge".to_owned(),
            serde_json::json!({ by.key(): value }).to_string(),
        ),
        Command::CloseUser(user) => (
            "POST",
            format!("/mail/users/{}/close", encode(user)),
            String::new(),
        ),
        Command::Fleet => ("GET", "/fleet".to_owned(), String::new()),
        Command::Certs => ("GET", "/certs".to_owned(), String::new()),
        Command::CertsRenew(name) => (
            "POST",
            format!("/certs/{}/renew", encode(name)),
            "{}".to_owned(),
        ),
        Command::FleetPing(note) => (
            "POST",
            "/fleet/ping".to_owned(),
            serde_json::json!({ "note": note }).to_string(),
        ),
        Command::FleetDrain { instance, drained } => (
            "POST",
            format!(
                "/fleet/members/{}/{}",
                encode(instance),
                if *drained { "drain" } else { "undrain" }
            ),
            "{}".to_owned(),
        ),
        Command::Drain { upstream, server } => {
            ("POST", action(upstream, server, "drain"), String::new())
        }
        Command::Disable { upstream, server } => {
            ("POST", action(upstream, server, "disable"), String::new())
        }
        Command::Enable { upstream, server } => {
            ("POST", action(upstream, server, "enable"), String::new())
        }
        Command::Mirrors(m) => m.request(),
        Command::Weight {
            upstream,
            server,
            weight,
        } => {
            let w = weight.map_or("null".to_owned(), |w| w.to_string());
            (
                "POST",
                action(upstream, server, "weight"),
                format!("{{\"weight\": {w}}}"),
            )
        }
        Command::Ban { address, duration } | Command::Allow { address, duration } => (
            "POST",
            match command {
                Command::Allow { .. } => "/allows",
                _ => "/bans",
            }
            .to_owned(),
            match duration {
                Some(d) => serde_json::json!({ "address": address, "for": d }),
                None => serde_json::json!({ "address": address }),
            }
            .to_string(),
        ),
        Command::Unban(address) | Command::Unallow(address) => (
            "POST",
            match command {
                Command::Unallow(_) => "/allows/lift",
                _ => "/bans/lift",
            }
            .to_owned(),
            serde_json::json!({ "address": address }).to_string(),
        ),
        Command::Bans => ("GET", "/bans".to_owned(), String::new()),
        Command::Allows => ("GET", "/allows".to_owned(), String::new()),
    };
    let (status, text) = request(client, method, &path, &body)?;
    if status != 200 && status != 201 && status != 202 {
        return Err(api_error(status, text));
    }
    Ok(match command {
        Command::Upstreams => table(&text).unwrap_or(text),
        Command::Fleet => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            fleet::table(&text, now).unwrap_or(text)
        }
        Command::Mirrors(MirrorsCommand::List(_)) => mirrors_table(&text).unwrap_or(text),
        Command::Bans => bans_table(&text, "bans").unwrap_or(text),
        Command::Allows => bans_table(&text, "allows").unwrap_or(text),
        Command::Ban { .. } | Command::Unban(_) | Command::Allow { .. } | Command::Unallow(_) => {
            bans_line(&text).unwrap_or(text)
        }
        Command::Certs => certs::table(&text).unwrap_or(text),
        Command::CacheStats => tiers_table(&text).unwrap_or(text),
        Command::Drain { .. }
        | Command::Disable { .. }
        | Command::Enable { .. }
        | Command::Weight { .. } => table(&format!("{{\"upstreams\": [{text}]}}")).unwrap_or(text),
        _ => text,
    })
}

/// `POST /reload`: the file the running levee reloaded, or every reason it
/// refused the new config.
pub fn reload(client: &Client) -> Result<String, CtlError> {
    let (status, text) = request(client, "POST", "/reload", "{}")?;
    let v: Option<Value> = serde_json::from_str(&text).ok();
    match (status, v) {
        (200, Some(v)) => Ok(v
            .get("reloaded")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()),
        (422, Some(v)) => Err(CtlError::Refused(
            v.get("errors")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        )),
        _ => Err(api_error(status, text)),
    }
}

/// The API's `{"error": …}` message, or the body as it came.
fn api_error(status: u16, text: String) -> CtlError {
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or(text);
    CtlError::Api { status, message }
}

/// One request; returns the status and the body as text. `Host` is the
/// listener's address, as the admin listener requires.
pub fn request(
    client: &Client,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), CtlError> {
    let addr = client.addr;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|source| CtlError::Connect { addr, source })?;
    // A reload (`POST /reload`) may take as long as reading certificates
    // and user maps; the server gives up on it after a minute.
    stream.set_read_timeout(Some(Duration::from_secs(90)))?;
    let authorization = client
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {}\r\n", t.reveal()))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: levee-ctl\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(CtlError::BadResponse)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(CtlError::BadResponse)?;
    Ok((status, body.to_owned()))
}

/// Escapes what may not stand in a path segment (`[`, `]`, `/`, `%`, space).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub mod act;
mod certs;
mod fleet;
pub mod push;
mod tables;

use tables::{bans_line, bans_table, columns, table};
