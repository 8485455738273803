//! levee's mail front end.
//!
//! This crate holds the protocol cores, which do no I/O: the pre-login
//! command parsers for IMAP, POP3 and SMTP submission, SASL decoding, and
//! the codec of nginx's `auth_http` protocol. Each parser takes the bytes
//! read so far and answers `Incomplete`, a command and its length, or a
//! refusal that says how much input to discard, so a driver can feed it
//! whatever the network delivers (tested with every split of the input).
//!
//! Around them, with I/O: [`session`] drives a client from greeting to
//! login, [`auth`] decides the login (`auth_http` or a user map),
//! [`backend`] logs in to the chosen backend, and [`splice`] relays the
//! logged-in session without holding buffers while it idles. [`Frontend`]
//! is a mail listener's state, shared by the workers.

pub mod auth;
pub mod auth_http;
pub mod backend;
pub mod front;
pub mod guard;
pub mod imap;
pub mod kick;
pub mod line;
pub mod metrics;
pub mod pop3;
pub mod proxy_protocol;
pub mod sasl;
pub mod session;
pub mod shutdown;
pub mod smtp;
pub mod splice;
pub mod x509;

pub use front::Frontend;
pub use session::MailTls;

/// The outcome of feeding bytes to a parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// `T` and the number of bytes it took.
    Complete(T, usize),
    Incomplete,
}
