//! One worker: one ring, one listener, its clients and its pool of keep-alive
//! upstream connections. Every loop turn makes one `io_uring_enter` call,
//! which submits all the operations queued in the previous turn (sends,
//! re-armed receives) and waits for completions.
//!
//! Operations in flight: one multishot accept; one multishot receive per
//! connection, which takes a buffer from the worker's provided ring only when
//! data arrives; at most one send per connection. A slot is freed only when
//! none of its operations is in flight, so a completion always finds the
//! connection it was made for and a send's buffer outlives the send.

use crate::bufring::BufRing;
use crate::epoll::Epoll;
use crate::http;
use crate::out::{Out, Pool, BUF_SIZE};
use crate::sock;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;

pub const ACCEPT: u64 = 0;
pub const CLIENT_RECV: u64 = 1;
pub const CLIENT_SEND: u64 = 2;
pub const UP_RECV: u64 = 3;
pub const UP_SEND: u64 = 4;
const NONE: u32 = u32::MAX;
const GROUP: u16 = 0;
/// 256 buffers of 4 KiB: 1 MiB per worker, whatever the connection count.
/// A buffer is given back in the loop turn that received into it, so 256
/// cover 256 receives completing between two submissions; beyond that a
/// receive ends with ENOBUFS and is re-armed.
const BUFFERS: u16 = 256;

/// Puts `item` in a free slot of `slab` (or a new one) and returns its index.
fn insert<T>(slab: &mut Vec<T>, free: &mut Vec<u32>, item: T) -> u32 {
    match free.pop() {
        Some(i) => {
            slab[i as usize] = item;
            i
        }
        None => {
            slab.push(item);
            (slab.len() - 1) as u32
        }
    }
}

pub fn user_data(kind: u64, idx: u32) -> u64 {
    kind << 32 | u64::from(idx)
}

#[derive(Default)]
pub struct Client {
    pub fd: RawFd,
    pub live: bool,
    closing: bool,
    recv_live: bool,
    /// The client's address as text, made once per connection.
    peer: [u8; 15],
    peer_len: u8,
    /// Also in the ring's fixed-file table (see `State::fixed_half`).
    fixed: bool,
    /// A partial head, or bytes that came after a request still in flight.
    input: Vec<u8>,
    out: Out,
    /// The exchange in flight: its upstream connection and what is left to
    /// forward of the request body.
    upstream: u32,
    busy: bool,
    req: Option<http::Request>,
    req_body_left: u64,
    close_after: bool,
}

#[derive(Default)]
pub struct Upstream {
    pub fd: RawFd,
    pub live: bool,
    closing: bool,
    recv_live: bool,
    pooled: bool,
    fixed: bool,
    client: u32,
    input: Vec<u8>,
    out: Out,
    head_done: bool,
    body_left: u64,
    close_after: bool,
}

/// How the worker does its I/O: the prototype's ring, or epoll with plain
/// read/send calls (the twin that does the same user-space work, to tell the
/// ring's effect from the rest).
// One per worker: the size difference costs nothing, a box would cost a
// pointer chase per submission.
#[allow(clippy::large_enum_variant)]
pub enum Io {
    Uring(IoUring),
    Epoll(Epoll),
}

pub struct State {
    pub io: Io,
    listener: RawFd,
    upstream_addr: SocketAddrV4,
    /// With `--fixed-files`: half the size of the ring's fixed-file table,
    /// clients in the first half by slot index, upstreams in the second
    /// (0: off). A fixed file spares the kernel looking the descriptor up
    /// and taking a reference on every operation; registering costs one
    /// syscall per connection at open and one at close.
    fixed_half: u32,
    pub clients: Vec<Client>,
    free_clients: Vec<u32>,
    pub ups: Vec<Upstream>,
    free_ups: Vec<u32>,
    idle_ups: Vec<u32>,
    pool: Pool,
}

pub struct Worker {
    // Field order is drop order: the ring goes before the buffer memory it
    // was given.
    pub st: State,
    bufs: Option<BufRing>,
    cqes: Vec<(u64, i32, u32)>,
}

