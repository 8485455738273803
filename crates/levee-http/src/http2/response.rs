//! What the request path wrote for one stream, HTTP/1.1 bytes, turned into
//! an HTTP/2 response: the head becomes HEADERS (without the fields that
//! HTTP/2 forbids, §8.2.2), the body DATA frames sent as the client's
//! window allows, so a slow client holds the upstream back instead of
//! filling levee's memory.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::{Reason, SendStream, server::SendResponse};
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::h1::chunked::ChunkedDecoder;
use crate::h1::{Parsed, parse::parse_response};
use crate::message::{Framing, ResponseHead, is_hop_by_hop};
use crate::pace::Progress;

/// Read size from the pipe: one DATA frame's worth.
const READ: usize = 16 * 1024;
/// The request path writes its own heads; this only guards against a runaway.
const MAX_HEAD: usize = 64 * 1024;

/// The stream is gone: reset by the client, or the connection closed.
#[derive(Debug)]
pub(super) struct Gone;

impl From<h2::Error> for Gone {
    fn from(_: h2::Error) -> Gone {
        Gone
    }
}

/// How long a peer may keep its flow-control window shut while levee has
/// DATA for it. Towards a client: each wait within `timeouts.client_send`
/// and within the minimum progress (`[protect] min_progress`) over the
/// whole body, as for HTTP/1. Towards an upstream: as long as it takes
/// (the other side's reads have their own timeouts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    limit: Option<Duration>,
    progress: Progress,
    /// DATA bytes the peer's window let through so far.
    sent: u64,
}

impl Window {
    pub(super) fn client(site: &crate::Site) -> Window {
        Window {
            limit: Some(site.timeouts.client_send),
            progress: Progress::new(site.pace),
            sent: 0,
        }
    }

    pub(super) fn unbounded() -> Window {
        Window {
            limit: None,
            progress: Progress::new(None),
            sent: 0,
        }
    }

    /// DATA bytes handed to the peer so far (for the access log).
    pub(super) fn sent(&self) -> u64 {
        self.sent
    }
}

/// Counts a client cut off for keeping its window shut, and resets its
/// stream; the connection's other streams go on.
pub(super) fn cut_slow(send: &mut SendStream<Bytes>) {
    let counters = levee_protect::metrics::counters();
    counters.slow_read.fetch_add(1, Ordering::Relaxed);
    send.send_reset(Reason::CANCEL);
}

/// Relays the response read from `rd` to the client. `Err(Gone)` as soon
/// as the client resets the stream or its connection ends, even while the
/// response is still awaited, so that its exchange can be stopped.
pub(super) async fn relay(
    mut rd: impl AsyncRead + Unpin,
    respond: &mut SendResponse<Bytes>,
    is_head: bool,
    window: &mut Window,
) -> Result<(), Gone> {
    let mut buf = BytesMut::with_capacity(4096);
    let head = loop {
        match parse_response(&buf, MAX_HEAD, is_head) {
            // Only levee's own 100 Continue reaches here (proxy.rs relays
            // no other interim answer to HTTP/2): pass it on, the client
            // may be waiting for it before sending its body.
            Ok(Parsed::Complete(parts, len)) if (100..200).contains(&parts.status) => {
                let _ = buf.split_to(len);
                if parts.status == 100 {
                    let mut go = http::Response::new(());
                    *go.status_mut() = StatusCode::CONTINUE;
                    respond.send_informational(go)?;
                }
                continue;
            }
            Ok(Parsed::Complete(parts, len)) => break parts.into_head(buf.split_to(len).freeze()),
            Ok(Parsed::Incomplete) => {}
            Err(_) => return reset(respond),
        }
        buf.reserve(4096);
        let read = tokio::select! {
            biased;
            read = rd.read_buf(&mut buf) => read,
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return Err(Gone),
        };
        if !matches!(read, Ok(1..)) {
            return reset(respond);
        }
    };
    let Some(response) = to_h2(&head) else {
        return reset(respond);
    };
    let empty = matches!(head.framing, Framing::None | Framing::Length(0));
    let mut send = respond.send_response(response, empty)?;
    if empty {
        return Ok(());
    }
    match body(&mut rd, &mut send, &mut buf, head.framing, None, window).await {
        Ok(()) => Ok(()),
        Err(Fault::Gone) => Err(Gone),
        Err(Fault::Broken) => {
            send.send_reset(Reason::INTERNAL_ERROR);
            Ok(())
        }
        Err(Fault::Slow) => {
            cut_slow(&mut send);
            Ok(())
        }
    }
}

fn reset(respond: &mut SendResponse<Bytes>) -> Result<(), Gone> {
    respond.send_reset(Reason::INTERNAL_ERROR);
    Ok(())
}

