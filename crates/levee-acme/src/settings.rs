//! `[acme]` made ready to run: the files it names read (EAB key, CA root,
//! TSIG secret, fleet key), and the names to keep certificates for worked
//! out from the listeners and routes. [`Settings::load`] is what
//! `levee check`, start-up and reload all call, so a file that is missing
//! fails all three alike, at its key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use levee_config::{Config, ConfigError, FileRef, HostMatch, SecretSource};

use crate::keys::KeyType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Http01,
    TlsAlpn01,
    Dns01,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub directory: String,
    pub contact: Vec<String>,
    /// Key id and the decoded HMAC key.
    pub eab: Option<(String, Vec<u8>)>,
    pub storage: PathBuf,
    /// PEM roots for the CA's HTTPS; the system's when `None`.
    pub ca_root: Option<Vec<u8>>,
    pub key_type: KeyType,
    pub renew_before: Option<Duration>,
    pub challenges: Vec<Challenge>,
    /// Every name to keep a certificate for, lower case, sorted.
    pub names: Vec<String>,
    pub dns: Option<DnsSettings>,
    pub on_demand: Option<levee_config::OnDemand>,
    /// The AES-256 key for private keys kept in the fleet's Redis.
    pub fleet_key: Option<[u8; 32]>,
    pub max_orders_per_hour: u32,
    pub max_orders_per_name: u32,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No secret in a log line.
        f.debug_struct("Settings")
            .field("directory", &self.directory)
            .field("storage", &self.storage)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct DnsSettings {
    pub server: SocketAddr,
    pub zone: Option<String>,
    /// TSIG key name and secret (HMAC-SHA256).
    pub tsig: Option<(String, Vec<u8>)>,
    pub ttl: u32,
}

impl std::fmt::Debug for DnsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsSettings")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// `None` without `[acme]`; every problem at its key otherwise.
    pub fn load(config: &Config) -> Result<Option<Settings>, Vec<ConfigError>> {
        let Some(a) = &config.acme else {
            return Ok(None);
        };
        let source = config
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from(levee_config::BUILTIN_SOURCE));
        let mut errors = Vec::new();
        let mut read = |f: &FileRef| match std::fs::read(&f.path) {
            Ok(b) => Some(b),
            Err(e) => {
                errors.push(at(
                    &source,
                    f,
                    format!("cannot read `{}`: {e}", f.path.display()),
                ));
                None
            }
        };
        let eab = a.eab.as_ref().and_then(|e| {
            let text = read(&e.hmac_file)?;
            Some((e.kid.clone(), text))
        });
        let ca_root = a.ca_root.as_ref().and_then(&mut read);
        let tsig = a.dns.as_ref().and_then(|d| {
            let file = d.tsig_secret_file.as_ref()?;
            Some((
                d.tsig_key.clone().unwrap_or_default(),
                read(file)?,
                file.clone(),
            ))
        });
        let fleet_key = match &a.fleet_key {
            Some(SecretSource::File(f)) => read(f).map(|b| (b, Some(f.clone()))),
            Some(SecretSource::Env(var)) => match std::env::var(var) {
                Ok(v) => Some((v.into_bytes(), None)),
                Err(_) => {
                    errors.push(ConfigError {
                        file: source.clone(),
                        line: 0,
                        column: 0,
                        key: "acme.fleet_key_env".into(),
                        message: format!("the environment variable `{var}` is not set"),
                    });
                    None
                }
            },
            None => None,
        };
        let mut decoded = |text: &[u8], f: Option<&FileRef>, what: &str| {
            let trimmed = String::from_utf8_lossy(text).trim().to_owned();
            match base64_any(&trimmed) {
                Some(b) if !b.is_empty() => Some(b),
                _ => {
                    let message = format!("{what}: expected base64 text");
                    errors.push(match f {
                        Some(f) => at(&source, f, message),
                        None => ConfigError {
                            file: source.clone(),
                            line: 0,
                            column: 0,
                            key: "acme".into(),
                            message,
                        },
                    });
                    None
                }
            }
        };
        let eab = eab.and_then(|(kid, text)| {
            let f = a.eab.as_ref().map(|e| &e.hmac_file);
            Some((kid, decoded(&text, f, "the EAB HMAC key")?))
        });
        let tsig = tsig
            .and_then(|(name, text, f)| Some((name, decoded(&text, Some(&f), "the TSIG secret")?)));
        // Any text will do as the fleet key: it is hashed to 32 bytes.
        let fleet_key = fleet_key.map(|(b, _)| {
            let digest = ring::digest::digest(&ring::digest::SHA256, trim_line(&b));
            let mut k = [0u8; 32];
            k.copy_from_slice(digest.as_ref());
            k
        });
        if let Some(root) = &ca_root
            && !root
                .windows(27)
                .any(|w| w == b"-----BEGIN CERTIFICATE-----")
            && let Some(f) = &a.ca_root
        {
            errors.push(at(&source, f, "no PEM certificate in the file".into()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Some(Settings {
            directory: a.directory.clone(),
            contact: a.contact.clone(),
            eab,
            storage: a.storage.clone(),
            ca_root,
            key_type: match a.key_type {
                levee_config::KeyType::EcdsaP256 => KeyType::EcdsaP256,
                levee_config::KeyType::Rsa2048 => KeyType::Rsa(2048),
                levee_config::KeyType::Rsa4096 => KeyType::Rsa(4096),
            },
            renew_before: a.renew_before,
            challenges: match a.challenges.is_empty() {
                true => automatic_challenges(config),
                false => a
                    .challenges
                    .iter()
                    .map(|c| match c {
                        levee_config::Challenge::Http01 => Challenge::Http01,
                        levee_config::Challenge::TlsAlpn01 => Challenge::TlsAlpn01,
                        levee_config::Challenge::Dns01 => Challenge::Dns01,
                    })
                    .collect(),
            },
            names: names(config),
            dns: a.dns.as_ref().map(|d| DnsSettings {
                server: d.server,
                zone: d.zone.clone(),
                tsig: tsig.clone(),
                ttl: d.ttl,
            }),
            on_demand: a.on_demand.clone(),
            fleet_key: config.fleet.as_ref().and(fleet_key),
            max_orders_per_hour: a.max_orders_per_hour,
            max_orders_per_name: a.max_orders_per_name,
        }))
    }
}

