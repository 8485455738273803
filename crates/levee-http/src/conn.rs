//! The life of one HTTP/1 client connection.
//!
//! ```text
//! accept ─▶ [PROXY header] ─▶ [TLS handshake] ─▶ idle ─▶ read head ─▶ route ─▶ act ─▶ log ─┐
//!             (conn/start.rs, when the listener asks)     ▲                                 │
//!                                                         └─────────── keep-alive ◀─────────┘
//! ```
//!
//! `act` is one of proxy, static, redirect, respond, mirrors.
//!
//! While idle a connection holds no buffer: it waits for readability with an
//! empty `BytesMut`, and after the worker's second park tick it gives up
//! its task altogether (idle.rs). The request's work runs inline in the
//! task: boxing it cost a copy of its state per request (docs/architecture.md).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use levee_protect::{ConnPermit, ConnTable};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::access_log::Entry;
use crate::h1::{HeadError, Parsed, parse_request};
use crate::message::{Framing, RequestHead};
use crate::origin::{self, Origin};
use crate::respond;
use crate::screen::{self, Screened};
use crate::site::{Routed, Site, Target};
use crate::stream::ClientStream;
use crate::{Shared, idle, pace, proxy, timed};

mod start;

/// Initial read size for a request head; grows up to `limits.max_header_bytes`.
pub(crate) const HEAD_CHUNK: usize = 4096;

/// What a listener gives each of its connections.
#[derive(Debug)]
pub struct ListenerCtx {
    /// The address the listener is bound to, as configured (selects its routes).
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    /// Its open connections, counted for the connection limits; lives as
    /// long as the listener, across reloads.
    pub conns: Arc<ConnTable>,
    /// What its new connections do before HTTP; swapped whole on reload.
    pub steps: arc_swap::ArcSwap<FirstSteps>,
}

/// A listener's steps before HTTP (conn/start.rs).
#[derive(Debug, Default)]
pub struct FirstSteps {
    /// Set on a TLS listener: every connection starts with a handshake.
    pub tls: Option<ListenerTls>,
    /// The sources that must start with a PROXY protocol header; `None`
    /// when the listener takes it from no one.
    pub proxy_protocol: Option<levee_protect::Acl>,
    /// Cleartext connections that open with the HTTP/2 preface speak
    /// HTTP/2 (h2c with prior knowledge, `http2 = "prior-knowledge"`).
    pub h2c: bool,
    /// `http2 = "only"`: those that do not are refused with GOAWAY
    /// PROTOCOL_ERROR (conn/start.rs).
    pub h2_only: bool,
}

/// A TLS listener's acceptor; it swaps its certificates itself on reload.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub acceptor: Arc<levee_tls::Acceptor>,
    pub handshake_timeout: std::time::Duration,
    /// `Strict-Transport-Security: max-age` in seconds, when configured.
    pub hsts: Option<u64>,
}

impl ListenerCtx {
    pub fn new(addr: SocketAddr, shared: Arc<Shared>) -> ListenerCtx {
        ListenerCtx {
            addr,
            shared,
            conns: ConnTable::new(addr.to_string()),
            steps: Default::default(),
        }
    }
}

/// The client side of a connection: its socket and the bytes read but not yet used.
#[derive(Debug)]
pub struct Client {
    pub stream: ClientStream,
    pub peer: SocketAddr,
    pub buf: BytesMut,
    /// Its place in the listener's connection counts, given back on close.
    pub permit: Option<ConnPermit>,
    /// HSTS max-age for every response, on a TLS listener that sets one.
    pub hsts: Option<u64>,
    /// Who the current request is for (origin.rs): set from its head before
    /// it is routed; between requests, the peer.
    pub origin: Origin,
}

/// What happens to the connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// Close after draining what the client still sends (after an error).
    Linger,
}

/// Serves one client connection until it closes, after the TLS handshake
/// on a TLS listener. `permit` is its place in the listener's connection
/// counts (see `levee_protect::conns`).
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerCtx>,
    permit: Option<ConnPermit>,
) -> impl Future<Output = ()> + Send {
    let _ = stream.set_nodelay(true);
    let client = Client {
        stream: ClientStream::Plain(stream),
        peer,
        buf: BytesMut::new(),
        permit,
        hsts: None,
        origin: Origin::direct(peer.ip(), false),
    };
    serve_from(client, listener, 0)
}

