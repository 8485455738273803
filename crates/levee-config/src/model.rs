//! The validated config model: what the rest of levee reads.
//!
//! Every value here has passed validation. Defaults are filled in, durations
//! and sizes are parsed, and cross references (a route naming an upstream) are
//! known to resolve. Nothing downstream re-validates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod acme;
mod admin;
mod cache;
mod compress;
mod dns;
mod fleet;
mod http2;
mod mail;
mod mirrors;
mod protect;
mod rewrite;
mod shape;
mod static_opts;
mod tls;
mod upstream;
pub use acme::*;
pub use admin::*;
pub use cache::*;
pub use compress::*;
pub use dns::*;
pub use fleet::*;
pub use http2::*;
pub use mail::*;
pub use mirrors::*;
pub use protect::*;
pub use rewrite::*;
pub use shape::*;
pub use static_opts::*;
pub use tls::*;
pub use upstream::*;

/// A complete, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from, if any (for reload and messages).
    pub source: Option<PathBuf>,
    /// Worker threads; the `workers` key, with `"auto"` resolved to the core count.
    pub workers: usize,
    /// Where `levee run` writes its pid and where `levee reload`/`stop` look for it.
    pub pid_file: Option<PathBuf>,
    /// `user`: who levee runs as once its sockets are bound (started as
    /// root); `None` keeps the user it was started as.
    pub user: Option<String>,
    /// `group`: the group it runs as; `None` is `user`'s primary group.
    pub group: Option<String>,
    /// `control_socket`: a Unix socket for `levee upgrade`, through which
    /// the listening sockets go to the new binary.
    pub control_socket: Option<PathBuf>,
    pub log: LogConfig,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub listeners: Vec<Listener>,
    /// In file order. Selection is by specificity, see `levee-http`'s router.
    pub routes: Vec<Route>,
    pub upstreams: Vec<Upstream>,
    /// The control API and metrics listener; none when `[admin]` is absent.
    pub admin: Option<Admin>,
    /// `[protect]` and the `[rate_limit.NAME]` rules.
    pub protect: Protect,
    /// `[resolver]`; `None` means the system resolver.
    pub resolver: Option<Resolver>,
    /// `[cache]`: used by routes with `cache = true`.
    pub cache: CacheConfig,
    /// `[http2]`: limits of HTTP/2 connections.
    pub http2: Http2,
    /// `[compress]`: what routes compress with unless they say otherwise.
    pub compress: CompressConfig,
    /// `[fleet]`: shared state in Redis; `None` for a levee on its own.
    pub fleet: Option<Fleet>,
    /// `[mirrors.NAME]`: file trees redirected to mirrors, in file order.
    pub mirrors: Vec<MirrorSet>,
    /// `[acme]`: certificates levee obtains itself; `None` without.
    pub acme: Option<Acme>,
    /// `[dns]`: the authoritative DNS server; `None` when it is off.
    pub dns: Option<Dns>,
    /// `[http]`: request ids, the upstream's `Server` (model/shape.rs).
    pub http: Http,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub access: AccessLogTarget,
    pub format: AccessLogFormat,
    /// A `tracing` env-filter directive such as `"info"` or `"levee_http=debug"`.
    pub level: String,
    /// Where levee's own log goes (`error`, nginx's `error_log`).
    pub error: ErrorLogTarget,
    /// How levee's own log lines are written (`error_format`).
    pub error_format: ErrorLogFormat,
}

/// `[log] error`: where levee's own log goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ErrorLogTarget {
    #[default]
    Stderr,
    Stdout,
    /// Appended to; reopened on reload and SIGUSR1 (logrotate).
    File(PathBuf),
}

/// `[log] error_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorLogFormat {
    /// One human-readable line per event, spans' fields before the message.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

impl ErrorLogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorLogFormat::Text => "text",
            ErrorLogFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Combined,
    Json,
}

