//! The connection to the fleet's Redis: one server, the master that the
//! sentinels name, or a Cluster, behind one [`Link`] that reconnects on its
//! own and never holds a caller past the fleet's `timeout`.
//!
//! The client is the `redis` crate (redis-rs): the most used Rust client,
//! kept by the Redis project, with tokio, rustls, Sentinel and Cluster in one
//! crate, scripts with their `NOSCRIPT` reload, and a multiplexed connection
//! that pipelines concurrent commands on one socket. `fred` has the same
//! reach but brings its own reconnect policy and a larger surface; levee
//! wants its own policy (below), so the smaller client fits better. The
//! crate's `ConnectionManager` is not used for the same reason: it retries
//! with backoff on one address, while levee must ask the sentinels again
//! after a failover and must report "down" within one timeout or two.
//!
//! Policy: a connection error, or two commands in a row that time out,
//! drop the connection and mark Redis down ([`Health`]); the maintainer
//! connects again every `RETRY` (through the sentinels when there are),
//! checks the server with `PING`, and hands it back as `Restoring`.

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use levee_config::{RedisAddr, RedisTarget};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    Pipeline, RedisConnectionInfo, RedisError, RedisFuture, RedisResult, TlsCertificates, Value,
};
use tokio::sync::Notify;

use crate::FleetError;
use crate::health::{Health, State};
use crate::settings::Settings;

/// How often a lost connection is tried again.
pub const RETRY: Duration = Duration::from_millis(100);
/// The longest a connection attempt (TCP, TLS, AUTH, PING) may take. No
/// request waits on it: requests fall back to local limits meanwhile.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Timeouts in a row that mark Redis down: one can be a slow moment, two
/// in a row (40 ms at the default timeout) is a server that does not answer.
const TIMEOUTS_DOWN: u32 = 2;

/// A connection that commands can be sent on (cheap to clone).
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How to reach Redis, built once from the settings.
enum Target {
    Single(Client),
    /// `async_get_client` asks the sentinels and needs `&mut`.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

pub struct Link {
    target: Target,
    /// Seeds a subscriber can use in a Cluster (PUBLISH reaches every node).
    seeds: Vec<Client>,
    conn: Mutex<Option<Conn>>,
    pub health: Arc<Health>,
    timeout: Duration,
    timeouts_in_row: AtomicU32,
    broken: Notify,
    /// Commands sent, commands that failed, commands that timed out.
    pub commands: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("health", &self.health.state())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Link {
    pub fn new(s: &Settings) -> Result<Link, FleetError> {
        let certs = || TlsCertificates {
            client_tls: None,
            root_cert: s.ca.clone(),
        };
        let redis_info = RedisConnectionInfo::default();
        let redis_info = match &s.username {
            Some(u) => redis_info.set_username(u),
            None => redis_info,
        };
        let redis_info = match &s.password {
            Some(p) => redis_info.set_password(p),
            None => redis_info,
        };
        let client = |a: &RedisAddr| -> Result<Client, FleetError> {
            let info = info(a)?.set_redis_settings(redis_info.clone().set_db(i64::from(a.db)));
            let client = if a.tls && s.ca.is_some() {
                Client::build_with_tls(info, certs())
            } else {
                Client::open(info)
            };
            client.map_err(FleetError::Client)
        };
        let (target, seeds) = match &s.config.redis {
            RedisTarget::Single(a) => (Target::Single(client(a)?), Vec::new()),
            RedisTarget::Sentinel { master, sentinels } => {
                let addrs = sentinels.iter().map(addr);
                let mut b = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
                    .map_err(FleetError::Client)?;
                if let Some(u) = &s.username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = &s.password {
                    b = b.set_client_to_redis_password(p);
                }
                if s.config.redis.tls() {
                    b = b
                        .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
                    if s.ca.is_some() {
                        b = b
                            .set_client_to_redis_certificates(certs())
                            .set_client_to_sentinel_certificates(certs());
                    }
                }
                let sentinel = b.build().map_err(FleetError::Client)?;
                (
                    Target::Sentinel(tokio::sync::Mutex::new(sentinel)),
                    Vec::new(),
                )
            }
            RedisTarget::Cluster(nodes) => {
                let infos = nodes
                    .iter()
                    .map(|a| info(a).map(|i| i.set_redis_settings(redis_info.clone())))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut b = ClusterClient::builder(infos)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(s.config.timeout.max(Duration::from_millis(100)))
                    .retries(0);
                if let Some(u) = &s.username {
                    b = b.username(u);
                }
                if let Some(p) = &s.password {
                    b = b.password(p);
                }
                if s.config.redis.tls() {
                    b = b.tls(redis::TlsMode::Secure);
                    if s.ca.is_some() {
                        b = b.certs(certs());
                    }
                }
                let seeds = nodes.iter().map(client).collect::<Result<Vec<_>, _>>()?;
                (
                    Target::Cluster(b.build().map_err(FleetError::Client)?),
                    seeds,
                )
            }
        };
        Ok(Link {
            target,
            seeds,
            conn: Mutex::new(None),
            health: Arc::new(Health::new(describe(&s.config.redis))),
            timeout: s.config.timeout,
            timeouts_in_row: AtomicU32::new(0),
            broken: Notify::new(),
            commands: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The current connection, if Redis is reachable.
    pub fn conn(&self) -> Option<Conn> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `f` on the connection within the fleet's timeout, counting the
    /// command and judging the connection by how it went.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, FleetError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_within(self.timeout, f).await
    }

    /// [`Link::run`] with another deadline, for work no request waits on
    /// (heartbeats, the restore after a reconnect).
    pub async fn run_within<T, F, Fut>(&self, limit: Duration, f: F) -> Result<T, FleetError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.conn().ok_or(FleetError::Down)?;
        self.commands.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(limit, f(conn)).await {
            Ok(Ok(v)) => {
                self.timeouts_in_row.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if breaks_connection(&e) {
                    self.drop_conn(&e.to_string());
                }
                Err(FleetError::Redis(e))
            }
            Err(_) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                if self.timeouts_in_row.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_DOWN {
                    self.drop_conn("no answer within the timeout, twice in a row");
                }
                Err(FleetError::Timeout)
            }
        }
    }

    /// Forgets the connection and marks Redis down; the maintainer
    /// connects again.
    pub fn drop_conn(&self, why: &str) {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.timeouts_in_row.store(0, Ordering::Relaxed);
        self.health.set(State::Down, why);
        self.broken.notify_one();
    }

    /// Connects (asking the sentinels which server is the master) and
    /// checks the server with `PING`; on success the link is `Restoring`.
    pub async fn connect(&self) -> Result<(), FleetError> {
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| FleetError::Timeout)??;
        let mut probe = conn.clone();
        let pong: RedisResult<String> =
            tokio::time::timeout(CONNECT_TIMEOUT, redis::cmd("PING").query_async(&mut probe))
                .await
                .map_err(|_| FleetError::Timeout)?;
        pong.map_err(FleetError::Redis)?;
        self.timeouts_in_row.store(0, Ordering::Relaxed);
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        self.health.set(State::Restoring, "");
        Ok(())
    }

