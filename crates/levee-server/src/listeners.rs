//! Binding listening sockets, and the sockets a run starts with.
//!
//! [`Listeners`] holds sockets bound before [`crate::run`] (by a test on
//! `127.0.0.1:0`, by the binary as root before it drops privileges, or
//! handed over by the levee being upgraded), so that run itself binds only
//! what they lack.
//!
//! Each worker gets its own socket for every listener address, bound with
//! `SO_REUSEPORT`, so the kernel spreads new connections across workers and
//! no two workers ever wake for the same connection (no thundering herd, no
//! accept lock). Before that, a plain probe bind without `SO_REUSEPORT`
//! catches an address another process already holds, which `SO_REUSEPORT`
//! alone would silently share.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;

use levee_config::Config;
use socket2::{Domain, Protocol, Socket, Type};

use crate::ServerError;
use crate::preflight;
use crate::upkeep::AdminListener;

/// Listening sockets by the configured address they serve.
#[derive(Debug, Default)]
pub struct Listeners {
    /// A listener's sockets, by its `address` as configured: one per
    /// worker when levee bound them, or any number (spread over the
    /// workers, each on at least one).
    pub(crate) http: HashMap<SocketAddr, Vec<TcpListener>>,
    /// The admin listener's socket.
    pub(crate) admin: Option<TcpListener>,
    /// The admin socket an upgraded levee handed over, with the address
    /// it served: used if `[admin]` still names it.
    pub(crate) inherited_admin: Option<(SocketAddr, TcpListener)>,
    /// The control socket an upgraded levee handed over, with its path:
    /// used if `control_socket` still names it.
    pub(crate) inherited_control: Option<(std::path::PathBuf, UnixListener)>,
    /// `[dns]`'s sockets and records, made ready before `levee run` drops
    /// to `user` (port 53 wants root); `None`: not prepared yet.
    pub(crate) dns: Option<Option<levee_dns::Prepared>>,
}

impl Listeners {
    pub fn new() -> Listeners {
        Listeners::default()
    }

    /// `socket`, bound (listening or not: levee listens on it once it can
    /// serve, with the listener's `backlog`), serves the `[[listener]]` whose
    /// `address` is `configured` (which may say port 0 where the socket has
    /// a port).
    pub fn add(&mut self, configured: SocketAddr, socket: TcpListener) -> &mut Listeners {
        self.http.entry(configured).or_default().push(socket);
        self
    }

    /// `socket`, already listening, serves `[admin]`.
    pub fn admin(&mut self, socket: TcpListener) -> &mut Listeners {
        self.admin = Some(socket);
        self
    }

