//! `[acme]`: certificates levee obtains and renews itself (ACME, RFC 8555),
//! for listeners with `tls = "auto"` (docs/tls.md, "Automatic certificates").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::FileRef;

/// Let's Encrypt's production directory (`directory = "letsencrypt"`).
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`directory = "letsencrypt-staging"`).
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// Default `storage`.
pub const DEFAULT_ACME_STORAGE: &str = "/var/lib/levee/acme";
/// Default `[acme.on_demand] per_name`: one order per name per this long.
pub const DEFAULT_ON_DEMAND_PER_NAME: Duration = Duration::from_secs(3600);
/// Default `[acme.on_demand] max_per_hour`.
pub const DEFAULT_ON_DEMAND_PER_HOUR: u32 = 20;
/// Default `[acme.on_demand] ask_timeout`.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `[acme] max_orders_per_hour`.
pub const DEFAULT_MAX_ORDERS_PER_HOUR: u32 = 100;
/// Default `[acme] max_orders_per_name`: per name in any 24 hours.
pub const DEFAULT_MAX_ORDERS_PER_NAME: u32 = 6;
/// Default `[acme.dns] ttl`.
pub const DEFAULT_DNS_TTL: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acme {
    /// The directory URL (a preset name is resolved to its URL).
    pub directory: String,
    /// Contact e-mail addresses, without `mailto:`.
    pub contact: Vec<String>,
    /// External Account Binding, for a CA that requires one.
    pub eab: Option<Eab>,
    /// Where accounts and certificates are kept.
    pub storage: PathBuf,
    /// PEM roots to trust for the CA's own HTTPS instead of the system's
    /// (a test CA such as Pebble).
    pub ca_root: Option<FileRef>,
    pub key_type: KeyType,
    /// Renew when this little of the lifetime is left; `None`: at two
    /// thirds of the lifetime. The CA's renewal information (ARI) may say
    /// earlier.
    pub renew_before: Option<Duration>,
    /// Challenge types to use, in order of preference (`dns-01` is used
    /// for wildcards whatever this says). Empty: chosen from the listeners
    /// (HTTP-01 with a plain HTTP listener, TLS-ALPN-01 with an `auto` one).
    pub challenges: Vec<Challenge>,
    /// Names to obtain besides the exact hosts of routes on `auto` listeners.
    pub names: Vec<String>,
    /// Where DNS-01 records are written; required for wildcard names.
    pub dns: Option<AcmeDns>,
    /// On-demand TLS; `None`: off.
    pub on_demand: Option<OnDemand>,
    /// With `[fleet]`: the key that encrypts private keys kept in Redis.
    pub fleet_key: Option<SecretSource>,
    /// Orders that may reach the CA in any hour, all names together.
    pub max_orders_per_hour: u32,
    /// Orders for one name in any 24 hours, renewals included.
    pub max_orders_per_name: u32,
}

impl Acme {
    /// What `tls = "auto"` uses without an `[acme]` section: Let's Encrypt,
    /// the default storage, no contact.
    pub fn defaults() -> Acme {
        Acme {
            directory: LETSENCRYPT.to_owned(),
            contact: Vec::new(),
            eab: None,
            storage: DEFAULT_ACME_STORAGE.into(),
            ca_root: None,
            key_type: KeyType::EcdsaP256,
            renew_before: None,
            challenges: Vec::new(),
            names: Vec::new(),
            dns: None,
            on_demand: None,
            fleet_key: None,
            max_orders_per_hour: DEFAULT_MAX_ORDERS_PER_HOUR,
            max_orders_per_name: DEFAULT_MAX_ORDERS_PER_NAME,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eab {
    pub kid: String,
    /// The base64url HMAC key, in a file.
    pub hmac_file: FileRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    Rsa2048,
    Rsa4096,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Http01,
    TlsAlpn01,
    Dns01,
}

impl Challenge {
    pub fn as_str(self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::TlsAlpn01 => "tls-alpn-01",
            Challenge::Dns01 => "dns-01",
        }
    }
}

/// `[acme.dns]`: an RFC 2136 dynamic update to an authoritative server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeDns {
    /// The primary server, `IP:port`.
    pub server: SocketAddr,
    /// The zone to update; by default the name's parent (`example.com`
    /// for `_acme-challenge.example.com`).
    pub zone: Option<String>,
    /// TSIG key name and its base64 HMAC-SHA256 secret, in a file.
    pub tsig_key: Option<String>,
    pub tsig_secret_file: Option<FileRef>,
    pub ttl: u32,
}

/// `[acme.on_demand]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDemand {
    /// Asked `GET URL?domain=NAME`; 2xx allows, anything else refuses.
    pub ask: Option<String>,
    pub ask_timeout: Duration,
    /// Host patterns (`example.com`, `*.example.com`) allowed without asking.
    pub allow: Vec<String>,
    /// At most one order for a name per this long.
    pub per_name: Duration,
    /// At most this many on-demand orders an hour, all names together.
    pub max_per_hour: u32,
}

/// Where a secret is read from at start and reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(FileRef),
    Env(String),
}
