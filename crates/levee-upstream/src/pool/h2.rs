//! Shared HTTP/2 connections to servers of HTTP/2 upstreams
//! (`protocol = "h2c" | "h2"`), kept per worker.
//!
//! One connection per server and worker carries every stream to that
//! server; a second one opens only while the first is at the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`. Taking a connection costs no lock. Each connection's
//! `h2` state is driven by a task of its own ([`drive`]), which closes it
//! once no stream has used it for the group's `keepalive_timeout`, and
//! marks it closed when the peer sent GOAWAY or the socket failed, so it is
//! never handed out again.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ::h2::client::{Connection, SendRequest};
use bytes::Bytes;
use tokio::time::timeout;

use crate::AddrMap;
use crate::connect::{Dest, connect};
use crate::error::Fault;
use crate::stream::UpstreamStream;

/// Windows levee offers a server: the same per stream as the h2 crate's
/// default, larger per connection since many streams share it.
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// What the pool and the streams of one connection share with its task.
#[derive(Debug, Default)]
struct Shared {
    /// Streams open on the connection.
    open: AtomicUsize,
    /// A stream started since the idle clock last looked.
    used: AtomicBool,
    /// The connection ended (GOAWAY, error, idle): hand it out no more.
    closed: AtomicBool,
}

struct Entry {
    send: SendRequest<Bytes>,
    shared: Arc<Shared>,
}

/// A server's address, and whether its connections speak TLS: a reload
/// may change an upstream's protocol while its connections live.
type Key = (SocketAddr, bool);

thread_local! {
    static CONNS: RefCell<AddrMap<Key, Vec<Entry>>> = RefCell::default();
}

/// A stream's hold on its connection: counts it open until dropped.
#[derive(Debug)]
pub struct Held(Arc<Shared>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Held {
    /// The connection turned out unusable (a refused new stream): do not
    /// hand it out again.
    pub fn discard(&self) {
        self.0.closed.store(true, Ordering::Release);
    }
}

/// A connection ready for one more stream.
#[derive(Debug)]
pub struct Checkout {
    pub send: SendRequest<Bytes>,
    pub held: Held,
    /// It was already open (so a failure to start the stream may be its
    /// staleness, not the server's).
    pub reused: bool,
}

fn hold(entry: &Entry) -> Held {
    entry.shared.open.fetch_add(1, Ordering::AcqRel);
    entry.shared.used.store(true, Ordering::Release);
    Held(entry.shared.clone())
}

/// An open connection for `key` with room for another stream, if any.
fn take(key: Key) -> Option<Checkout> {
    CONNS.with(|conns| {
        let mut conns = conns.borrow_mut();
        let list = conns.get_mut(&key)?;
        list.retain(|e| !e.shared.closed.load(Ordering::Acquire));
        let entry = list
            .iter()
            .find(|e| e.shared.open.load(Ordering::Acquire) < e.send.current_max_send_streams())?;
        Some(Checkout {
            send: entry.send.clone(),
            held: hold(entry),
            reused: true,
        })
    })
}

/// A connection to `dest` for one more stream: a shared one with room
/// (unless `fresh_only`), else a new one (TCP, TLS with ALPN `h2`, the
/// HTTP/2 preface and SETTINGS), within the connect timeout.
pub async fn checkout(
    dest: &Dest<'_>,
    fresh_only: bool,
    connect_timeout: Duration,
    idle: Duration,
) -> Result<Checkout, Fault> {
    let key = (dest.addr, dest.tls.is_some());
    if !fresh_only && let Some(c) = take(key) {
        return Ok(c);
    }
    let stream = connect(dest.addr, dest.tls, connect_timeout).await?;
    if let UpstreamStream::Tls(tls) = &stream
        && tls.get_ref().1.alpn_protocol() != Some(b"h2")
    {
        return Err(Fault::Connect(std::io::Error::other(
            "the server did not agree on ALPN h2",
        )));
    }
    let handshake = ::h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        // Requests carry no server push.
        .enable_push(false)
        .handshake::<_, Bytes>(stream);
    let (send, conn) = match timeout(connect_timeout, handshake).await {
        Err(_) => return Err(Fault::ConnectTimeout),
        Ok(Err(e)) => return Err(Fault::Connect(std::io::Error::other(e))),
        Ok(Ok(pair)) => pair,
    };
    let shared = Arc::new(Shared::default());
    tokio::spawn(drive(conn, shared.clone(), idle));
    let entry = Entry { send, shared };
    let held = hold(&entry);
    let send = entry.send.clone();
    CONNS.with(|conns| conns.borrow_mut().entry(key).or_default().push(entry));
    Ok(Checkout {
        send,
        held,
        reused: false,
    })
}

/// Runs a connection's `h2` state until the peer ends it or it has been
/// idle (no open stream, none started) for a whole `idle` period; dropping
/// the connection then closes the socket.
async fn drive(mut conn: Connection<UpstreamStream, Bytes>, shared: Arc<Shared>, idle: Duration) {
    loop {
        tokio::select! {
            r = &mut conn => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP/2 upstream connection ended");
                }
                break;
            }
            () = tokio::time::sleep(idle) => {
                let quiet = shared.open.load(Ordering::Acquire) == 0
                    && !shared.used.swap(false, Ordering::AcqRel);
                if quiet {
                    break;
                }
            }
        }
    }
    shared.closed.store(true, Ordering::Release);
    // The task runs on the worker that owns the list: forget the entry.
    CONNS.with(|conns| {
        let mut conns = conns.borrow_mut();
        for list in conns.values_mut() {
            list.retain(|e| !Arc::ptr_eq(&e.shared, &shared));
        }
        conns.retain(|_, list| !list.is_empty());
    });
}
