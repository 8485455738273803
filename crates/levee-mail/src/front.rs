//! A mail listener's shared state: its settings and user map (swapped on
//! reload) and its negative auth cache (kept across reloads, shared by a
//! fleet: `front/negative.rs`). One
//! [`Frontend`] serves every worker; sessions take a snapshot of the
//! settings when they start, so a reload never changes an open session.

mod negative;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use levee_config::model::{MailAuth, MailListener, MailProtocol};
use tokio::net::TcpStream;

use crate::auth::Attempt;
use crate::auth::user_map::UserMap;
pub use crate::auth::user_map::UserMapError;
use crate::guard::{Guard, Shared};
use crate::smtp::Extensions;

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
    /// Logins the auth service refused, for its `negative_ttl`.
    negative: negative::NegativeCache,
    /// Failure counters (shared by the fleet, if any) and per-user
    /// session counts.
    pub guard: Guard<Shared>,
    /// Submission: the safe extensions every backend offered at a login
    /// since the start or the last reload ([`Frontend::smtp_extensions`]).
    learned_smtp: Mutex<Option<Arc<Extensions>>>,
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
        Ok(Frontend::new_with(addr, FrontState::load(config)?))
    }

    /// A listener's state from settings already loaded.
    pub fn new_with(addr: SocketAddr, state: FrontState) -> Arc<Frontend> {
        Arc::new(Frontend {
            addr,
            state: ArcSwap::from_pointee(state),
            negative: negative::NegativeCache::default(),
            guard: Guard::default(),
            learned_smtp: Mutex::new(None),
        })
    }

    /// New settings for new sessions (reload): [`FrontState::load`] reads
    /// the user map again, then `swap` puts it in place, so a reload can
    /// load every listener's state before it changes any.
    pub fn swap(&self, state: FrontState) {
        self.state.store(Arc::new(state));
        // Backends may have changed with it: learn them again.
        *self
            .learned_smtp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// What a submission EHLO offers before AUTH, besides levee's own:
    /// `smtp_capabilities` if set; else what every backend offered at a
    /// login (the same for all clients, whichever backend theirs will be);
    /// before any login, PIPELINING and 8BITMIME.
    pub fn smtp_extensions(&self, config: &MailListener) -> Arc<Extensions> {
        if let Some(caps) = &config.smtp_capabilities {
            return Arc::new(Extensions::from_keywords(caps.iter().map(|c| c.as_bytes())));
        }
        let learned = self
            .learned_smtp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        learned.clone().unwrap_or_else(|| {
            Arc::new(Extensions::from_keywords(
                crate::smtp::DEFAULT_EXTENSIONS.map(str::as_bytes),
            ))
        })
    }

    /// Remembers what a backend's EHLO offered, narrowing what is known.
    pub(crate) fn learn_smtp(&self, offered: &Extensions) {
        let mut learned = self
            .learned_smtp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let next = match learned.as_deref() {
            Some(known) if known == offered => return,
            Some(known) => known.common(offered),
            None => offered.clone(),
        };
        *learned = Some(Arc::new(next));
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

    /// Whether this login was refused within the negative TTL (`ttl`,
    /// zero when the listener has none), here or on another member.
    pub(crate) async fn recently_refused(
        &self,
        attempt: &Attempt<'_>,
        now: Instant,
        ttl: Duration,
    ) -> bool {
        self.negative.refused(attempt, now, ttl).await
    }

    pub(crate) fn remember_refusal(&self, attempt: &Attempt<'_>, now: Instant, ttl: Duration) {
        self.negative.remember(attempt, now, ttl);
    }
}

#[cfg(test)]
mod tests {
    use levee_config::model::{MailAuth, MailListener, MailProtocol};

    use super::{Extensions, FrontState, Frontend};

    fn lines(e: &Extensions) -> String {
        let mut out = Vec::new();
        e.write_ehlo_lines(&mut out);
        String::from_utf8_lossy(&out)
            .replace("250-", "")
            .replace("\r\n", " ")
    }

    /// Before AUTH, a submission EHLO offers the configured list, or what
    /// every backend offered at a login since the last reload.
    #[test]
    fn ehlo_extensions_are_configured_or_learned_from_backends() {
        let mut config =
            MailListener::new(MailProtocol::Submission, MailAuth::UserMap("/u".into()));
        let front = Frontend::new_with(
            "127.0.0.1:587".parse().expect("addr"),
            FrontState {
                config: config.clone(),
                users: None,
            },
        );
        assert_eq!(
            lines(&front.smtp_extensions(&config)),
            "PIPELINING 8BITMIME "
        );
        let postfix = Extensions::from_keywords([
            &b"PIPELINING"[..],
            b"SIZE 10240000",
            b"8BITMIME",
            b"SMTPUTF8",
            b"CHUNKING",
        ]);
        front.learn_smtp(&postfix);
        assert_eq!(
            lines(&front.smtp_extensions(&config)),
            "PIPELINING SIZE 10240000 8BITMIME SMTPUTF8 CHUNKING "
        );
        // A backend that offers less narrows what every client is told.
        front.learn_smtp(&Extensions::from_keywords([&b"SIZE 5000"[..], b"8BITMIME"]));
        assert_eq!(
            lines(&front.smtp_extensions(&config)),
            "SIZE 5000 8BITMIME "
        );
        // Configured: exactly that. A reload learns again.
        config.smtp_capabilities = Some(vec!["SIZE 1000".to_owned(), "DSN".to_owned()]);
        assert_eq!(lines(&front.smtp_extensions(&config)), "SIZE 1000 DSN ");
        config.smtp_capabilities = None;
        front.swap(FrontState {
            config: config.clone(),
            users: None,
        });
        assert_eq!(
            lines(&front.smtp_extensions(&config)),
            "PIPELINING 8BITMIME "
        );
    }
}