/// Serves a connection that has already served `served` requests.
pub async fn serve_from(mut client: Client, listener: Arc<ListenerCtx>, mut served: u64) {
    if served == 0 {
        let (steps, h2c) = {
            let s = listener.steps.load();
            let before_http = s.tls.is_some() || s.proxy_protocol.is_some();
            (before_http.then(|| Arc::clone(&s)), s.h2c)
        };
        // Nothing sent yet: past a park tick it waits parked, where it can
        // be shed near the descriptor limit (idle.rs).
        client = match idle::first_byte(client, &listener, steps.as_deref(), h2c).await {
            Some(c) => c,
            None => return,
        };
        if let Some(steps) = steps {
            // Boxed: these steps' state must not widen every connection's task.
            match Box::pin(start::begin(client, &listener, &steps)).await {
                Some(c) => client = c,
                None => return,
            }
        }
        let h2 = crate::stream::negotiated_h2(&client.stream)
            || (h2c
                && match Box::pin(start::h2c_preface(&mut client, &listener)).await {
                    Some(preface) => preface,
                    None => return,
                });
        if h2 {
            // Its own task, and this one ends: awaited here, the HTTP/1
            // task would stay behind it for the connection's whole life.
            tokio::spawn(crate::http2::serve(client, listener));
            return;
        }
    }
    let fd = client.stream.as_raw_fd();
    loop {
        if client.buf.is_empty() {
            // Idle: hold no buffer while waiting for the next request.
            client.buf = BytesMut::new();
            // Only the two it needs: the whole `Timeouts` would sit in the task.
            let (request_head, keepalive) = {
                let t = &listener.shared.site.load().timeouts;
                (idle::head_limit(t.request_head), t.keepalive)
            };
            if served == 0 {
                if !matches!(
                    timeout(
                        request_head,
                        crate::stream::ready(&mut client.stream, &mut client.buf)
                    )
                    .await,
                    Ok(Ok(()))
                ) {
                    return;
                }
            } else if keepalive <= idle::PARK_AFTER {
                let ready = crate::stream::ready(&mut client.stream, &mut client.buf);
                if !matches!(timeout(keepalive, ready).await, Ok(Ok(()))) {
                    return;
                }
            } else {
                let quiet = tokio::select! {
                    biased;
                    r = crate::stream::ready(&mut client.stream, &mut client.buf) => match r {
                        Ok(()) => false,
                        Err(_) => return,
                    },
                    () = idle::quiet() => true,
                };
                if quiet {
                    // The wait took one to two park ticks; the clock is
                    // read here, not on every wait.
                    let deadline = std::time::Instant::now() + (keepalive - idle::PARK_AFTER);
                    match idle::park(client, listener.clone(), served, deadline) {
                        Some(ready) => client = ready,
                        None => return,
                    }
                }
            }
        }
        let pace = listener.shared.site.load().pace;
        // Inline, not boxed: a box cost a copy of this ~5 KB future per
        // request (3 % of CPU per proxied request in A/B runs). The task
        // is this big only while the connection is busy; an idle one parks.
        let exchange = exchange(&mut client, &listener, served);
        let next = pace::scope(fd, pace, exchange).await;
        served += 1;
        match next {
            Next::KeepAlive if !listener.shared.draining() => {}
            Next::KeepAlive | Next::Close => return,
            // Boxed: its discard buffer must not sit in every connection's task.
            Next::Linger => return Box::pin(respond::linger_close(client.stream)).await,
        }
    }
}

/// Why no request head could be read.
enum HeadRead {
    /// The client closed or went quiet before sending anything.
    Closed,
    /// The head did not complete within `timeouts.request_head`.
    Timeout,
    Bad(HeadError),
}

/// One request and its response.
async fn exchange(client: &mut Client, listener: &ListenerCtx, served: u64) -> Next {
    let shared = &listener.shared;
    let site = shared.site.load_full();
    let started = Instant::now();
    let mut head = match read_head(client, &site).await {
        Ok(head) => head,
        Err(HeadRead::Closed) => return Next::Close,
        Err(HeadRead::Timeout) => return refuse(client, &site, started, 408).await,
        Err(HeadRead::Bad(e)) => {
            tracing::debug!(peer = %client.peer, error = %e, "bad request head");
            return refuse(client, &site, started, e.status()).await;
        }
    };
    let https = crate::stream::is_https(&client.stream);
    client.origin = origin::resolve(&head, client.peer.ip(), https, site.trust(listener.addr));
    let _in_flight = listener.shared.begin();
    let (done, routed) = serve_request(client, listener, &site, &mut head, served).await;
    done.log(
        &site,
        client.origin.ip,
        &head,
        started,
        routed.map(|r| &*r.stats),
    );
    done.next
}