/// Limits on what a client may send. Exceeding one is a 4xx, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line in bytes (414 beyond it).
    pub max_request_line: usize,
    /// Largest request head (request line plus all header lines) in bytes (431 beyond it).
    pub max_header_bytes: usize,
    /// Most header fields in one request (431 beyond it).
    pub max_headers: usize,
    /// Largest request body in bytes (413 beyond it); 0 means unlimited.
    pub max_body: u64,
    /// Most requests served on one client connection before it is closed; 0 means unlimited.
    pub max_requests_per_connection: u64,
    /// Most internal rewrites (`flag = "last"`) of one request; past them, 500.
    pub max_rewrites: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Deadline for a whole request head, from its first byte (408 when passed).
    pub request_head: Duration,
    /// How long an idle keep-alive client connection is kept.
    pub keepalive: Duration,
    /// Longest wait for progress while reading a request body from the client.
    pub client_body: Duration,
    /// Longest wait for progress while writing to the client.
    pub client_send: Duration,
    pub upstream_connect: Duration,
    /// Longest wait for the response head, and between body reads from the upstream.
    pub upstream_read: Duration,
    pub upstream_write: Duration,
    /// On stop: how long in-flight requests get to finish.
    pub grace: Duration,
    /// An upgraded connection (WebSocket) with no bytes either way for this long is closed.
    pub tunnel_idle: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Unique; defaults to the address text.
    pub name: String,
    pub address: SocketAddr,
    pub backlog: u32,
    pub protect: ListenerProtect,
    /// `[listener.tls]`: TLS termination; `None` for plain TCP.
    pub tls: Option<ListenerTls>,
    /// Sources that must send a PROXY protocol header; empty for none.
    pub proxy_protocol: Vec<IpNet>,
    /// Proxies whose forwarded fields name the client (HTTP listeners).
    pub trusted: TrustedProxies,
    /// `http2 = "prior-knowledge"`: cleartext clients may open with the
    /// HTTP/2 preface (h2c); others still speak HTTP/1.
    pub h2c: bool,
    /// `http2 = "only"`: every cleartext connection speaks HTTP/2; one
    /// that does not open with its preface gets GOAWAY PROTOCOL_ERROR.
    pub h2_only: bool,
    /// The mail front end; `None` for an HTTP listener.
    pub mail: Option<Box<MailListener>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Listener names this route applies to; empty means every listener.
    pub listeners: Vec<String>,
    /// Empty means any host.
    pub hosts: Vec<HostMatch>,
    /// Path prefix, always starting with `/`. Default `/`.
    pub path: String,
    pub action: Action,
    pub protect: RouteProtect,
    /// How the route compresses responses; `None`: it does not.
    pub compress: Option<Compress>,
    /// Path rewriting (model/rewrite.rs); empty by default.
    pub rewrite: RouteRewrite,
    /// Header rules and the upstream's `Server` (model/shape.rs).
    pub shape: RouteShape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Lower-case host without port.
    Exact(String),
    /// `*.example.com` is stored as the suffix `.example.com` (lower case).
    Wildcard(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Proxy(ProxyAction),
    Static(StaticAction),
    Redirect(RedirectAction),
    Respond(RespondAction),
    Mirrors(MirrorsAction),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAction {
    /// Names an entry of `Config::upstreams` (validated).
    pub upstream: String,
    /// Send the client's Host upstream (default true); otherwise the server address.
    pub preserve_host: bool,
    /// The path the upstream is sent (`forward_path`, default normalised).
    pub forward_path: ForwardPath,
    /// The route's cache settings; `None` when it does not cache.
    pub cache: Option<RouteCache>,
}

/// `forward_path`: which spelling of the request's path a proxy route
/// sends upstream. Routing and protections always read the normalised one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardPath {
    /// Dot segments resolved, slashes merged, unreserved characters
    /// decoded; other escapes (`%2F`) kept, as nginx with a URI in
    /// `proxy_pass` (`"normalised"`).
    #[default]
    Normalised,
    /// The client's path as it was sent (`"original"`).
    Original,
}