pub fn run(listener: RawFd, upstream: SocketAddrV4, epoll: bool, fixed: bool) -> io::Result<()> {
    let mut fixed_half = 0;
    let (io, bufs) = if epoll {
        (Io::Epoll(Epoll::new(listener)?), None)
    } else {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_cqsize(32768)
            .build(4096)?;
        let bufs = BufRing::new(&ring, GROUP, BUFFERS, BUF_SIZE)?;
        if fixed {
            // The kernel caps a ring's table at the descriptor limit.
            let half = (sock::nofile_limit() / 2).min(32768) as u32;
            ring.submitter().register_files_sparse(half * 2)?;
            fixed_half = half;
        }
        (Io::Uring(ring), Some(bufs))
    };
    let mut w = Worker {
        st: State {
            io,
            listener,
            upstream_addr: upstream,
            fixed_half,
            clients: Vec::new(),
            free_clients: Vec::new(),
            ups: Vec::new(),
            free_ups: Vec::new(),
            idle_ups: Vec::new(),
            pool: Pool::default(),
        },
        bufs,
        cqes: Vec::with_capacity(1024),
    };
    w.st.arm_accept();
    match w.bufs.take() {
        Some(bufs) => w.run_uring(bufs),
        None => w.run_epoll(),
    }
}

impl Worker {
    fn run_uring(&mut self, mut bufs: BufRing) -> io::Result<()> {
        let result = self.uring_loop(&mut bufs);
        // The ring (in `st`) must go before the memory registered with it.
        self.st.io = Io::Epoll(Epoll::closed());
        drop(bufs);
        result
    }

    fn uring_loop(&mut self, bufs: &mut BufRing) -> io::Result<()> {
        let Io::Uring(ring) = &mut self.st.io else {
            return Ok(());
        };
        let ring: *mut IoUring = ring;
        loop {
            bufs.publish();
            // SAFETY: `ring` points into `self.st.io`, which is not replaced
            // during the loop; the borrow is only for the calls below.
            let ring = unsafe { &mut *ring };
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            self.cqes.clear();
            self.cqes.extend(
                ring.completion()
                    .map(|e| (e.user_data(), e.result(), e.flags())),
            );
            for i in 0..self.cqes.len() {
                let (ud, res, flags) = self.cqes[i];
                self.complete(bufs, ud, res, flags);
            }
        }
    }

    fn complete(&mut self, bufs: &mut BufRing, ud: u64, res: i32, flags: u32) {
        let idx = ud as u32;
        let more = cqueue::more(flags);
        match ud >> 32 {
            ACCEPT => self.st.accepted(res, more),
            CLIENT_RECV | UP_RECV => {
                let client = ud >> 32 == CLIENT_RECV;
                if res > 0 {
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        let data = bufs.data(bid, res as usize);
                        if client {
                            self.st.client_data(idx, data);
                        } else {
                            self.st.upstream_data(idx, data);
                        }
                        bufs.give_back(bid);
                    }
                } else if let Some(bid) = cqueue::buffer_select(flags) {
                    bufs.give_back(bid);
                }
                // ENOBUFS: the ring ran dry; buffers are back by the next
                // submission, so re-arming is enough. EOF or an error closes.
                let failed = res == 0 || (res < 0 && res != -libc::ENOBUFS);
                if client {
                    self.st.client_recv_end(idx, more, failed);
                } else {
                    self.st.upstream_recv_end(idx, more, failed);
                }
            }
            kind => self.st.sent(kind, idx, res),
        }
    }
}

