//! levee's mail front end.
//!
//! This crate holds the protocol cores, which do no I/O: the pre-login
//! command parsers for IMAP, POP3 and SMTP submission, SASL decoding, and
//! the codec of nginx's `auth_http` protocol. Each parser takes the bytes
//! read so far and answers `Incomplete`, a command and its length, or a
//! refusal that says how much input to discard, so a driver can feed it
//! whatever the network delivers (tested with every split of the input).

pub mod auth_http;
pub mod imap;
pub mod line;
pub mod pop3;
pub mod sasl;
pub mod smtp;

/// The outcome of feeding bytes to a parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// `T` and the number of bytes it took.
    Complete(T, usize),
    Incomplete,
}
