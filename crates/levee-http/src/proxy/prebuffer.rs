//! The start of a request body, read before any server is contacted.

use crate::conn::Client;
use crate::h1::ChunkedDecoder;
use crate::message::{Framing, RequestHead};
use crate::site::Site;
use crate::{pace, respond};

/// Body bytes read before a server is chosen.
const PREBUFFER: usize = 16 * 1024;

/// Reads the start of the request body before any upstream is contacted (as
/// nginx's request buffering does, but bounded): malformed chunked framing
/// and oversized chunked bodies are refused before a server sees the request,
/// and a small body goes out with the head, so it can be sent again on a
/// fresh connection. Answers `100 Continue` itself when the client waits for
/// it. Returns the length of the body when all of it is buffered; `Err`
/// carries the status for the client (`None`: the client is gone).
pub(super) async fn prebuffer(
    client: &mut Client,
    req: &RequestHead,
    site: &Site,
    limit: Option<u64>,
) -> Result<Option<usize>, Option<u16>> {
    let want = match req.framing {
        Framing::None | Framing::UntilClose => return Ok(Some(0)),
        Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX).min(PREBUFFER),
        Framing::Chunked => PREBUFFER,
    };
    let mut continued = false;
    loop {
        match req.framing {
            Framing::Length(n) if client.buf.len() as u64 >= n => return Ok(Some(n as usize)),
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let fed = decoder.feed(&client.buf).map_err(|_| Some(400))?;
                if limit.is_some_and(|max| decoder.data_len > max) {
                    return Err(Some(413));
                }
                if fed.done {
                    // Trailer fields never forwarded (h1/chunked.rs) go.
                    return Ok(Some(fed.drop_skipped(&mut client.buf)));
                }
            }
            _ => {}
        }
        if client.buf.len() >= want {
            return Ok(None);
        }
        if req.expect_continue && !continued && client.buf.is_empty() {
            continued = true;
            let go = b"HTTP/1.1 100 Continue\r\n\r\n";
            if !respond::send(&mut client.stream, go, site.timeouts.client_send).await {
                return Err(None);
            }
        }
        client.buf.reserve(PREBUFFER);
        match pace::read_buf(
            &mut client.stream,
            &mut client.buf,
            site.timeouts.client_body,
        )
        .await
        {
            Err(pace::PaceError::TimedOut) => return Err(Some(408)),
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
    }
}