    async fn open(&self) -> Result<Conn, FleetError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let conn = match &self.target {
            Target::Single(c) => Conn::Single(
                c.get_multiplexed_async_connection_with_config(&config)
                    .await?,
            ),
            Target::Sentinel(s) => Conn::Single(
                s.lock()
                    .await
                    .get_async_connection_with_config(&config)
                    .await?,
            ),
            Target::Cluster(c) => Conn::Cluster(c.get_async_connection().await?),
        };
        Ok(conn)
    }

    /// A client for a subscriber: the server itself, the current master,
    /// or a seed of the Cluster (`seed` picks which, round robin).
    pub async fn subscriber_client(&self, seed: usize) -> Result<Client, FleetError> {
        match &self.target {
            Target::Single(c) => Ok(c.clone()),
            Target::Sentinel(s) => Ok(s.lock().await.async_get_client().await?),
            Target::Cluster(_) => self
                .seeds
                .get(seed % self.seeds.len().max(1))
                .cloned()
                .ok_or(FleetError::Down),
        }
    }

    /// Waits until the connection is dropped.
    pub async fn broken(&self) {
        self.broken.notified().await;
    }
}

/// The target as an operator wrote it, for log lines.
fn describe(t: &RedisTarget) -> String {
    let list = |a: &[RedisAddr]| {
        a.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match t {
        RedisTarget::Single(a) => a.to_string(),
        RedisTarget::Sentinel { master, sentinels } => {
            format!("master {master} via sentinels {}", list(sentinels))
        }
        RedisTarget::Cluster(seeds) => format!("cluster {}", list(seeds)),
    }
}

fn addr(a: &RedisAddr) -> ConnectionAddr {
    if a.tls {
        ConnectionAddr::TcpTls {
            host: a.host.clone(),
            port: a.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(a.host.clone(), a.port)
    }
}

fn info(a: &RedisAddr) -> Result<ConnectionInfo, FleetError> {
    addr(a).into_connection_info().map_err(FleetError::Client)
}

/// Errors after which the connection cannot be trusted: the socket is gone,
/// or the server is a replica now (a failover under it), or it is loading.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(e.code(), Some("READONLY" | "LOADING" | "MASTERDOWN"))
}
