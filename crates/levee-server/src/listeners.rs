//! Binding listening sockets.
//!
//! Each worker gets its own socket for every listener address, bound with
//! `SO_REUSEPORT`, so the kernel spreads new connections across workers and
//! no two workers ever wake for the same connection (no thundering herd, no
//! accept lock). Before that, a plain probe bind without `SO_REUSEPORT`
//! catches an address another process already holds, which `SO_REUSEPORT`
//! alone would silently share.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

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

/// Binds `count` sockets to `addr` (one per worker). With port 0 the first
/// socket's port is used for all of them.
pub fn bind(addr: SocketAddr, backlog: u32, count: usize) -> io::Result<Vec<TcpListener>> {
    let mut addr = addr;
    if addr.port() != 0 {
        drop(probe(addr)?);
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let s = socket(addr, true)?;
        s.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        if addr.port() == 0 {
            addr = s.local_addr()?.as_socket().unwrap_or(addr);
        }
        out.push(s.into());
    }
    Ok(out)
}