/// The HTTP/2 response head; `None` for a status HTTP/2 cannot carry.
fn to_h2(head: &ResponseHead) -> Option<http::Response<()>> {
    let status = StatusCode::from_u16(head.status).ok()?;
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in head.fields.iter() {
        if is_hop_by_hop(name)
            || head
                .connection_tokens
                .iter()
                .any(|t| t.eq_ignore_ascii_case(name))
            || (head.framing == Framing::Chunked && name.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    Some(response)
}

pub(super) enum Fault {
    /// The client went away.
    Gone,
    /// The request path's response broke off (an upstream failure mid-body).
    Broken,
    /// The peer kept its window shut for too long (`Window`).
    Slow,
}

impl From<Gone> for Fault {
    fn from(_: Gone) -> Fault {
        Fault::Gone
    }
}

/// Relays the body delimited by `framing`; `buf` holds what was read past
/// the head. Each read may take `read_timeout` (none from the pipe, whose
/// writer has its own); a reset of `send` meanwhile ends it (`Gone`).
pub(super) async fn body(
    rd: &mut (impl AsyncRead + Unpin),
    send: &mut SendStream<Bytes>,
    buf: &mut BytesMut,
    framing: Framing,
    read_timeout: Option<Duration>,
    window: &mut Window,
) -> Result<(), Fault> {
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    let mut chunks = (framing == Framing::Chunked).then(ChunkedDecoder::default);
    loop {
        if !buf.is_empty() {
            if let Some(decoder) = chunks.as_mut() {
                let fed = decoder.feed(buf).map_err(|_| Fault::Broken)?;
                let taken = buf.split_to(fed.consumed).freeze();
                for range in fed.data {
                    data(send, taken.slice(range), false, window).await?;
                }
                if fed.done {
                    return data(send, Bytes::new(), true, window).await;
                }
            } else {
                let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                left -= take as u64;
                data(send, buf.split_to(take).freeze(), left == 0, window).await?;
                if left == 0 {
                    return Ok(());
                }
            }
        }
        buf.reserve(READ);
        let read = async {
            match read_timeout {
                Some(limit) => tokio::time::timeout(limit, rd.read_buf(buf))
                    .await
                    .unwrap_or(Ok(0)),
                None => rd.read_buf(buf).await,
            }
        };
        let read = tokio::select! {
            biased;
            read = read => read,
            _ = poll_fn(|cx| send.poll_reset(cx)) => return Err(Fault::Gone),
        };
        match read {
            Ok(1..) => {}
            // Only a body delimited by the end of the stream may end here.
            Ok(0) if framing == Framing::UntilClose => {
                return data(send, Bytes::new(), true, window).await;
            }
            _ => return Err(Fault::Broken),
        }
    }
}

/// Sends `bytes` as the peer's window opens, within `window`.
pub(super) async fn data(
    send: &mut SendStream<Bytes>,
    mut bytes: Bytes,
    end: bool,
    window: &mut Window,
) -> Result<(), Fault> {
    if bytes.is_empty() {
        if end {
            send.send_data(bytes, true).map_err(Gone::from)?;
        }
        return Ok(());
    }
    while !bytes.is_empty() {
        send.reserve_capacity(bytes.len());
        let capacity = std::future::poll_fn(|cx| send.poll_capacity(cx));
        let (granted, waited) = match window.limit {
            None => (capacity.await, Duration::ZERO),
            Some(limit) => {
                let wait = window.progress.wait(limit).ok_or(Fault::Slow)?;
                let started = Instant::now();
                match tokio::time::timeout(wait, capacity).await {
                    Ok(granted) => (granted, started.elapsed()),
                    Err(_) => return Err(Fault::Slow),
                }
            }
        };
        let granted = match granted {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(Gone::from(e).into()),
            None => return Err(Fault::Gone),
        };
        window.progress.record(waited, granted);
        if granted == 0 {
            continue;
        }
        let part = bytes.split_to(granted.min(bytes.len()));
        let n = part.len() as u64;
        send.send_data(part, end && bytes.is_empty())
            .map_err(Gone::from)?;
        window.sent += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8]) -> ResponseHead {
        match parse_response(raw, MAX_HEAD, false) {
            Ok(Parsed::Complete(p, n)) => p.into_head(Bytes::copy_from_slice(&raw[..n])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_specific_fields_do_not_reach_http2() {
        let h = head(
            b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\
              Transfer-Encoding: chunked\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\n\
              Set-Cookie: b=2\r\n\r\n",
        );
        let r = to_h2(&h).unwrap();
        assert_eq!(r.status(), 200);
        let names: Vec<&str> = r.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["set-cookie"]);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    }
}
