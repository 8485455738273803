//! The mail front end of a listener: `protocol = "imap" | "pop3" |
//! "submission"` and its `[listener.mail]` table.

use std::path::PathBuf;
use std::time::Duration;

/// Which mail protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailProtocol {
    Imap,
    Pop3,
    /// SMTP submission (RFC 6409): AUTH before MAIL.
    Submission,
}

impl MailProtocol {
    /// The name used in the config file and in `Auth-Protocol` (`smtp` there).
    pub fn as_str(self) -> &'static str {
        match self {
            MailProtocol::Imap => "imap",
            MailProtocol::Pop3 => "pop3",
            MailProtocol::Submission => "submission",
        }
    }
}

/// A mail listener's settings (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailListener {
    pub protocol: MailProtocol,
    /// Text of the greeting after the status (`* OK <text>`); a default when `None`.
    pub greeting: Option<String>,
    pub auth: MailAuth,
    /// How long a failed login waits before it is answered (unless the auth
    /// service says `Auth-Wait`).
    pub auth_fail_delay: Duration,
    /// From accept to a logged-in session.
    pub preauth_timeout: Duration,
    /// A logged-in session with no traffic either way is closed after this.
    pub idle_timeout: Duration,
    /// Connecting to the backend.
    pub backend_connect_timeout: Duration,
    /// From connected to the backend's answer to the login, apart from the
    /// connect, since a backend may delay a wrong password (Dovecot's auth
    /// penalty, up to 15 s).
    pub backend_login_timeout: Duration,
    /// Refused commands before the session is closed.
    pub max_errors: u32,
    /// Commands before login before the session is closed.
    pub max_commands: u32,
    /// Longest command line, CRLF included. IMAP: a command's text without
    /// its literal data, which `max_literal` bounds per literal and
    /// `max_line` again for all of one command's literals together.
    pub max_line: usize,
    /// Largest IMAP literal before login.
    pub max_literal: u64,
    /// Tell the backend the client's address: IMAP `ID` with
    /// `x-originating-ip`/`x-originating-port`, POP3 `XCLIENT`.
    pub forward_client_address: bool,
    /// Start each backend connection with a PROXY protocol v2 header.
    pub backend_proxy_protocol: bool,
    /// Log in to the backend as `USER<separator>MASTER` with the master
    /// password, so the user's password never travels on (Dovecot's master users).
    pub master: Option<MasterUser>,
    /// Failed logins for one user from one client address within
    /// `auth_failure_window`, after which that user is refused from that
    /// address without asking; 0 turns it off.
    pub max_auth_failures: u32,
    /// Failed logins for one user from all addresses within the window,
    /// after which the user's logins are slowed (not refused); 0 turns it off.
    pub max_user_auth_failures: u32,
    pub auth_failure_window: Duration,
    /// Logged-in sessions of one user on this listener; 0 means no limit.
    pub max_sessions_per_user: u32,
    /// After a close request for a moved user, the longest wait for a
    /// command boundary before the session is closed regardless.
    pub move_grace: Duration,
    /// Submission: the service extensions EHLO advertises before AUTH,
    /// each a keyword of [`SMTP_EXTENSIONS`] (`"SIZE 10240000"`); `None`:
    /// those the backends offered (learned at each login), until one has.
    pub smtp_capabilities: Option<Vec<String>>,
    /// STARTTLS on a plain listener with `[listener.tls]`; `Off` there means
    /// implicit TLS (the handshake comes first).
    pub starttls: StartTls,
}

/// Whether a mail listener with TLS settings upgrades with STARTTLS (IMAP
/// `STARTTLS`, POP3 `STLS`, SMTP `STARTTLS`) instead of starting with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartTls {
    /// No STARTTLS: with `[listener.tls]` the listener is implicit TLS.
    #[default]
    Off,
    /// Offered; logins are allowed without it.
    On,
    /// Offered, and no login before it (IMAP `LOGINDISABLED`).
    Required,
}

impl StartTls {
    pub fn as_str(self) -> &'static str {
        match self {
            StartTls::Off => "off",
            StartTls::On => "on",
            StartTls::Required => "required",
        }
    }
}

/// Dovecot-style master user credentials for backend logins.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterUser {
    pub user: String,
    pub password: String,
    pub separator: String,
}

impl std::fmt::Debug for MasterUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterUser")
            .field("user", &self.user)
            .field("separator", &self.separator)
            .finish_non_exhaustive()
    }
}

/// Who says yes to a login, and where the user's mailbox is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailAuth {
    Http(AuthHttp),
    /// A file of `user backend [password-hash]` lines.
    UserMap(PathBuf),
}

