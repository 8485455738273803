//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally.
//!
//! The decoder is fed whatever bytes have arrived and reports how many of
//! them belong to the body and where the data inside them is, so the caller
//! can forward the coded bytes as they are or only the data.
//!
//! Strict where a lenient reading could differ from the receiver's
//! (docs/http1.md): whitespace after a chunk size is allowed only before a
//! `;` extension (`5 \r\n` is refused), and trailers are parsed as fields
//! (`name: value`, name a token, no control bytes), so a line such as
//! `GET /smuggled HTTP/1.1` is refused rather than passed on. Trailer
//! fields a receiver must never take from trailers (framing, routing,
//! authentication, content metadata, hop-by-hop: RFC 9110 §6.5.1) are
//! reported in `Fed::skip` for the caller to leave out.

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
    /// Whitespace after the size: only a `;ext` may follow.
    SizeWs,
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
    /// At the start of a trailer line (after the last chunk), or of the
    /// empty line that ends the body.
    Trailer,
    Done,
}

/// Most bytes allowed in one extension or trailer line, and in all trailers
/// (so a held-back partial trailer line is bounded too).
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
    /// Trailer lines (CRLF included) inside the consumed bytes that are
    /// not to be forwarded.
    pub skip: Vec<Range<usize>>,
    /// The body, trailers included, ended inside this input.
    pub done: bool,
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes as much of `input` as belongs to the body. A trailer line
    /// is consumed only once whole: when the body is not done, the bytes
    /// after `consumed` (a partial trailer line) must be fed again with
    /// what follows them.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed, ChunkError> {
        let mut fed = Fed::default();
        let mut i = 0;
        while i < input.len() {
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
                }
                State::Trailer => {
                    let (next, stop) = self.trailer_line(input, i, &mut fed)?;
                    i = next;
                    if stop {
                        break;
                    }
                }
                _ => {
                    self.framing_byte(input[i])?;
                    i += 1;
                }
            }
        }
        fed.consumed = i;
        fed.done = self.state == State::Done;
        Ok(fed)
    }

    /// One byte of a chunk's size line or of the CRLF after its data.
    #[inline]
    fn framing_byte(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size { digits } => match hex(b) {
                Some(_) if digits >= 16 => return Err(ChunkError::SizeOverflow),
                Some(d) => {
                    self.remaining = (self.remaining << 4) | u64::from(d);
                    State::Size { digits: digits + 1 }
                }
                None if digits == 0 => return Err(ChunkError::BadSize),
                None => match b {
                    b'\r' => State::SizeLf,
                    b';' => State::Extension { len: 1 },
                    b' ' | b'\t' => State::SizeWs,
                    _ => return Err(ChunkError::BadSize),
                },
            },
            // RFC 9112 §7.1.1: BWS comes before `;`, never alone.
            State::SizeWs => match b {
                b' ' | b'\t' => State::SizeWs,
                b';' => State::Extension { len: 1 },
                _ => return Err(ChunkError::BadSize),
            },
            State::Extension { len } => match b {
                b'\r' => State::SizeLf,
                b'\t' => State::Extension { len: len + 1 },
                b if b.is_ascii_control() => return Err(ChunkError::BadSize),
                _ if len >= MAX_LINE => return Err(ChunkError::LineTooLong),
                _ => State::Extension { len: len + 1 },
            },
            State::SizeLf if b != b'\n' => return Err(ChunkError::BadSize),
            State::SizeLf if self.remaining == 0 => State::Trailer,
            State::SizeLf => State::Data,
            State::DataCr if b != b'\r' => return Err(ChunkError::BadDataEnd),
            State::DataCr => State::DataLf,
            State::DataLf if b != b'\n' => return Err(ChunkError::BadDataEnd),
            State::DataLf => State::Size { digits: 0 },
            other => other,
        };
        Ok(())
    }

    /// The trailer line at `input[i..]`: where the next one starts, and
    /// whether to stop there (the line is not whole yet, so held back from
    /// `i`; or it was the empty line that ends the body).
    fn trailer_line(
        &mut self,
        input: &[u8],
        i: usize,
        fed: &mut Fed,
    ) -> Result<(usize, bool), ChunkError> {
        let rest = &input[i..];
        let Some(end) = memchr::memchr(b'\n', rest) else {
            if self.trailer_bytes + rest.len() > MAX_TRAILERS || rest.len() > MAX_LINE {
                return Err(ChunkError::LineTooLong);
            }
            return Ok((i, true));
        };
        let line = rest[..end]
            .strip_suffix(b"\r")
            .ok_or(ChunkError::BadTrailer)?;
        self.trailer_bytes += end + 1;
        if self.trailer_bytes > MAX_TRAILERS || end > MAX_LINE {
            return Err(ChunkError::LineTooLong);
        }
        if line.is_empty() {
            self.state = State::Done;
            return Ok((i + end + 1, true));
        }
        if !forwarded(trailer_name(line)?) {
            fed.skip.push(i..i + end + 1);
        }
        Ok((i + end + 1, false))
    }
}

impl Fed {
    /// Takes the trailer lines in `skip` out of `buf`, which `self` was
    /// fed from its start (a whole body buffered at once); returns how many
    /// bytes of the body are left. Allocates only when there is something
    /// to take out.
    pub fn drop_skipped(&self, buf: &mut bytes::BytesMut) -> usize {
        if self.skip.is_empty() {
            return self.consumed;
        }
        let mut kept = bytes::BytesMut::with_capacity(buf.len());
        let mut from = 0;
        for skip in &self.skip {
            kept.extend_from_slice(&buf[from..skip.start]);
            from = skip.end;
        }
        kept.extend_from_slice(&buf[from..]);
        let removed = buf.len() - kept.len();
        *buf = kept;
        self.consumed - removed
    }
}

/// The name of a trailer field line (`name: value`, RFC 9110 §5.5): a
/// token, a colon at once, and a value without control bytes but HTAB.
fn trailer_name(line: &[u8]) -> Result<&[u8], ChunkError> {
    let colon = memchr::memchr(b':', line).ok_or(ChunkError::BadTrailer)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.iter().all(|&b| token(b)) {
        return Err(ChunkError::BadTrailer);
    }
    if value.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return Err(ChunkError::BadTrailer);
    }
    Ok(name)
}

/// Whether a trailer field is passed on. Not: the fields a receiver must
/// not take from trailers (RFC 9110 §6.5.1): framing, routing,
/// authentication and content metadata, nor hop-by-hop fields, whatever a
/// receiver that merges trailers into the head would make of them.
fn forwarded(name: &[u8]) -> bool {
    const NEVER: [&[u8]; 9] = [
        b"content-length",
        b"host",
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"content-type",
        b"content-encoding",
        b"content-range",
    ];
    !crate::message::is_hop_by_hop(name) && !NEVER.iter().any(|n| n.eq_ignore_ascii_case(name))
}
