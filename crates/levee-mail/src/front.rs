//! A mail listener's shared state: its settings and user map (swapped on
//! reload) and its negative auth cache (kept across reloads). One
//! [`Frontend`] serves every worker; sessions take a snapshot of the
//! settings when they start, so a reload never changes an open session.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use levee_config::model::{MailAuth, MailListener, MailProtocol};
use tokio::net::TcpStream;

use crate::auth::Attempt;
use crate::auth::user_map::UserMap;
pub use crate::auth::user_map::UserMapError;
use crate::guard::Guard;

/// Most refusals remembered at once; past it expired ones are dropped, then all.
const NEGATIVE_CACHE_MAX: usize = 10_000;

/// What a session reads: the listener's settings when it started.
#[derive(Debug)]
pub struct FrontState {
    pub config: MailListener,
    /// Loaded when `auth` is `user_map`.
    pub users: Option<UserMap>,
}

#[derive(Debug)]
pub struct Frontend {
    pub addr: SocketAddr,
    state: ArcSwap<FrontState>,
    /// Hashes of refused (protocol, user, password), with when they expire.
    negative: Mutex<HashMap<u64, Instant>>,
    hasher: RandomState,
    /// Failure counters and per-user session counts.
    pub guard: Guard,
}

impl FrontState {
    pub fn load(config: &MailListener) -> Result<FrontState, UserMapError> {
        let users = match &config.auth {
            MailAuth::UserMap(path) => {
                let users = UserMap::load(path)?;
                // With a master user the backend no longer checks passwords.
                if config.master.is_some() && !users.all_hashed() {
                    return Err(UserMapError::Unhashed(path.clone()));
                }
                Some(users)
            }
            MailAuth::Http(_) => None,
        };
        Ok(FrontState {
            config: config.clone(),
            users,
        })
    }
}

impl Frontend {
    /// Reads the user map, if any; an unreadable or malformed one is an error.
    pub fn new(addr: SocketAddr, config: &MailListener) -> Result<Arc<Frontend>, UserMapError> {
        Ok(Arc::new(Frontend {
            addr,
            state: ArcSwap::from_pointee(FrontState::load(config)?),
            negative: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
            guard: Guard::default(),
        }))
    }

    /// New settings for new sessions (reload): [`FrontState::load`] reads
    /// the user map again, then `swap` puts it in place, so a reload can
    /// load every listener's state before it changes any.
    pub fn swap(&self, state: FrontState) {
        self.state.store(Arc::new(state));
    }

    pub fn protocol(&self) -> MailProtocol {
        self.state.load().config.protocol
    }

    pub fn state(&self) -> Arc<FrontState> {
        self.state.load_full()
    }

    /// What a client over a connection limit is told before it is closed.
    pub fn busy_reply(&self) -> &'static [u8] {
        match self.protocol() {
            MailProtocol::Imap => b"* BYE [UNAVAILABLE] Too many connections\r\n",
            MailProtocol::Pop3 => b"-ERR [SYS/TEMP] Too many connections\r\n",
            MailProtocol::Submission => b"421 4.7.0 Too many connections\r\n",
        }
    }

    /// Serves one accepted connection until it closes; `permit` (its place in
    /// the connection counts) is held as long.
    /// `tls` is the listener's TLS, if it has `[listener.tls]`: implicit
    /// TLS, or what STARTTLS uses (`starttls`).
    pub async fn serve<P: Send + 'static>(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        permit: P,
        tls: Option<crate::session::MailTls>,
    ) {
        let _ = stream.set_nodelay(true);
        crate::session::run(self, stream, peer, tls).await;
        drop(permit);
    }

    /// The auth service may answer on TLS facts (`Auth-SSL*`), so a login
    /// refused in the clear or with another client certificate is another key.
    fn key(&self, attempt: &Attempt<'_>) -> u64 {
        let c = attempt.credentials;
        let tls = attempt
            .ssl
            .map(|s| (s.verify.as_str(), s.fingerprint.as_deref()));
        self.hasher
            .hash_one((attempt.protocol.as_str(), &c.user, &c.pass, tls))
    }

    /// Whether this login was refused within the negative TTL.
    pub(crate) fn recently_refused(&self, attempt: &Attempt<'_>, now: Instant) -> bool {
        let key = self.key(attempt);
        let Ok(cache) = self.negative.lock() else {
            return false;
        };
        cache.get(&key).is_some_and(|&until| until > now)
    }

    pub(crate) fn remember_refusal(&self, attempt: &Attempt<'_>, until: Instant) {
        let key = self.key(attempt);
        let Ok(mut cache) = self.negative.lock() else {
            return;
        };
        if cache.len() >= NEGATIVE_CACHE_MAX {
            let now = Instant::now();
            cache.retain(|_, &mut t| t > now);
            if cache.len() >= NEGATIVE_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, until);
    }
}