/// Routes, screens and acts on one request whose head was read: the part
/// of an exchange HTTP/2 streams share (http2/exchange.rs). The caller
/// logs it, once the response is out (an HTTP/2 stream's is still on its
/// way when this returns), and counts it in flight until then; the route
/// it matched is returned for its counters.
pub(crate) async fn serve_request<'s>(
    client: &mut Client,
    listener: &ListenerCtx,
    site: &'s Site,
    head: &mut RequestHead,
    served: u64,
) -> (Done, Option<&'s Routed>) {
    let shared = &listener.shared;
    levee_upstream::stats::count_request(listener.addr);
    let max = site.limits.max_requests_per_connection;
    let keep_alive = head.keep_alive && !shared.draining() && (max == 0 || served + 1 < max);
    let mut done = Done::new(keep_alive);

    let routed = site.route(listener.addr, head.host_name(), head.path());
    match routed {
        None => {
            done.reply(
                client,
                site,
                head,
                respond::error(404, &[], keep_alive, head.is_head()),
            )
            .await
        }
        Some(routed) => {
            routed.choose_path(head);
            let head = &*head;
            match screen::screen(client, site, head, routed, keep_alive).await {
                Screened::Pass => {
                    act(client, site, head, &routed.target, keep_alive, &mut done).await
                }
                Screened::Reply(bytes) => done.reply(client, site, head, bytes).await,
            }
        }
    }
    (done, routed.map(|r| &**r))
}

/// Runs a route's action (step 4 of a request's life, docs/architecture.md).
async fn act(
    client: &mut Client,
    site: &Site,
    head: &RequestHead,
    target: &Target,
    keep_alive: bool,
    done: &mut Done,
) {
    match target {
        Target::Proxy {
            group,
            preserve_host,
            cache,
        } => {
            let out = match cache {
                Some(c) => {
                    crate::cache::serve(client, site, head, group, *preserve_host, c, keep_alive)
                        .await
                }
                None => proxy::forward(client, site, head, group, *preserve_host, keep_alive).await,
            };
            done.status = out.status;
            done.bytes = out.bytes;
            done.upstream_time = out.upstream_time;
            done.upstream = out.upstream;
            done.next = out.next;
        }
        Target::Respond {
            status,
            body,
            content_type,
        } => {
            let bytes = crate::h1::write::simple_response(
                *status,
                &[],
                content_type,
                body,
                keep_alive,
                head.is_head(),
            );
            done.reply(client, site, head, bytes).await;
        }
        Target::Redirect(r) => {
            done.reply(client, site, head, respond::redirect(r, head, keep_alive))
                .await;
        }
        Target::Static(root) => {
            crate::static_route::serve(client, site, head, root, done).await;
        }
        Target::Mirrors(set) => {
            // Boxed: its state must not widen every connection's task.
            Box::pin(crate::mirror_route::serve(
                client, site, head, set, keep_alive, done,
            ))
            .await;
        }
    }
}

/// The outcome of serving a request, as the log and the connection need it.
#[derive(Debug)]
pub struct Done {
    pub status: u16,
    pub bytes: u64,
    pub upstream_time: Option<std::time::Duration>,
    pub upstream: Option<SocketAddr>,
    pub next: Next,
}

impl Done {
    /// The outcome of a request that stays the last on its connection or
    /// stream: what HTTP/2 streams relayed upstream log (http2/upstream.rs).
    pub(crate) fn ended(status: u16) -> Done {
        Done {
            status,
            bytes: 0,
            upstream_time: None,
            upstream: None,
            next: Next::Close,
        }
    }