/// An nginx `auth_http` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHttp {
    /// The URL as written: `http://host:port/path`.
    pub url: String,
    /// `host:port` to connect to.
    pub address: String,
    /// The `Host` header (host and port as written in the URL).
    pub host: String,
    /// Path and query; at least `/`.
    pub uri: String,
    pub timeout: Duration,
    /// Sent after the standard fields, in the order written.
    pub headers: Vec<(String, String)>,
    /// Idle connections kept per worker; 0 sends nginx's exact request and
    /// closes each connection.
    pub keepalive: usize,
    /// How long a refusal is remembered for the same user and password.
    pub negative_ttl: Duration,
}

pub const DEFAULT_MAIL_AUTH_FAIL_DELAY: Duration = Duration::from_secs(1);
pub const DEFAULT_MAIL_PREAUTH_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAIL_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_MAIL_BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A little over Dovecot's longest auth penalty (15 s) and its failure delay.
pub const DEFAULT_MAIL_BACKEND_LOGIN_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_MAIL_MAX_ERRORS: u32 = 5;
pub const DEFAULT_MAIL_MAX_COMMANDS: u32 = 50;
pub const DEFAULT_MAIL_MAX_LINE: usize = 8 * 1024;
/// IMAP before login: 64 KiB, as a client's `ID` may be 30 KB (RFC 2971
/// allows 30 pairs of up to 1,024-byte values) and Dovecot takes it.
pub const DEFAULT_IMAP_MAX_LINE: usize = 64 * 1024;
pub const DEFAULT_MAIL_MAX_LITERAL: u64 = 8 * 1024;
pub const DEFAULT_MAIL_MAX_AUTH_FAILURES: u32 = 10;
pub const DEFAULT_MAIL_MAX_USER_AUTH_FAILURES: u32 = 100;
pub const DEFAULT_MAIL_AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The SMTP extensions levee may advertise before AUTH for its backends:
/// those whose work the backend does on the relayed session. Not levee's
/// own (STARTTLS, AUTH, ENHANCEDSTATUSCODES), nor any that lets a client
/// speak as levee (XCLIENT, XFORWARD).
pub const SMTP_EXTENSIONS: [&str; 7] = [
    "PIPELINING",
    "SIZE",
    "8BITMIME",
    "SMTPUTF8",
    "CHUNKING",
    "BINARYMIME",
    "DSN",
];
pub const DEFAULT_MAIL_MOVE_GRACE: Duration = Duration::from_secs(5);
/// The longest `move_grace` accepted.
pub const MAX_MAIL_MOVE_GRACE: Duration = Duration::from_secs(3600);
pub const DEFAULT_AUTH_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_AUTH_NEGATIVE_TTL: Duration = Duration::from_secs(2);

impl MailListener {
    /// A listener of `protocol` authenticating with `auth`, every other setting at its default.
    pub fn new(protocol: MailProtocol, auth: MailAuth) -> MailListener {
        MailListener {
            protocol,
            greeting: None,
            auth,
            auth_fail_delay: DEFAULT_MAIL_AUTH_FAIL_DELAY,
            preauth_timeout: DEFAULT_MAIL_PREAUTH_TIMEOUT,
            idle_timeout: DEFAULT_MAIL_IDLE_TIMEOUT,
            backend_connect_timeout: DEFAULT_MAIL_BACKEND_CONNECT_TIMEOUT,
            backend_login_timeout: DEFAULT_MAIL_BACKEND_LOGIN_TIMEOUT,
            max_errors: DEFAULT_MAIL_MAX_ERRORS,
            max_commands: DEFAULT_MAIL_MAX_COMMANDS,
            max_line: match protocol {
                MailProtocol::Imap => DEFAULT_IMAP_MAX_LINE,
                MailProtocol::Pop3 | MailProtocol::Submission => DEFAULT_MAIL_MAX_LINE,
            },
            max_literal: DEFAULT_MAIL_MAX_LITERAL,
            forward_client_address: false,
            backend_proxy_protocol: false,
            master: None,
            max_auth_failures: DEFAULT_MAIL_MAX_AUTH_FAILURES,
            max_user_auth_failures: DEFAULT_MAIL_MAX_USER_AUTH_FAILURES,
            auth_failure_window: DEFAULT_MAIL_AUTH_FAILURE_WINDOW,
            max_sessions_per_user: 0,
            move_grace: DEFAULT_MAIL_MOVE_GRACE,
            smtp_capabilities: None,
            starttls: StartTls::Off,
        }
    }
}
