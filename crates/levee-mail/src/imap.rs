//! IMAP before login: the commands a client may send until it is
//! authenticated (RFC 9051 / RFC 3501), parsed without I/O.

pub mod command;

#[cfg(test)]
mod tests;

pub use command::{Command, Discard, ImapError, Limits, Next, Refusal, Tagged, parse};
