//! Copies a byte range of a file to a socket.
//!
//! On Linux this is `sendfile(2)`: the bytes go from the page cache to the
//! socket without passing through user space. The socket is non-blocking, so
//! a full send buffer shows up as `EAGAIN`; we then park on tokio's
//! writability and retry. Reading the file itself is not asynchronous: a page
//! cache miss stalls this worker for one disk read, as nginx without `aio`.
//! Where `sendfile` does not apply (another OS, or a file system that refuses
//! it with `EINVAL`/`ENOSYS`) the range is copied with `pread` + `write`.
//! Waits for the client obey the exchange's minimum progress (`pace.rs`).
//! Over TLS the bytes must be encrypted in user space, so [`write_range`]
//! reads and writes through the TLS stream instead.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use tokio::net::TcpStream;

/// Bytes handed to one `sendfile` call. Large enough that a fast socket
/// needs few syscalls, and below Linux's 2 GiB per-call cap.
const SENDFILE_CHUNK: u64 = 1 << 30;

/// Buffer for the read-and-write fallback.
const COPY_BUFFER: usize = 64 * 1024;

/// Sends `len` bytes of `file` starting at `start` on `stream`, returning the
/// number of bytes sent, which is `len` on success.
///
/// Does not move `file`'s cursor, so one `File` can serve several ranges.
/// A file that turns out shorter than `start + len` (truncated after
/// `resolve` measured it) is `UnexpectedEof`. After any error the response is
/// incomplete and the caller must close the connection.
pub(crate) async fn send_range(
    stream: &TcpStream,
    file: &File,
    start: u64,
    len: u64,
) -> io::Result<u64> {
    #[cfg(target_os = "linux")]
    let sent = match sendfile_range(stream, file, start, len).await? {
        Sendfile::Complete(sent) => return Ok(sent),
        Sendfile::Unsupported { sent } => sent,
    };
    #[cfg(not(target_os = "linux"))]
    let sent = 0;
    let rest = copy_range(stream, file, start.saturating_add(sent), len - sent).await?;
    Ok(sent + rest)
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
enum Sendfile {
    Complete(u64),
    /// The file system refused `sendfile` after `sent` bytes went out.
    Unsupported {
        sent: u64,
    },
}

#[cfg(target_os = "linux")]
async fn sendfile_range(
    stream: &TcpStream,
    file: &File,
    start: u64,
    len: u64,
) -> io::Result<Sendfile> {
    let mut offset = start;
    let end = start.saturating_add(len);
    let mut last = 0;
    while offset < end {
        let chunk = usize::try_from((end - offset).min(SENDFILE_CHUNK)).unwrap_or(usize::MAX);
        crate::pace::writable(stream, last).await?;
        let before = offset;
        // `sendfile` advances `offset` by what it sent.
        let attempt = stream.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut offset), chunk).map_err(io::Error::from)
        });
        match attempt {
            Ok(0) => return Err(truncated()),
            Ok(_) => last = usize::try_from(offset - before).unwrap_or(usize::MAX),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => last = 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => last = 0,
            Err(e) if is_unsupported(&e) => {
                return Ok(Sendfile::Unsupported {
                    sent: offset - start,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Sendfile::Complete(offset - start))
}

#[cfg(target_os = "linux")]
fn is_unsupported(e: &io::Error) -> bool {
    let raw = e.raw_os_error();
    raw == Some(rustix::io::Errno::INVAL.raw_os_error())
        || raw == Some(rustix::io::Errno::NOSYS.raw_os_error())
}

async fn copy_range(stream: &TcpStream, file: &File, start: u64, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUFFER.min(usize::try_from(len).unwrap_or(usize::MAX))];
    let mut sent = 0u64;
    while sent < len {
        let mut pending = next_piece(file, &mut buf, start, sent, len)?;
        let read = pending.len();
        let mut last = 0;
        while !pending.is_empty() {
            crate::pace::writable(stream, last).await?;
            match stream.try_write(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    last = n;
                    pending = pending.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => last = 0,
                Err(e) => return Err(e),
            }
        }
        sent += read as u64;
    }
    Ok(sent)
}

/// Sends `len` bytes of `file` from `start` through `stream` (a TLS
/// client, where `sendfile` cannot apply), each write within `limit`.
pub(crate) async fn write_range(
    stream: &mut impl crate::stream::Socket,
    file: &File,
    start: u64,
    len: u64,
    limit: std::time::Duration,
) -> io::Result<u64> {
    // Below TLS's 16 KB record size times a few: rustls seals what it is
    // given in records of its own.
    let mut buf = vec![0u8; COPY_BUFFER.min(usize::try_from(len).unwrap_or(usize::MAX))];
    let mut sent = 0u64;
    while sent < len {
        let chunk = next_piece(file, &mut buf, start, sent, len)?;
        let read = chunk.len();
        crate::pace::write_all(stream, chunk, limit)
            .await
            .map_err(|e| match e {
                crate::pace::PaceError::TimedOut => io::Error::from(io::ErrorKind::TimedOut),
                crate::pace::PaceError::Io(e) => e,
            })?;
        sent += read as u64;
    }
    Ok(sent)
}

/// Reads the part of the range that follows the `sent` bytes, as much as
/// `buf` holds. A file that ends early is an error.
fn next_piece<'b>(
    file: &File,
    buf: &'b mut [u8],
    start: u64,
    sent: u64,
    len: u64,
) -> io::Result<&'b [u8]> {
    let want = usize::try_from(len - sent).map_or(buf.len(), |rest| rest.min(buf.len()));
    let window = buf.get_mut(..want).unwrap_or_default();
    let read = file.read_at(window, start.saturating_add(sent))?;
    if read == 0 {
        return Err(truncated());
    }
    Ok(window.get(..read).unwrap_or_default())
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")
}

#[cfg(test)]
mod tests;
