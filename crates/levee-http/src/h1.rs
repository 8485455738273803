//! HTTP/1.x wire format: head parsing, chunked decoding and head writing.
//!
//! Nothing here does I/O. Parsers take the bytes read so far and answer
//! `Incomplete`, a parsed item and its length, or an error that names the
//! status the client gets.

pub mod chunked;
pub mod head;
pub mod parse;
pub mod write;

#[cfg(test)]
mod tests;

pub use chunked::{ChunkError, ChunkedDecoder};
pub use parse::{HeadError, HeadLimits, Parsed, parse_request, parse_response};
