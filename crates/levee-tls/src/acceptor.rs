//! A listener's TLS acceptor: the current server config, swapped whole on
//! reload so handshakes in progress and open connections keep the one they
//! started with.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::ProducesTickets;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::load::Loaded;
use crate::{Settings, TlsError, auto, challenge, load};

pub use tokio_rustls::server::TlsStream;

/// What the current config was built from, to tell when it is stale.
#[derive(Debug)]
struct Source {
    settings: Settings,
    /// Each file's modification time when last loaded.
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

fn stamps(settings: &Settings) -> Vec<(PathBuf, Option<SystemTime>)> {
    settings
        .files()
        .into_iter()
        .map(|p| (p.to_owned(), modified(p)))
        .collect()
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Accepts TLS connections with a config that can be replaced while running.
pub struct Acceptor {
    config: ArcSwap<Loaded>,
    /// Rotates its keys itself (every few hours); kept across reloads.
    ticketer: Arc<dyn ProducesTickets>,
    source: Mutex<Source>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Loads every file in `settings`; fails naming the first bad one.
    pub fn new(settings: Settings) -> Result<Acceptor, TlsError> {
        let ticketer = rustls::crypto::ring::Ticketer::new()?;
        let config = load::server_config(&settings, &ticketer)?;
        Ok(Acceptor {
            config: ArcSwap::from_pointee(config),
            ticketer,
            source: Mutex::new(Source {
                stamps: stamps(&settings),
                settings,
            }),
        })
    }

    /// Checks `settings` the way [`Acceptor::new`] would, without keeping
    /// anything: for `levee check`.
    pub fn check(settings: &Settings) -> Result<(), TlsError> {
        let ticketer = rustls::crypto::ring::Ticketer::new()?;
        load::server_config(settings, &ticketer).map(drop)
    }

    /// Runs the TLS handshake on `io`. The caller bounds it with a timeout.
    pub async fn accept<IO>(&self, io: IO) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        // One reference count per handshake with file certificates, as
        // before `auto` existed (`load_full` and a clone of the config would
        // take two); the guard is not held across the handshake.
        let (config, auto) = {
            let loaded = self.config.load();
            (loaded.config.clone(), loaded.auto.clone())
        };
        let done = match auto {
            None => tokio_rustls::TlsAcceptor::from(config).accept(io).await,
            Some(resolver) => accept_auto(&config, &resolver, io).await,
        };
        // One relaxed add per handshake, for handshakes/s on the dashboard.
        let counter = match &done {
            Ok(_) => &crate::expiry::HANDSHAKES,
            Err(_) => &crate::expiry::HANDSHAKE_FAILURES,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        done
    }

    /// Replaces the settings (on `levee reload`) and reloads every file.
    /// On error the old config stays in use and the new settings are not kept.
    pub fn replace(&self, settings: Settings) -> Result<(), TlsError> {
        let config = load::server_config(&settings, &self.ticketer)?;
        self.config.store(Arc::new(config));
        *self.source() = Source {
            stamps: stamps(&settings),
            settings,
        };
        Ok(())
    }

    /// Reloads when a file changed since it was last loaded. `Ok(true)` when
    /// it reloaded. A failed reload keeps the old config and is retried on
    /// the next call only if a file changes again.
    pub fn refresh(&self) -> Result<bool, TlsError> {
        let mut source = self.source();
        let now = stamps(&source.settings);
        if now == source.stamps {
            return Ok(false);
        }
        source.stamps = now;
        let config = load::server_config(&source.settings, &self.ticketer)?;
        self.config.store(Arc::new(config));
        Ok(true)
    }

    fn source(&self) -> std::sync::MutexGuard<'_, Source> {
        // A panic elsewhere while holding it left valid data: use it.
        self.source.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An `auto` listener's handshake: the ClientHello is read first, so that
/// a TLS-ALPN-01 validation gets its challenge certificate (and nothing
/// else: the connection ends after the handshake, RFC 8737 §3), and a name
/// with no certificate can wait for one on demand. Costs a second config
/// lookup per handshake over the plain path; only `auto` listeners take it.
async fn accept_auto<IO>(
    config: &Arc<ServerConfig>,
    resolver: &auto::Resolver,
    io: IO,
) -> std::io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
    let hello = start.client_hello();
    let name = hello.server_name().map(str::to_owned);
    if challenge::wants_tls_alpn01(hello.alpn()) {
        let cert = name
            .as_deref()
            .and_then(challenge::tls_alpn01)
            .ok_or_else(|| {
                std::io::Error::other("TLS-ALPN-01 handshake for a name levee is not validating")
            })?;
        let config = load::challenge_config(cert).map_err(std::io::Error::other)?;
        let mut tls = start.into_stream(config).await?;
        // The validation is the handshake itself; nothing is served over it.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        return Err(std::io::Error::other("TLS-ALPN-01 challenge answered"));
    }
    if let Some(name) = name
        && !resolver.has(&name)
        && let Some(on_demand) = auto::on_demand()
    {
        // Refused or failed: the handshake goes on and fails for want of a
        // certificate, or gets the listener's default one.
        on_demand.obtain(name).await;
    }
    start.into_stream(config.clone()).await
}
