//! The query threads: each with its own UDP and TCP sockets on every
//! `listen` address (`SO_REUSEPORT`, so the kernel spreads queries and no
//! two threads wake for one), a current-thread tokio runtime, and nothing
//! shared on the way but one `View` load per query.
//!
//! A reload binds the new sockets first (beside the old ones), then stops
//! the old threads: queries are answered throughout.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::answer::{Ctx, Policy, Reply, handle};
use crate::view::View;
use crate::{DnsError, Prepared, Shared};

/// Largest query read over UDP; a longer datagram is cut and then FORMERR.
const UDP_READ: usize = 4096;

/// Each thread's sockets: per `listen` address, one UDP and one TCP.
#[derive(Debug)]
pub struct Sockets {
    threads: Vec<Vec<(std::net::UdpSocket, std::net::TcpListener)>>,
}

impl Sockets {
    /// Binds every address once per thread. An address is first tried
    /// without `SO_REUSEPORT`, so one held by another program is refused,
    /// unless this levee serves it already (`held`: a reload).
    pub fn bind(dns: &levee_config::Dns) -> Result<Sockets, (usize, SocketAddr, io::Error)> {
        let held: Vec<SocketAddr> = crate::current()
            .map(|s| s.config.load().listen.clone())
            .unwrap_or_default();
        let mut threads: Vec<Vec<_>> = (0..dns.threads.max(1)).map(|_| Vec::new()).collect();
        for (i, &addr) in dns.listen.iter().enumerate() {
            let err = |e| (i, addr, e);
            if !held.contains(&addr) && addr.port() != 0 {
                probe_bind(addr).map_err(err)?;
            }
            let mut addr = addr;
            for t in &mut threads {
                let udp = socket(addr, Type::DGRAM, Protocol::UDP).map_err(err)?;
                if addr.port() == 0 {
                    addr = udp
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_socket())
                        .unwrap_or(addr);
                }
                let tcp = socket(addr, Type::STREAM, Protocol::TCP).map_err(err)?;
                tcp.listen(1024).map_err(err)?;
                t.push((udp.into(), tcp.into()));
            }
        }
        Ok(Sockets { threads })
    }
}

/// Binds `addr` on UDP and TCP a moment, without `SO_REUSEPORT`.
pub fn probe_bind(addr: SocketAddr) -> io::Result<()> {
    let plain = |ty, proto| -> io::Result<Socket> {
        let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.bind(&addr.into())?;
        Ok(s)
    };
    let _udp = plain(Type::DGRAM, Protocol::UDP)?;
    let _tcp = plain(Type::STREAM, Protocol::TCP)?;
    Ok(())
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// The running DNS server: its threads, and how to stop them.
#[derive(Debug)]
pub struct Dns {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Dns {
    /// Starts `prepared`, taking over `shared` (a reload's) or starting
    /// afresh, and makes it [`crate::current`].
    pub fn start(prepared: Prepared, shared: Option<Arc<Shared>>) -> Result<Dns, DnsError> {
        let Prepared {
            config,
            zones,
            policy,
            sockets,
        } = prepared;
        let shared = match shared {
            Some(s) => {
                s.policy.store(Arc::new(policy));
                s.zones.store(Arc::new(zones));
                s.config.store(Arc::new(config));
                s
            }
            None => Arc::new(Shared {
                view: Default::default(),
                policy: arc_swap::ArcSwap::from_pointee(policy),
                zones: arc_swap::ArcSwap::from_pointee(zones),
                config: arc_swap::ArcSwap::from_pointee(config),
                states: Default::default(),
                health: Default::default(),
                wake: Default::default(),
            }),
        };
        // The view is built before the first query can come.
        crate::upkeep::refresh(&shared);
        let (stop, _) = watch::channel(false);
        let mut threads = Vec::new();
        for (n, socks) in sockets.threads.into_iter().enumerate() {
            let (shared, stop) = (shared.clone(), stop.subscribe());
            let runtime = runtime()?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("levee-dns-{n}"))
                    .spawn(move || runtime.block_on(serve(shared, socks, stop)))
                    .map_err(DnsError::Thread)?,
            );
        }
        let (s, rx) = (shared.clone(), stop.subscribe());
        let runtime = runtime()?;
        threads.push(
            std::thread::Builder::new()
                .name("levee-dns".into())
                .spawn(move || runtime.block_on(crate::upkeep::run(s, rx)))
                .map_err(DnsError::Thread)?,
        );
        *crate::lock(&crate::CURRENT) = Some(shared.clone());
        Ok(Dns {
            shared,
            stop,
            threads,
        })
    }

    /// The state a reload hands to the next server.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Stops the threads (sockets closed) and waits for them a moment.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Stops serving for good: also no longer [`crate::current`].
    pub fn shut(self) {
        {
            let mut cur = crate::lock(&crate::CURRENT);
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.shared)) {
                *cur = None;
            }
        }
        self.stop();
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, DnsError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DnsError::Thread)
}

