//! One response body's encoder: gzip (flate2 on zlib-rs), Brotli or zstd,
//! fed the body a relayed piece at a time and flushed after each, so the
//! client can decode everything it was sent so far (a streamed response
//! stays streamed).
//!
//! What one costs while its response is relayed, by the libraries' own
//! sizing (docs/config.md, `[compress]`; not measured here): gzip, zlib's 32 KiB window and hash chains, about
//! 256 KiB at any level; Brotli, a ring buffer of 2^`brotli_window`
//! bytes (256 KiB at the default 18) plus its hash tables, which grow
//! with the level; zstd, a window of 2^`zstd_window` bytes (256 KiB at
//! 18) plus tables that grow with the level. The defaults keep Brotli's
//! and zstd's windows at gzip's cost instead of their own defaults'
//! 4 MiB and 2-8 MiB. Nothing is buffered beyond one piece's output.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use levee_config::{Coding, Compress};

/// A streaming encoder and the output of its last step.
pub(crate) struct Encoder {
    inner: Option<Inner>,
    coding: Coding,
    /// Frame each step's output as an HTTP/1.1 chunk.
    chunked: bool,
    out: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("coding", &self.coding)
            .field("chunked", &self.chunked)
            .finish_non_exhaustive()
    }
}

enum Inner {
    Gzip(GzEncoder<Vec<u8>>),
    // Boxed: its state is large and inline in the writer.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

/// The brotli writer's input buffer.
const BROTLI_BUFFER: usize = 4096;

impl Encoder {
    /// An encoder for `coding` at the levels and windows of `rules`;
    /// `chunked`: its output framed as HTTP/1.1 chunks.
    pub(crate) fn new(coding: Coding, rules: &Compress, chunked: bool) -> io::Result<Encoder> {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(rules.gzip_level),
            )),
            Coding::Brotli => Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                rules.brotli_level,
                rules.brotli_window,
            ))),
            Coding::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(Vec::new(), rules.zstd_level)?;
                z.window_log(rules.zstd_window)?;
                Inner::Zstd(z)
            }
        };
        Ok(Encoder {
            inner: Some(inner),
            coding,
            chunked,
            out: Vec::new(),
        })
    }

    pub(crate) fn coding(&self) -> Coding {
        self.coding
    }

    /// Compresses `data` and flushes: the bytes to send for it (framed as
    /// a chunk when `chunked`), valid until the next call. Empty input
    /// gives empty output.
    pub(crate) fn push(&mut self, data: &[u8]) -> io::Result<&[u8]> {
        self.out.clear();
        if data.is_empty() {
            return Ok(&self.out);
        }
        let produced = match self.inner.as_mut() {
            Some(Inner::Gzip(w)) => step(w, data)?,
            Some(Inner::Brotli(w)) => step(w.as_mut(), data)?,
            Some(Inner::Zstd(w)) => step(w, data)?,
            None => return Err(io::Error::other("encoder used after its end")),
        };
        frame(&mut self.out, produced, self.chunked);
        produced.clear();
        Ok(&self.out)
    }

    /// Ends the compressed stream: its last bytes (with the last chunk
    /// when `chunked`).
    pub(crate) fn finish(&mut self) -> io::Result<&[u8]> {
        self.out.clear();
        let tail = match self.inner.take() {
            Some(Inner::Gzip(w)) => w.finish()?,
            Some(Inner::Brotli(w)) => w.into_inner(),
            Some(Inner::Zstd(w)) => w.finish()?,
            None => Vec::new(),
        };
        frame(&mut self.out, &tail, self.chunked);
        if self.chunked {
            self.out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(&self.out)
    }
}

/// Writes `data` into `w` and flushes it; the writer's output so far.
fn step<'w, W: Write + HasOutput>(w: &'w mut W, data: &[u8]) -> io::Result<&'w mut Vec<u8>> {
    w.write_all(data)?;
    w.flush()?;
    Ok(w.output())
}

trait HasOutput {
    fn output(&mut self) -> &mut Vec<u8>;
}

impl HasOutput for GzEncoder<Vec<u8>> {
    fn output(&mut self) -> &mut Vec<u8> {
        self.get_mut()
    }
}

impl HasOutput for brotli::CompressorWriter<Vec<u8>> {
    fn output(&mut self) -> &mut Vec<u8> {
        self.get_mut()
    }
}

impl HasOutput for zstd::stream::write::Encoder<'static, Vec<u8>> {
    fn output(&mut self) -> &mut Vec<u8> {
        self.get_mut()
    }
}

/// `bytes` appended to `out`, as one chunk when `chunked` (none for no bytes).
fn frame(out: &mut Vec<u8>, bytes: &[u8], chunked: bool) {
    if bytes.is_empty() {
        return;
    }
    if chunked {
        out.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
    }
    out.extend_from_slice(bytes);
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
}
