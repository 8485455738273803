//! The epoll twin of the ring: the same worker state and HTTP work, with
//! readiness from level-triggered epoll and one `recv` or `send` call per
//! operation, the way levee's tokio path does its I/O. A send's result is
//! queued as if it were a completion, so the worker code is shared.

use crate::out::BUF_SIZE;
use crate::sock::cvt;
use crate::worker::{self, Worker, ACCEPT, CLIENT_RECV, UP_RECV};
use std::io;
use std::os::fd::RawFd;

pub struct Epoll {
    ep: RawFd,
    listener: RawFd,
    /// Results of sends made in this turn, handled after the event that made
    /// them.
    done: Vec<(u64, i32)>,
    /// Sends the socket had no room for: retried when it is writable.
    blocked: Vec<(RawFd, u64, *const u8, u32)>,
}

impl Epoll {
    pub fn new(listener: RawFd) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 and epoll_ctl on descriptors this worker owns.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: the listener is this worker's own.
        unsafe {
            let flags = libc::fcntl(listener, libc::F_GETFL);
            libc::fcntl(listener, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let me = Epoll {
            ep,
            listener,
            done: Vec::new(),
            blocked: Vec::new(),
        };
        me.ctl(
            libc::EPOLL_CTL_ADD,
            listener,
            libc::EPOLLIN as u32,
            worker::user_data(ACCEPT, 0),
        )?;
        Ok(me)
    }

    /// Stands in for the ring after it is dropped.
    pub fn closed() -> Epoll {
        Epoll {
            ep: -1,
            listener: -1,
            done: Vec::new(),
            blocked: Vec::new(),
        }
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, ud: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: ud };
        // SAFETY: a valid event for epoll_ctl.
        cvt(unsafe { libc::epoll_ctl(self.ep, op, fd, &mut ev) }).map(drop)
    }

    /// Watches a new connection for reading; closing it removes it.
    pub fn watch(&mut self, fd: RawFd, ud: u64) {
        let _ = self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, ud);
    }

    pub fn send(&mut self, fd: RawFd, ud: u64, ptr: *const u8, len: u32) {
        // SAFETY: the worker keeps the buffer until the send's result is
        // handled, as with the ring.
        let n = unsafe {
            libc::send(
                fd,
                ptr.cast(),
                len as usize,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            self.done.push((ud, n as i32));
            return;
        }
        let err = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if err == libc::EAGAIN {
            // Rare in the benchmark (small responses): wait for room.
            let recv_ud = (ud & 0xffff_ffff) | (recv_kind(ud >> 32) << 32);
            self.blocked.push((fd, ud, ptr, len));
            let events = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
            let _ = self.ctl(libc::EPOLL_CTL_MOD, fd, events, recv_ud);
        } else {
            self.done.push((ud, -err));
        }
    }

    /// Retries the blocked sends of `fd` (it became writable).
    fn writable(&mut self, fd: RawFd, recv_ud: u64) {
        let blocked = std::mem::take(&mut self.blocked);
        let (mine, rest): (Vec<_>, Vec<_>) = blocked.into_iter().partition(|b| b.0 == fd);
        self.blocked = rest;
        let _ = self.ctl(libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32, recv_ud);
        for (fd, ud, ptr, len) in mine {
            self.send(fd, ud, ptr, len);
        }
    }
}

fn recv_kind(send_kind: u64) -> u64 {
    if send_kind == worker::CLIENT_SEND {
        CLIENT_RECV
    } else {
        UP_RECV
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        if self.ep >= 0 {
            // SAFETY: our own epoll descriptor, closed once.
            unsafe { libc::close(self.ep) };
        }
    }
}

impl Worker {
    pub fn run_epoll(&mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut scratch = vec![0u8; BUF_SIZE];
        loop {
            let worker::Io::Epoll(ep) = &self.st.io else {
                return Ok(());
            };
            // SAFETY: `events` has room for the count given.
            let n =
                unsafe { libc::epoll_wait(ep.ep, events.as_mut_ptr(), events.len() as i32, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            for ev in &events[..n as usize] {
                let (flags, ud) = (ev.events, ev.u64);
                self.event(flags, ud, &mut scratch);
                self.drain_sends();
            }
        }
    }

    fn epoll(&mut self) -> &mut Epoll {
        match &mut self.st.io {
            worker::Io::Epoll(ep) => ep,
            worker::Io::Uring(_) => unreachable!("run_epoll runs only with Io::Epoll"),
        }
    }

    fn event(&mut self, flags: u32, ud: u64, scratch: &mut [u8]) {
        let kind = ud >> 32;
        let idx = ud as u32;
        if kind == ACCEPT {
            let listener = self.epoll().listener;
            loop {
                // SAFETY: accept4 with no address wanted.
                let fd = unsafe {
                    libc::accept4(
                        listener,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                if fd < 0 {
                    break;
                }
                self.st.new_client(fd);
            }
            return;
        }
        let client = kind == CLIENT_RECV;
        let (fd, live) = if client {
            self.st
                .clients
                .get(idx as usize)
                .map_or((-1, false), |c| (c.fd, c.live))
        } else {
            self.st
                .ups
                .get(idx as usize)
                .map_or((-1, false), |u| (u.fd, u.live))
        };
        if !live {
            return;
        }
        if flags & libc::EPOLLOUT as u32 != 0 {
            self.epoll().writable(fd, ud);
            self.drain_sends();
        }
        if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
            return;
        }
        // SAFETY: `scratch` has room for the length given.
        let n = unsafe { libc::recv(fd, scratch.as_mut_ptr().cast(), scratch.len(), 0) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
            return;
        }
        let failed = n <= 0;
        if n > 0 {
            let data = &scratch[..n as usize];
            if client {
                self.st.client_data(idx, data);
            } else {
                self.st.upstream_data(idx, data);
            }
        }
        // A receive that failed ends like a multishot one without MORE.
        if client {
            self.st.client_recv_end(idx, !failed, failed);
        } else {
            self.st.upstream_recv_end(idx, !failed, failed);
        }
    }

    fn drain_sends(&mut self) {
        loop {
            let Some((ud, res)) = self.epoll().done.pop() else {
                return;
            };
            self.st.sent(ud >> 32, ud as u32, res);
        }
    }
}