/// Without `challenges`: HTTP-01 when levee has a plain HTTP listener
/// (the CA connects to port 80, which may be forwarded to any of them),
/// then TLS-ALPN-01 when it has an `auto` one (port 443).
fn automatic_challenges(config: &Config) -> Vec<Challenge> {
    let http = config
        .listeners
        .iter()
        .any(|l| l.tls.is_none() && l.mail.is_none());
    let auto = config
        .listeners
        .iter()
        .any(|l| l.tls.as_ref().is_some_and(|t| t.auto) && l.mail.is_none());
    let mut out = Vec::new();
    if http {
        out.push(Challenge::Http01);
    }
    if auto {
        out.push(Challenge::TlsAlpn01);
    }
    out
}

fn trim_line(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

/// Standard or URL-safe base64, padded or not (CAs hand out EAB keys
/// base64url-encoded; `tsig-keygen` writes standard base64).
fn base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let unpadded = text.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(unpadded)
        .ok()
        .or_else(|| STANDARD.decode(text).ok())
}

fn at(source: &Path, f: &FileRef, message: String) -> ConfigError {
    ConfigError {
        file: source.to_path_buf(),
        line: f.line,
        column: f.column,
        key: f.key.clone(),
        message,
    }
}

/// The names levee keeps certificates for: `[acme] names`, and the exact
/// hosts of the routes that apply to an `auto` listener, but for those a
/// file of that listener already covers (the two mix per name). Route
/// wildcards are not ordered: a wildcard certificate is asked for by name
/// in `[acme] names`, as it needs DNS-01.
pub fn names(config: &Config) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    if let Some(a) = &config.acme {
        out.extend(a.names.iter().cloned());
    }
    for l in &config.listeners {
        let Some(tls) = l.tls.as_ref().filter(|t| t.auto) else {
            continue;
        };
        let mut files = levee_tls::sni::Names::default();
        for c in &tls.certs {
            for n in &c.names {
                files.insert(n, ());
            }
        }
        for r in &config.routes {
            if !r.listeners.is_empty() && !r.listeners.contains(&l.name) {
                continue;
            }
            for h in &r.hosts {
                if let HostMatch::Exact(host) = h
                    && is_dns_name(host)
                    && files.get(host).is_none()
                {
                    out.insert(host.clone());
                }
            }
        }
    }
    out.into_iter().collect()
}

/// A name a CA could issue for: letters, digits, `-` and dots, at least
/// two labels, not an IP address.
pub fn is_dns_name(name: &str) -> bool {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    bare.len() <= 253
        && bare.contains('.')
        && bare.parse::<std::net::IpAddr>().is_err()
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        levee_config::parse(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn names_come_from_acme_and_routes_of_auto_listeners_but_not_files() {
        let dir = std::env::temp_dir();
        let c = parse(&format!(
            r#"
[[listener]]
name = "auto"
address = "127.0.0.1:8443"
[listener.tls]
auto = true
[[listener.tls.certs]]
cert = "{d}/x.pem"
key = "{d}/x.key"
names = ["file.test"]

[[listener]]
name = "plain"
address = "127.0.0.1:8080"

[acme]
names = ["extra.test"]

[[route]]
host = ["a.test", "file.test", "*.w.test", "[::1]"]
respond = "hi"

[[route]]
listener = "plain"
host = "only-plain.test"
respond = "hi"
"#,
            d = dir.display()
        ));
        assert_eq!(names(&c), ["a.test", "extra.test"]);
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_name("a.example"));
        assert!(is_dns_name("*.a.example"));
        for bad in ["localhost", "1.2.3.4", "a..b", "-a.b", "a_b.c", "a.b/c", ""] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }
}
