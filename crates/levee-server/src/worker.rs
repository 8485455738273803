//! Worker threads: one single-threaded event loop per core.
//!
//! A connection lives and dies on the worker that accepted it, with its
//! upstream connections and pool on the same thread, so the hot path takes
//! no lock and wakes no other thread. The control thread talks to workers
//! only through their command channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use levee_http::conn::{self, ListenerCtx};
use levee_protect::Refusal;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// What the control thread asks of a worker.
#[derive(Debug)]
pub enum Command {
    /// Start accepting on this worker's socket for a listener.
    Listen {
        socket: std::net::TcpListener,
        ctx: Arc<ListenerCtx>,
        front: Front,
    },
    /// Stop accepting on the listener bound to this address.
    Unlisten(SocketAddr),
    /// Stop accepting on every listener (levee is stopping).
    UnlistenAll,
}

/// What serves a listener's connections once admitted.
#[derive(Debug, Clone)]
pub enum Front {
    Http,
    /// IMAP, POP3 or submission (levee-mail).
    Mail(Arc<levee_mail::Frontend>),
}

/// The control thread's handle on a worker.
#[derive(Debug)]
pub struct Worker {
    pub tx: mpsc::UnboundedSender<Command>,
}

/// Starts worker `index`.
pub fn spawn(index: usize) -> std::io::Result<Worker> {
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("levee-worker-{index}"))
        .spawn(move || {
            // Its metric cells: no atomic shared with another worker.
            levee_upstream::stats::enter_worker();
            runtime.block_on(run(rx))
        })?;
    Ok(Worker { tx })
}

async fn run(mut rx: mpsc::UnboundedReceiver<Command>) {
    tokio::spawn(each_second());
    tokio::spawn(levee_http::idle::dispatcher());
    // A listener may have more than one socket on a worker (sockets handed
    // over by an upgrade from a levee with more workers).
    let mut accepting: HashMap<SocketAddr, Vec<oneshot::Sender<()>>> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Listen { socket, ctx, front } => match TcpListener::from_std(socket) {
                Ok(listener) => {
                    let (stop_tx, stop_rx) = oneshot::channel();
                    accepting.entry(ctx.addr).or_default().push(stop_tx);
                    tokio::spawn(accept_loop(listener, ctx, front, stop_rx));
                }
                Err(e) => tracing::error!(error = %e, "cannot register listener"),
            },
            Command::Unlisten(addr) => {
                for stop in accepting.remove(&addr).unwrap_or_default() {
                    let _ = stop.send(());
                }
            }
            Command::UnlistenAll => {
                for stop in accepting.drain().flat_map(|(_, stops)| stops) {
                    let _ = stop.send(());
                }
            }
        }
    }
    // The control thread is gone; keep serving what is open until the process exits.
    std::future::pending::<()>().await;
}

/// Accepts connections until told to stop; each gets its own task.
async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<ListenerCtx>,
    front: Front,
    mut stop: oneshot::Receiver<()>,
) {
    let stats = levee_http::listener::stats::listener(ctx.addr);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    stats.connection();
                    admit(stream, peer, &ctx, &front);
                }
                Err(e) => accept_error(e).await,
            },
        }
    }
}

/// What a refused connection gets when it can be written without waiting.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

/// Right after accept, before any byte is read: the listener's allow/deny
/// list and connection limits. A denied client is closed at once; one over
/// a limit gets a 503 (or its mail protocol's refusal) if the socket takes
/// it at once, then is closed. Connections already accepted are not touched.
fn admit(stream: TcpStream, peer: SocketAddr, ctx: &Arc<ListenerCtx>, front: &Front) {
    let site = ctx.shared.site.load();
    let behind_proxy = ctx
        .steps
        .load()
        .proxy_protocol
        .as_ref()
        .is_some_and(|trusted| trusted.permits(peer.ip()));
    if behind_proxy {
        // A load balancer speaks for many clients: each connection is
        // admitted once its PROXY header names the client (conn/start.rs).
        levee_http::idle::shed_near_limit(levee_protect::conns::open_all(), site.shed_idle_at);
        let span = conn::span(ctx.addr, peer);
        tokio::spawn(conn::serve(stream, peer, ctx.clone(), None).instrument(span));
        return;
    }
    match ctx.conns.admit(peer.ip(), site.conn_limits(ctx.addr)) {
        Ok(permit) => {
            levee_http::idle::shed_near_limit(levee_protect::conns::open_all(), site.shed_idle_at);
            match front {
                Front::Http => {
                    let span = conn::span(ctx.addr, peer);
                    tokio::spawn(
                        conn::serve(stream, peer, ctx.clone(), Some(permit)).instrument(span),
                    );
                }
                Front::Mail(mail) => {
                    // The listener's TLS as it is now: implicit TLS or STARTTLS.
                    let tls = ctx.steps.load().tls.as_ref().map(|t| levee_mail::MailTls {
                        acceptor: t.acceptor.clone(),
                        handshake_timeout: t.handshake_timeout,
                    });
                    let span = conn::span(ctx.addr, peer);
                    tokio::spawn(
                        mail.clone()
                            .serve(stream, peer, permit, tls)
                            .instrument(span),
                    );
                }
            }
        }
        Err(Refusal::Denied | Refusal::Banned) => {}
        Err(why) => {
            tracing::debug!(peer = %peer, reason = why.as_str(), "connection refused");
            let busy = match front {
                Front::Http => BUSY,
                Front::Mail(mail) => mail.busy_reply(),
            };
            let _ = stream.try_write(busy);
        }
    }
}

/// How many idle connections one `EMFILE` sheds.
const SHED_ON_EMFILE: usize = 16;

/// Out of descriptors: close the oldest idle keep-alive connections and
/// accept again at once; with none to close (or out of memory), pause
/// instead of spinning on the error.
async fn accept_error(e: std::io::Error) {
    let exhausted = matches!(
        e.raw_os_error(),
        Some(code) if code == libc::EMFILE
            || code == libc::ENFILE
            || code == libc::ENOBUFS
            || code == libc::ENOMEM
    );
    if !exhausted {
        tracing::warn!(error = %e, "accept failed");
        tokio::time::sleep(Duration::from_millis(1)).await;
        return;
    }
    levee_protect::metrics::counters()
        .accept_exhausted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let descriptors = matches!(e.raw_os_error(), Some(c) if c == libc::EMFILE || c == libc::ENFILE);
    if descriptors && levee_http::idle::shed_oldest(SHED_ON_EMFILE) > 0 {
        tracing::debug!(error = %e, "accept failed; shed idle connections");
        tokio::task::yield_now().await;
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing 50 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Once a second: closes stale pooled upstream connections, then gives
/// the allocator's freed pages back (`idle::trim`; the idle dispatcher also
/// trims soon after connections park).
async fn each_second() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        levee_upstream::pool::sweep(std::time::Instant::now());
        levee_http::idle::trim(false);
    }
}