    /// The request's access log line.
    /// Logs the request and counts it on its route (`None`: it matched no
    /// route). The count reuses the log's one clock reading.
    pub(crate) fn log(
        &self,
        site: &Site,
        client: IpAddr,
        head: &RequestHead,
        started: Instant,
        route: Option<&levee_upstream::stats::RouteStats>,
    ) {
        let request_time = started.elapsed();
        route
            .unwrap_or_else(|| Site::unrouted())
            .observe(self.status, request_time);
        site.access_log.log(&Entry {
            client,
            request: Some(head),
            status: self.status,
            bytes: self.bytes,
            request_time,
            upstream_time: self.upstream_time,
            upstream: self.upstream,
        });
    }

    fn new(keep_alive: bool) -> Done {
        Done {
            status: 0,
            bytes: 0,
            upstream_time: None,
            upstream: None,
            next: if keep_alive {
                Next::KeepAlive
            } else {
                Next::Close
            },
        }
    }

    /// Sends a complete response levee made itself. A request body that was
    /// not read means the connection cannot carry another request.
    pub async fn reply(
        &mut self,
        client: &mut Client,
        site: &Site,
        head: &RequestHead,
        mut bytes: Vec<u8>,
    ) {
        respond::add_hsts(&mut bytes, client.hsts);
        self.status = status_of(&bytes);
        self.bytes = body_len(&bytes);
        if head.framing != Framing::None {
            self.next = Next::Linger;
        }
        if !respond::send(&mut client.stream, &bytes, site.timeouts.client_send).await {
            self.next = Next::Close;
        }
    }
}

pub(crate) fn status_of(response: &[u8]) -> u16 {
    response
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_len(response: &[u8]) -> u64 {
    crate::h1::parse::head_end(response, 0)
        .map(|end| (response.len() - end) as u64)
        .unwrap_or(0)
}

/// Answers a request whose head could not be read, logs it, and closes.
async fn refuse(client: &mut Client, site: &Site, started: Instant, status: u16) -> Next {
    let bytes = respond::error(status, &[], false, false);
    let _ = respond::send(&mut client.stream, &bytes, site.timeouts.client_send).await;
    site.access_log.log(&Entry {
        client: client.peer.ip(),
        request: None,
        status,
        bytes: body_len(&bytes),
        request_time: started.elapsed(),
        upstream_time: None,
        upstream: None,
    });
    Next::Linger
}

/// Reads until a complete request head is buffered, within `timeouts.request_head`.
async fn read_head(client: &mut Client, site: &Site) -> Result<RequestHead, HeadRead> {
    // Set when a read first has to wait: a head already in the socket costs
    // no clock reading.
    let mut deadline = None;
    // Shorter near the descriptor limit: one relaxed load of a flag that
    // changes only when the pressure does (idle.rs).
    let limit = idle::head_limit(site.timeouts.request_head);
    let mut searched = 0;
    loop {
        if !client.buf.is_empty() {
            match parse_request(&client.buf, searched, &site.head_limits) {
                Ok(Parsed::Complete(parts, len)) => {
                    return Ok(parts.into_head(client.buf.split_to(len).freeze()));
                }
                Ok(Parsed::Incomplete) => searched = client.buf.len(),
                Err(e) => return Err(HeadRead::Bad(e)),
            }
        }
        client.buf.reserve(HEAD_CHUNK);
        let read = client.stream.read_buf(&mut client.buf);
        match timed::by(&mut deadline, limit, read).await {
            Err(_) if client.buf.is_empty() => return Err(HeadRead::Closed),
            Err(_) => return Err(HeadRead::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadRead::Closed),
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// A busy connection's task, the request's work inline (docs/architecture.md).
    #[tokio::test]
    async fn connection_future_stays_bounded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let site = crate::Site::build(&levee_config::builtin_static(".".into(), addr)).unwrap();
        let ctx = std::sync::Arc::new(super::ListenerCtx::new(addr, crate::Shared::new(site)));
        let permit = ctx.conns.admit(addr.ip(), &Default::default()).ok();
        let fut = super::serve(stream, addr, ctx, permit);
        let size = std::mem::size_of_val(&fut);
        // Only a busy connection has a task (idle ones park without one,
        // idle.rs), and it holds the request's state inline: boxing it cost
        // a 5 KB copy per request. The guard catches buffers or large
        // futures creeping in (5,352 bytes in a debug build, 4.9 KB release).
        assert!(size <= 6 * 1024, "serve() future is {size} bytes");
    }
}