    /// Binds every address of `config` that has no socket yet (each
    /// listener once per worker, and `[admin]`); every one the OS refuses
    /// is reported at its key.
    pub fn bind_missing(&mut self, config: &Config) -> Result<(), ServerError> {
        let mut refused = Vec::new();
        if let Some((addr, socket)) = self.inherited_admin.take()
            && self.admin.is_none()
            && config.admin.as_ref().is_some_and(|a| a.address == addr)
        {
            self.admin = Some(socket);
        }
        if let Some(admin) = &config.admin
            && self.admin.is_none()
        {
            match AdminListener::bind(admin.address) {
                Ok(socket) => self.admin = Some(socket),
                Err(e) => refused.push(("admin.address".to_owned(), admin.address, e)),
            }
        }
        for (i, l) in config.listeners.iter().enumerate() {
            if self.http.contains_key(&l.address) {
                continue;
            }
            match bind_unlistened(l.address, config.workers) {
                Ok(sockets) => {
                    self.http.insert(l.address, sockets);
                }
                Err(e) => refused.push((format!("listener[{i}].address"), l.address, e)),
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        let at = levee_config::Locator::new(config);
        let errors = refused
            .iter()
            .map(|(key, addr, e)| at.error(key, preflight::cannot_listen(*addr, e)))
            .collect();
        Err(ServerError::Invalid(levee_config::ConfigErrors { errors }))
    }

    /// The sockets for `addr`, `count` of them: each worker gets one, and
    /// every socket goes to a worker (a socket of a `SO_REUSEPORT` group
    /// that nobody accepted on would strand the connections the kernel
    /// gives it). Extra sockets are spread round robin; missing ones are
    /// duplicates sharing an accept queue.
    ///
    /// Each socket listens from now on (with `backlog`: again for a
    /// socket that already did, which only sets its backlog).
    pub(crate) fn take(
        &mut self,
        addr: SocketAddr,
        count: usize,
        backlog: u32,
    ) -> Option<io::Result<Vec<Vec<TcpListener>>>> {
        let sockets = self.http.remove(&addr)?;
        Some(spread(sockets, count.max(1), backlog))
    }

    /// Sockets handed over for listeners the config no longer has.
    pub(crate) fn leftover(&self) -> impl Iterator<Item = &SocketAddr> {
        self.http.keys()
    }
}

/// `sockets` over `count` workers, as [`Listeners::take`] says.
fn spread(
    sockets: Vec<TcpListener>,
    count: usize,
    backlog: u32,
) -> io::Result<Vec<Vec<TcpListener>>> {
    for s in &sockets {
        // A caller's socket may be blocking; the workers' event loops need it not.
        s.set_nonblocking(true)?;
        socket2::SockRef::from(s).listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    }
    let mut per_worker: Vec<Vec<TcpListener>> = (0..count).map(|_| Vec::new()).collect();
    let have = sockets.len();
    for (i, s) in sockets.into_iter().enumerate() {
        per_worker[i % count].push(s);
    }
    for i in have..count {
        let dup = per_worker[i % have.max(1)]
            .first()
            .map(TcpListener::try_clone)
            .transpose()?;
        if let Some(dup) = dup {
            per_worker[i].push(dup);
        }
    }
    Ok(per_worker)
}

fn socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Binds `addr` as [`bind`] first does, without listening: whether the OS
/// would let levee listen there (`levee check`, which holds the probes of
/// every address until it is done, as start-up holds its sockets). A bound
/// socket that does not listen takes no connection.
pub fn probe(addr: SocketAddr) -> io::Result<Socket> {
    socket(addr, false)
}

/// Binds `count` sockets to `addr` (one per worker) as [`bind`] does, not
/// listening yet: start-up binds as root, before it drops privileges, and
/// listens once it can serve ([`Listeners::take`]), so no connection waits
/// on a levee that is still reading its files or fails to start.
fn bind_unlistened(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let mut addr = addr;
    if addr.port() != 0 {
        drop(probe(addr)?);
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let s = socket(addr, true)?;
        if addr.port() == 0 {
            addr = s.local_addr()?.as_socket().unwrap_or(addr);
        }
        out.push(s.into());
    }
    Ok(out)
}

/// Binds `count` sockets to `addr` (one per worker), listening. With port
/// 0 the first socket's port is used for all of them.
pub fn bind(addr: SocketAddr, backlog: u32, count: usize) -> io::Result<Vec<TcpListener>> {
    let sockets = bind_unlistened(addr, count)?;
    for s in &sockets {
        socket2::SockRef::from(s).listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn config(text: &str) -> Config {
        levee_config::parse(text, std::path::Path::new("levee.toml")).expect("config")
    }

    /// Start-up's sockets take no connection until they are taken to be
    /// served (a connection then is refused, not left waiting on a levee
    /// that may never serve), and accept once taken.
    #[test]
    fn bound_sockets_listen_once_taken() {
        let config = config(
            "workers = 2\n[[listener]]\naddress = \"127.0.0.1:0\"\n[[route]]\nrespond = \"x\"\n",
        );
        let configured = config.listeners[0].address;
        let mut listeners = Listeners::new();
        listeners.bind_missing(&config).expect("bind");
        let port = listeners.http[&configured][0]
            .local_addr()
            .expect("local addr")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(TcpStream::connect(addr).is_err(), "accepted before listen");
        let per_worker = listeners
            .take(configured, 2, 16)
            .expect("sockets")
            .expect("listen");
        assert_eq!(per_worker.len(), 2);
        assert!(TcpStream::connect(addr).is_ok(), "refused after listen");
    }

    /// A socket that already listens (a test's, or one handed over by the
    /// levee being upgraded, whose queue may hold connections) keeps
    /// listening and keeps what is queued.
    #[test]
    fn a_listening_socket_is_taken_as_it_is() {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("local addr");
        let queued = TcpStream::connect(addr).expect("connect");
        let mut listeners = Listeners::new();
        listeners.add(addr, socket);
        let mut per_worker = listeners
            .take(addr, 3, 16)
            .expect("sockets")
            .expect("listen");
        assert_eq!(per_worker.len(), 3, "every worker gets one");
        let socket = per_worker.remove(0).remove(0);
        socket.set_nonblocking(false).expect("blocking");
        let (accepted, _) = socket.accept().expect("the queued connection");
        assert_eq!(accepted.peer_addr().ok(), queued.local_addr().ok());
    }
}
