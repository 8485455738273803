//! Socket calls made outside the ring (or the epoll loop): listeners, the
//! upstream connect, per-connection options. None of them runs per request.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;

pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

pub fn set_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid pointer to an int of the size given.
    cvt(unsafe { libc::setsockopt(fd, level, opt, (&v as *const libc::c_int).cast(), 4) }).map(drop)
}

/// A listener of its own for one worker: SO_REUSEPORT spreads connections
/// over the workers in the kernel.
pub fn listen(addr: SocketAddrV4) -> io::Result<RawFd> {
    // SAFETY: plain socket calls on a descriptor this function owns.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        let sa = sockaddr(addr);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        cvt(libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        cvt(libc::listen(fd, 4096))?;
        Ok(fd)
    }
}

/// A new upstream connection, non-blocking once connected. The connect itself
/// blocks: on the benchmark's loopback it returns at once, and the pool makes
/// it rare (one per concurrent exchange, 64 in a run).
pub fn connect(addr: SocketAddrV4) -> io::Result<RawFd> {
    // SAFETY: plain socket calls on a descriptor this function owns.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let sa = sockaddr(addr);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if let Err(e) = cvt(libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            len,
        )) {
            libc::close(fd);
            return Err(e);
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let _ = set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        Ok(fd)
    }
}

/// The IPv4 peer address of `fd` as text (empty if unknown), written once per
/// connection for the X-Forwarded-For of each of its requests.
pub fn peer_text(fd: RawFd) -> ([u8; 15], u8) {
    // SAFETY: a zeroed sockaddr_in is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sa` is as large as `len` says.
    let got =
        unsafe { libc::getpeername(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len) };
    let mut peer = [0u8; 15];
    if got != 0 || i32::from(sa.sin_family) != libc::AF_INET {
        return (peer, 0);
    }
    let text = std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)).to_string();
    let n = text.len().min(15);
    peer[..n].copy_from_slice(&text.as_bytes()[..n]);
    (peer, n as u8)
}

/// The soft limit on open descriptors.
pub fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}
