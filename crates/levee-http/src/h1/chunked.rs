//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally.
//!
//! The decoder is fed whatever bytes have arrived and reports how many of
//! them belong to the body and where the data inside them is, so the caller
//! can forward the coded bytes as they are (keeping trailers) or only the data.

use std::ops::Range;

use crate::normal::hex;

/// Why a chunked body is refused (400 from a client, 502 from an upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size")]
    BadSize,
    #[error("chunk size too large")]
    SizeOverflow,
    #[error("missing CRLF after chunk data")]
    BadDataEnd,
    #[error("chunk extension or trailer line too long")]
    LineTooLong,
    #[error("malformed trailer field")]
    BadTrailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        digits: u8,
    },
    /// After the size: optional `;ext` up to CRLF.
    Extension {
        len: usize,
    },
    /// Expecting the LF of the size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Expecting CR then LF after chunk data.
    DataCr,
    DataLf,
    /// Reading a trailer line (after the last chunk); `len` counts its bytes.
    Trailer {
        len: usize,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// Most bytes allowed in one extension or trailer line, and in all trailers.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// Incremental chunked decoder.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    remaining: u64,
    trailer_bytes: usize,
    /// Data bytes seen so far (for body size limits).
    pub data_len: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            trailer_bytes: 0,
            data_len: 0,
        }
    }
}

/// What one call of [`ChunkedDecoder::feed`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to the body (all of it unless `done`).
    pub consumed: usize,
    /// Ranges of chunk data inside the consumed bytes.
    pub data: Vec<Range<usize>>,
    /// The body, trailers included, ended inside this input.
    pub done: bool,
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes as much of `input` as belongs to the body.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed, ChunkError> {
        let mut fed = Fed::default();
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => break,
                State::Data => {
                    let take = (input.len() - i)
                        .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                    fed.data.push(i..i + take);
                    self.remaining -= take as u64;
                    self.data_len += take as u64;
                    i += take;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size { digits } => match hex(b) {
                    Some(d) => {
                        if digits >= 16 {
                            return Err(ChunkError::SizeOverflow);
                        }
                        self.remaining = (self.remaining << 4) | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    }
                    None if digits == 0 => return Err(ChunkError::BadSize),
                    None => match b {
                        b'\r' => self.state = State::SizeLf,
                        b';' | b' ' | b'\t' => self.state = State::Extension { len: 1 },
                        _ => return Err(ChunkError::BadSize),
                    },
                },
                State::Extension { len } => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' | 0 => return Err(ChunkError::BadSize),
                    _ if len >= MAX_LINE => return Err(ChunkError::LineTooLong),
                    _ => self.state = State::Extension { len: len + 1 },
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadSize);
                    }
                    self.state = if self.remaining == 0 {
                        State::Trailer { len: 0 }
                    } else {
                        State::Data
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::BadDataEnd);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadDataEnd);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::Trailer { len } => {
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_TRAILERS || len >= MAX_LINE {
                        return Err(ChunkError::LineTooLong);
                    }
                    match b {
                        b'\r' => self.state = State::TrailerLf { empty: len == 0 },
                        b'\n' | 0 => return Err(ChunkError::BadTrailer),
                        b' ' | b'\t' if len == 0 => return Err(ChunkError::BadTrailer),
                        _ => self.state = State::Trailer { len: len + 1 },
                    }
                }
                State::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(ChunkError::BadTrailer);
                    }
                    if empty {
                        self.state = State::Done;
                        i += 1;
                        fed.done = true;
                        break;
                    }
                    self.state = State::Trailer { len: 0 };
                }
            }
            i += 1;
        }
        fed.consumed = i;
        fed.done = self.state == State::Done;
        Ok(fed)
    }
}