impl State {
    fn push(ring: &mut IoUring, e: squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points to lives until its
            // completion (see the module comment).
            if unsafe { ring.submission().push(&e) }.is_ok() {
                return;
            }
            // The queue is full: hand it to the kernel now.
            if ring.submit().is_err() {
                return;
            }
        }
    }

    fn arm_accept(&mut self) {
        match &mut self.io {
            Io::Uring(ring) => {
                let e = opcode::AcceptMulti::new(types::Fd(self.listener))
                    .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    .build()
                    .user_data(user_data(ACCEPT, 0));
                Self::push(ring, e);
            }
            // Registered once in Epoll::new.
            Io::Epoll(_) => {}
        }
    }

    fn arm_recv(&mut self, kind: u64, fd: RawFd, idx: u32) {
        let fixed_slot = self.fixed_slot(kind, idx);
        match &mut self.io {
            Io::Uring(ring) => {
                let e = match fixed_slot {
                    Some(slot) => opcode::RecvMulti::new(types::Fixed(slot), GROUP).build(),
                    None => opcode::RecvMulti::new(types::Fd(fd), GROUP).build(),
                };
                Self::push(ring, e.user_data(user_data(kind, idx)));
            }
            Io::Epoll(ep) => ep.watch(fd, user_data(kind, idx)),
        }
    }

    fn send(&mut self, kind: u64, idx: u32, fd: RawFd, ptr: *const u8, len: u32) {
        let fixed_slot = self.fixed_slot(kind, idx);
        match &mut self.io {
            Io::Uring(ring) => {
                let e = match fixed_slot {
                    Some(slot) => opcode::Send::new(types::Fixed(slot), ptr, len),
                    None => opcode::Send::new(types::Fd(fd), ptr, len),
                };
                let e = e.flags(libc::MSG_NOSIGNAL).build();
                Self::push(ring, e.user_data(user_data(kind, idx)));
            }
            Io::Epoll(ep) => ep.send(fd, user_data(kind, idx), ptr, len),
        }
    }

    /// The fixed-file slot of a connection registered in the table.
    fn fixed_slot(&self, kind: u64, idx: u32) -> Option<u32> {
        if kind == CLIENT_RECV || kind == CLIENT_SEND {
            let c = self.clients.get(idx as usize)?;
            c.fixed.then_some(idx)
        } else {
            let u = self.ups.get(idx as usize)?;
            u.fixed.then_some(self.fixed_half + idx)
        }
    }

    /// Puts `fd` in table slot `slot` (`fd` -1: empties it); whether it
    /// took.
    fn set_fixed(&mut self, slot: u32, fd: RawFd) -> bool {
        match &self.io {
            Io::Uring(ring) => ring.submitter().register_files_update(slot, &[fd]).is_ok(),
            Io::Epoll(_) => false,
        }
    }

    /// A send's completion (CLIENT_SEND or UP_SEND).
    pub fn sent(&mut self, kind: u64, idx: u32, res: i32) {
        match kind {
            CLIENT_SEND => self.client_sent(idx, res),
            UP_SEND => self.upstream_sent(idx, res),
            _ => {}
        }
    }

    pub fn accepted(&mut self, res: i32, more: bool) {
        if res >= 0 {
            self.new_client(res);
        }
        if !more {
            self.arm_accept();
        }
    }

    pub fn new_client(&mut self, fd: RawFd) {
        // Per connection, not per request: the peer's address (multishot
        // accept gives none) and TCP_NODELAY, as levee sets it.
        let (peer, peer_len) = sock::peer_text(fd);
        let _ = sock::set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        let c = Client {
            fd,
            live: true,
            recv_live: true,
            peer,
            peer_len,
            upstream: NONE,
            ..Client::default()
        };
        let idx = insert(&mut self.clients, &mut self.free_clients, c);
        if idx < self.fixed_half {
            self.clients[idx as usize].fixed = self.set_fixed(idx, fd);
        }
        self.arm_recv(CLIENT_RECV, fd, idx);
    }

    pub fn client_data(&mut self, idx: u32, data: &[u8]) {
        let c = &mut self.clients[idx as usize];
        if c.closing {
            return;
        }
        if c.busy {
            let k = (c.req_body_left.min(data.len() as u64)) as usize;
            c.req_body_left -= k as u64;
            if k < data.len() {
                c.input.extend_from_slice(&data[k..]);
            }
            if k > 0 {
                let up = c.upstream;
                let u = &mut self.ups[up as usize];
                u.out.queue(&mut self.pool).extend_from_slice(&data[..k]);
                self.flush_upstream(up);
            }
            return;
        }
        if c.input.is_empty() {
            let used = self.start_exchange(idx, data);
            let c = &mut self.clients[idx as usize];
            if used < data.len() && !c.closing {
                c.input.extend_from_slice(&data[used..]);
            }
        } else {
            c.input.extend_from_slice(data);
            self.next_pipelined(idx);
        }
    }

    /// Starts the exchanges waiting in the client's input, one at a time.
    fn next_pipelined(&mut self, idx: u32) {
        let c = &mut self.clients[idx as usize];
        if c.busy || c.closing || c.input.is_empty() {
            return;
        }
        let input = std::mem::take(&mut c.input);
        let used = self.start_exchange(idx, &input);
        let mut input = input;
        input.drain(..used.min(input.len()));
        let c = &mut self.clients[idx as usize];
        if input.is_empty() {
            drop(input);
        } else {
            c.input = input;
        }
    }

    /// Parses a request head at the start of `buf` and forwards it; returns
    /// the bytes used (0: the head is not complete).
    fn start_exchange(&mut self, idx: u32, buf: &[u8]) -> usize {
        let up = match self.idle_upstream() {
            Some(up) => up,
            None => match self.connect() {
                Ok(up) => up,
                Err(_) => {
                    self.refuse(idx, http::BAD_GATEWAY);
                    return buf.len();
                }
            },
        };
        let c = &self.clients[idx as usize];
        let peer = &c.peer[..usize::from(c.peer_len)];
        let u = &mut self.ups[up as usize];
        let out = u.out.queue(&mut self.pool);
        match http::forward_request(buf, peer, out) {
            Ok(None) => {
                self.park_upstream(up);
                0
            }
            Err(reply) => {
                self.park_upstream(up);
                self.refuse(idx, reply);
                buf.len()
            }
            Ok(Some(req)) => {
                let body = (req.body_len.min((buf.len() - req.head_len) as u64)) as usize;
                out.extend_from_slice(&buf[req.head_len..req.head_len + body]);
                u.client = idx;
                u.head_done = false;
                let c = &mut self.clients[idx as usize];
                c.req_body_left = req.body_len - body as u64;
                c.close_after = req.close;
                c.upstream = up;
                c.busy = true;
                let used = req.head_len + body;
                c.req = Some(req);
                self.flush_upstream(up);
                used
            }
        }
    }

    fn refuse(&mut self, idx: u32, reply: &'static [u8]) {
        let c = &mut self.clients[idx as usize];
        c.out.queue(&mut self.pool).extend_from_slice(reply);
        c.close_after = true;
        c.input.clear();
        self.flush_client(idx);
    }

    fn idle_upstream(&mut self) -> Option<u32> {
        while let Some(up) = self.idle_ups.pop() {
            let u = &mut self.ups[up as usize];
            if u.pooled && u.live && !u.closing {
                u.pooled = false;
                return Some(up);
            }
        }
        None
    }

    /// Back to the pool: an upstream taken for a head that was not complete
    /// or was refused, or whose exchange ended cleanly.
    fn park_upstream(&mut self, up: u32) {
        let u = &mut self.ups[up as usize];
        u.client = NONE;
        u.pooled = true;
        if u.out.idle() {
            u.out.release(&mut self.pool);
        }
        self.idle_ups.push(up);
    }

    fn connect(&mut self) -> io::Result<u32> {
        let fd = sock::connect(self.upstream_addr)?;
        let u = Upstream {
            fd,
            live: true,
            recv_live: true,
            client: NONE,
            ..Upstream::default()
        };
        let idx = insert(&mut self.ups, &mut self.free_ups, u);
        if idx < self.fixed_half {
            self.ups[idx as usize].fixed = self.set_fixed(self.fixed_half + idx, fd);
        }
        self.arm_recv(UP_RECV, fd, idx);
        Ok(idx)
    }

    pub fn upstream_data(&mut self, up: u32, data: &[u8]) {
        let u = &mut self.ups[up as usize];
        if u.closing {
            return;
        }
        let ci = u.client;
        if ci == NONE {
            // Bytes from an idle upstream belong to no request.
            self.close_upstream(up);
            return;
        }
        let mut rest = data;
        if !u.head_done {
            let held = !u.input.is_empty();
            if held {
                u.input.extend_from_slice(data);
            }
            let buf = if held {
                std::mem::take(&mut u.input)
            } else {
                Vec::new()
            };
            let head_src: &[u8] = if held { &buf } else { data };
            let c = &mut self.clients[ci as usize];
            let Some(req) = c.req.as_ref() else {
                self.close_upstream(up);
                return;
            };
            let out = c.out.queue(&mut self.pool);
            match http::relay_response(head_src, req, out) {
                Ok(None) => {
                    let u = &mut self.ups[up as usize];
                    if held {
                        u.input = buf;
                    } else {
                        u.input.extend_from_slice(data);
                    }
                    return;
                }
                Err(reply) => {
                    out.extend_from_slice(reply);
                    c.close_after = true;
                    self.flush_client(ci);
                    self.close_upstream(up);
                    return;
                }
                Ok(Some(resp)) => {
                    let u = &mut self.ups[up as usize];
                    u.head_done = true;
                    u.body_left = resp.body_len;
                    u.close_after = resp.close;
                    if held {
                        let body = &buf[resp.head_len..];
                        let k = (u.body_left.min(body.len() as u64)) as usize;
                        u.body_left -= k as u64;
                        out.extend_from_slice(&body[..k]);
                        self.pool.give(buf);
                        rest = &[];
                    } else {
                        rest = &data[resp.head_len..];
                    }
                }
            }
        }
        let u = &mut self.ups[up as usize];
        let k = (u.body_left.min(rest.len() as u64)) as usize;
        u.body_left -= k as u64;
        if k < rest.len() {
            // More than the response: the upstream cannot be reused.
            u.close_after = true;
        }
        let done = u.body_left == 0;
        if k > 0 {
            let c = &mut self.clients[ci as usize];
            c.out.queue(&mut self.pool).extend_from_slice(&rest[..k]);
        }
        self.flush_client(ci);
        if done {
            self.finish_exchange(up, ci);
        }
    }

    fn finish_exchange(&mut self, up: u32, ci: u32) {
        let u = &mut self.ups[up as usize];
        let c = &mut self.clients[ci as usize];
        c.busy = false;
        c.upstream = NONE;
        c.req = None;
        // A request body not yet all sent leaves the upstream mid-message.
        if u.close_after || c.req_body_left > 0 {
            c.req_body_left = 0;
            u.client = NONE;
            self.close_upstream(up);
        } else {
            self.park_upstream(up);
        }
        let c = &self.clients[ci as usize];
        if c.close_after {
            self.maybe_close_after(ci);
        } else {
            self.next_pipelined(ci);
        }
    }

    fn flush_client(&mut self, idx: u32) {
        let c = &mut self.clients[idx as usize];
        if let Some((ptr, len)) = c.out.next() {
            let fd = c.fd;
            self.send(CLIENT_SEND, idx, fd, ptr, len);
        }
    }

    fn flush_upstream(&mut self, idx: u32) {
        let u = &mut self.ups[idx as usize];
        if let Some((ptr, len)) = u.out.next() {
            let fd = u.fd;
            self.send(UP_SEND, idx, fd, ptr, len);
        }
    }

    fn client_sent(&mut self, idx: u32, res: i32) {
        let c = &mut self.clients[idx as usize];
        if res < 0 {
            c.out.inflight = false;
            self.close_client(idx);
            return;
        }
        c.out.done(res as usize, &mut self.pool);
        if c.closing {
            self.maybe_free_client(idx);
            return;
        }
        self.flush_client(idx);
        self.maybe_close_after(idx);
    }

    fn maybe_close_after(&mut self, idx: u32) {
        let c = &self.clients[idx as usize];
        if c.close_after && !c.busy && c.out.idle() {
            self.close_client(idx);
        }
    }

    fn upstream_sent(&mut self, idx: u32, res: i32) {
        let u = &mut self.ups[idx as usize];
        if res < 0 {
            u.out.inflight = false;
            self.close_upstream(idx);
            return;
        }
        u.out.done(res as usize, &mut self.pool);
        if u.closing {
            self.maybe_free_upstream(idx);
            return;
        }
        self.flush_upstream(idx);
    }

    pub fn client_recv_end(&mut self, idx: u32, more: bool, failed: bool) {
        let c = &mut self.clients[idx as usize];
        if !more {
            c.recv_live = false;
        }
        if failed {
            self.close_client(idx);
        } else if !more && !c.closing {
            c.recv_live = true;
            let fd = c.fd;
            self.arm_recv(CLIENT_RECV, fd, idx);
        }
        self.maybe_free_client(idx);
    }

    pub fn upstream_recv_end(&mut self, idx: u32, more: bool, failed: bool) {
        let u = &mut self.ups[idx as usize];
        if !more {
            u.recv_live = false;
        }
        if failed {
            let ci = u.client;
            if ci != NONE && !u.closing {
                // The upstream went away mid-exchange: the client gets a 502
                // if nothing was sent yet, else only the close.
                let head_done = u.head_done;
                let c = &mut self.clients[ci as usize];
                if !head_done {
                    c.out
                        .queue(&mut self.pool)
                        .extend_from_slice(http::BAD_GATEWAY);
                    c.busy = false;
                    c.close_after = true;
                    self.flush_client(ci);
                } else {
                    self.close_client(ci);
                }
            }
            self.close_upstream(idx);
        } else if !more && !u.closing {
            u.recv_live = true;
            let fd = u.fd;
            self.arm_recv(UP_RECV, fd, idx);
        }
        self.maybe_free_upstream(idx);
    }

    /// Starts closing a client: shutdown ends its receive in the kernel; the
    /// slot is freed when nothing of it is in flight.
    fn close_client(&mut self, idx: u32) {
        let c = &mut self.clients[idx as usize];
        if c.closing || !c.live {
            return;
        }
        c.closing = true;
        // SAFETY: the client's own descriptor, still open.
        unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
        let up = c.upstream;
        c.upstream = NONE;
        c.busy = false;
        if up != NONE {
            self.ups[up as usize].client = NONE;
            self.close_upstream(up);
        }
        self.maybe_free_client(idx);
    }

    fn maybe_free_client(&mut self, idx: u32) {
        let c = &mut self.clients[idx as usize];
        if c.live && c.closing && !c.recv_live && !c.out.inflight {
            if c.fixed {
                // The table holds a reference: the socket closes only when
                // both it and the descriptor are gone.
                self.set_fixed(idx, -1);
            }
            let c = &mut self.clients[idx as usize];
            // SAFETY: nothing of this descriptor is in flight any more.
            unsafe { libc::close(c.fd) };
            c.out.release(&mut self.pool);
            *c = Client::default();
            self.free_clients.push(idx);
        }
    }

    fn close_upstream(&mut self, idx: u32) {
        let u = &mut self.ups[idx as usize];
        if u.closing || !u.live {
            return;
        }
        u.closing = true;
        u.pooled = false;
        // SAFETY: the upstream's own descriptor, still open.
        unsafe { libc::shutdown(u.fd, libc::SHUT_RDWR) };
        self.maybe_free_upstream(idx);
    }

    fn maybe_free_upstream(&mut self, idx: u32) {
        let u = &mut self.ups[idx as usize];
        if u.live && u.closing && !u.recv_live && !u.out.inflight {
            if u.fixed {
                self.set_fixed(self.fixed_half + idx, -1);
            }
            let u = &mut self.ups[idx as usize];
            // SAFETY: nothing of this descriptor is in flight any more.
            unsafe { libc::close(u.fd) };
            u.out.release(&mut self.pool);
            *u = Upstream::default();
            self.free_ups.push(idx);
        }
    }
}
