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

/// A whole request head parsed from `text`, for tests.
#[cfg(test)]
pub(crate) fn test_request(text: &str) -> crate::message::RequestHead {
    let limits = HeadLimits {
        max_request_line: 8192,
        max_header_bytes: 32768,
        max_headers: 100,
    };
    match parse_request(text.as_bytes(), 0, &limits) {
        Ok(Parsed::Complete(parts, len)) => {
            parts.into_head(bytes::Bytes::copy_from_slice(&text.as_bytes()[..len]))
        }
        other => panic!("not a request head: {other:?}"),
    }
}