async fn serve(
    shared: Arc<Shared>,
    sockets: Vec<(std::net::UdpSocket, std::net::TcpListener)>,
    mut stop: watch::Receiver<bool>,
) {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let open = Rc::new(Cell::new(0u32));
            for (udp, tcp) in sockets {
                match (UdpSocket::from_std(udp), TcpListener::from_std(tcp)) {
                    (Ok(udp), Ok(tcp)) => {
                        tokio::task::spawn_local(udp_loop(shared.clone(), udp));
                        tokio::task::spawn_local(tcp_loop(shared.clone(), tcp, open.clone()));
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!(error = %e, "dns: a socket cannot be served");
                    }
                }
            }
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
}

impl<'a> Ctx<'a> {
    /// A query from `peer` that has just arrived: the clocks read now, the
    /// fleet record's next turn taken.
    #[inline]
    pub fn arriving(view: &'a View, policy: &'a Policy, peer: SocketAddr, tcp: bool) -> Ctx<'a> {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ctx {
            view,
            policy,
            peer,
            tcp,
            unix,
            now: Instant::now(),
            turn: None,
        }
    }
}

async fn udp_loop(shared: Arc<Shared>, socket: UdpSocket) {
    let mut buf = vec![0u8; UDP_READ];
    let mut out = Vec::with_capacity(UDP_READ);
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            // An ICMP error from an earlier send (the peer's port closed).
            Err(_) => continue,
        };
        let (view, policy) = (shared.view.load(), shared.policy.load());
        let cx = Ctx::arriving(&view, &policy, peer, false);
        // Most queries are answered from a reply encoded before (replay.rs),
        // copied into `out`, which lives as long as the loop.
        if crate::replay::udp_into(&buf[..n], &view, &policy, &cx, &mut out) {
            let _ = socket.send_to(&out, peer).await;
        }
    }
}

async fn tcp_loop(shared: Arc<Shared>, listener: TcpListener, open: Rc<Cell<u32>>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors: let others close before trying again.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let max = shared.config.load().max_tcp_connections;
        if open.get() >= max {
            crate::metrics::COUNTERS
                .tcp_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        open.set(open.get() + 1);
        let (shared, open) = (shared.clone(), open.clone());
        tokio::task::spawn_local(async move {
            let _ = connection(&shared, stream, peer).await;
            open.set(open.get().saturating_sub(1));
        });
    }
}

/// Queries on one TCP connection, one after another (RFC 7766 allows a
/// client to pipeline; they are answered in order).
async fn connection(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    let idle = shared.config.load().tcp_idle_timeout;
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        // The rest of a message comes within the idle time too.
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let reply = {
            let (view, policy) = (shared.view.load(), shared.policy.load());
            handle(&buf, &Ctx::arriving(&view, &policy, peer, true))
        };
        let messages = match reply {
            Reply::Nothing => return Ok(()),
            Reply::One(m) => vec![m],
            Reply::Many(ms) => ms,
        };
        for m in messages {
            let mut framed = Vec::with_capacity(m.len() + 2);
            framed.extend_from_slice(&(m.len() as u16).to_be_bytes());
            framed.extend_from_slice(&m);
            tokio::time::timeout(idle, stream.write_all(&framed))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        }
    }
}