impl ForwardPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardPath::Normalised => "normalised",
            ForwardPath::Original => "original",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAction {
    pub root: PathBuf,
    /// Tried in order for a directory request. Default `["index.html"]`.
    pub index: Vec<String>,
    /// Serve files reached through symlinks that leave the root (default false).
    pub follow_symlinks: bool,
    /// Hidden files, expiry, listings, fallbacks (model/static_opts.rs).
    pub options: StaticOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectAction {
    /// Target; `{host}` and `{uri}` (path and query) are substituted.
    pub to: String,
    /// 301, 302, 303, 307 or 308. Default 302.
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespondAction {
    pub status: u16,
    pub body: String,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    pub servers: Vec<Server>,
    /// Idle connections kept per worker per server. Default 64.
    pub keepalive: usize,
    /// How long an idle pooled connection is kept. Default 60 s.
    pub keepalive_timeout: Duration,
    pub balance: Balance,
    pub passive: PassiveHealth,
    /// Active checks; none when `health_check` is absent.
    pub health_check: Option<HealthCheck>,
    /// A server back from being down ramps its weight up over this window.
    pub slow_start: Duration,
    pub retry: RetryPolicy,
    /// How often DNS names among the servers are resolved again.
    pub resolve_interval: Duration,
    /// `[upstream.NAME.tls]`: TLS to every server; `None` for plain TCP.
    pub tls: Option<UpstreamTls>,
    /// PROXY protocol version (1 or 2) sent at the start of each connection
    /// to a server; `None` sends none.
    pub proxy_protocol: Option<u8>,
    /// What the servers speak: HTTP/1.1, or HTTP/2 (cleartext or over TLS).
    pub protocol: UpstreamProtocol,
}

impl Upstream {
    /// An upstream with `servers` and every default.
    pub fn new(name: impl Into<String>, servers: Vec<Server>) -> Upstream {
        Upstream {
            name: name.into(),
            servers,
            keepalive: DEFAULT_UPSTREAM_KEEPALIVE,
            keepalive_timeout: DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT,
            balance: Balance::default(),
            passive: PassiveHealth::default(),
            health_check: None,
            slow_start: DEFAULT_SLOW_START,
            retry: RetryPolicy::default(),
            resolve_interval: DEFAULT_RESOLVE_INTERVAL,
            tls: None,
            proxy_protocol: None,
            protocol: UpstreamProtocol::Http1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `host:port` as written; `host` may be an IP literal or a DNS name.
    pub address: String,
    pub weight: u32,
    /// Used only when no primary server is usable.
    pub backup: bool,
}

impl Server {
    /// A primary server of weight 1.
    pub fn new(address: impl Into<String>) -> Server {
        Server {
            address: address.into(),
            weight: 1,
            backup: false,
        }
    }
}

// Defaults, in one place so the parser, the built-in configs and
// docs/config.md agree.

/// `backlog` of a listener when not set.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// `keepalive` of an upstream when not set.
pub const DEFAULT_UPSTREAM_KEEPALIVE: usize = 64;
/// `keepalive_timeout` of an upstream when not set.
pub const DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// `index` of a static route when not set.
pub const DEFAULT_INDEX: &[&str] = &["index.html"];
/// `status` of a redirect route when not set.
pub const DEFAULT_REDIRECT_STATUS: u16 = 302;
/// `status` of a respond route when not set.
pub const DEFAULT_RESPOND_STATUS: u16 = 200;
/// `content_type` of a respond route when not set.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            access: AccessLogTarget::Stdout,
            format: AccessLogFormat::Combined,
            level: "info".to_owned(),
            error: ErrorLogTarget::Stderr,
            error_format: ErrorLogFormat::Text,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body: 100 * 1024 * 1024,
            max_requests_per_connection: 10_000,
            max_rewrites: DEFAULT_MAX_REWRITES,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request_head: Duration::from_secs(10),
            keepalive: Duration::from_secs(75),
            client_body: Duration::from_secs(60),
            client_send: Duration::from_secs(60),
            upstream_connect: Duration::from_secs(5),
            upstream_read: Duration::from_secs(60),
            upstream_write: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            tunnel_idle: Duration::from_secs(600),
        }
    }
}
