//! Parked keep-alive connections: idle connections without a task.
//!
//! A tokio task costs at least a 128-byte-aligned cell plus its future, about
//! 0.7 KB for a connection's. A keep-alive connection idle for longer than
//! [`PARK_AFTER`] therefore gives up its task: its socket moves into this
//! worker's slab with a 32-byte waker registered for readability. When the
//! client sends again, the waker queues the slot and the worker's dispatcher
//! starts a new task for it. What a parked connection costs is its slab
//! entry, its waker and tokio's registration (measured in bench/README.md).
//!
//! Busy connections never park: a request that follows its predecessor
//! within `PARK_AFTER` is served by the same task, so the hot path pays
//! nothing for this.
//!
//! A new connection that has sent nothing parks the same way ([`first_byte`]),
//! so a flood of connections that never speak costs a slab entry each, not
//! a task.
//!
//! Parked connections are also what levee gives up first under overload:
//! [`shed_oldest`] closes those parked longest ago, keep-alive or silent
//! alike (as nginx reuses its oldest idle connections), when descriptors
//! run short, and while they do the wait for a request head is shortened
//! ([`head_limit`]; docs/protection.md).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use slab::Slab;
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::conn;
use crate::exchange::Client;
use crate::listener::{FirstSteps, ListenerCtx};
use crate::stream::ClientStream;

/// How long a keep-alive connection waits in its task before parking: it
/// parks at the second of this worker's park ticks it sees, so after 100 to
/// 200 ms of quiet.
pub const PARK_AFTER: Duration = Duration::from_millis(100);
/// How often parked connections are checked for their keep-alive deadline.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Parked {
    stream: ClientStream,
    peer: SocketAddr,
    listener: Arc<ListenerCtx>,
    served: u64,
    deadline: Instant,
    generation: u32,
    permit: Option<levee_protect::ConnPermit>,
}

/// The allocator's trim, set by the binary (which owns the allocator).
static TRIM: std::sync::OnceLock<fn(bool)> = std::sync::OnceLock::new();

/// Sets the workers' memory trim (its argument: purge everything free now,
/// rather than only what has been free for the allocator's delay). The
/// first call wins.
pub fn set_trim(trim: fn(bool)) {
    let _ = TRIM.set(trim);
}

/// Gives this thread's freed allocator pages back to the system. An
/// allocator returns them only when the thread next calls it after a
/// delay, and a worker whose connections all parked calls it no more: a
/// burst's request state stayed resident (0.3 KB per parked connection
/// after 15,000 connections, bench/README.md). Forced at a park tick when
/// connections parked and none resumed (`settling`), and unforced once a
/// second by the worker, which costs nothing measurable under load.
pub fn trim(force: bool) {
    // The worker's kept buffers first, so their pages are freed too.
    crate::reuse::sweep(force);
    if let Some(trim) = TRIM.get() {
        trim(force);
    }
}

/// Slots whose sockets became readable, and the dispatcher to wake.
#[derive(Default)]
struct Ready {
    slots: Mutex<Vec<(u32, u32)>>,
    notify: Notify,
}

struct SlotWaker {
    slot: u32,
    generation: u32,
    ready: Arc<Ready>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut slots = match self.ready.slots.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.push((self.slot, self.generation));
        drop(slots);
        self.ready.notify.notify_one();
    }
}

struct Parking {
    slab: Slab<Parked>,
    ready: Arc<Ready>,
    generation: u32,
    /// Slots in the order they were parked, oldest first, for shedding.
    /// Entries of connections that left are skipped when met and dropped
    /// by the sweep.
    order: VecDeque<(u32, u32)>,
    /// Since the last park tick, a connection parked (its task was freed)
    /// and none resumed: the worker is settling, not churning.
    parked_since_tick: bool,
    resumed_since_tick: bool,
}

thread_local! {
    /// The worker's park tick, sounded every `PARK_AFTER` by the dispatcher.
    /// One shared tick instead of a timer per waiting connection: a tokio
    /// timer due sooner than the driver's next wake-up makes tokio write its
    /// eventfd, and a 100 ms timer per request did that for one request in
    /// two under load (an extra `write` and `epoll_wait` each). Leaked once
    /// per worker thread, which lives as long as the process.
    static TICK: &'static Notify = Box::leak(Box::new(Notify::new()));

    static PARKING: RefCell<Parking> = RefCell::new(Parking {
        slab: Slab::new(),
        ready: Arc::new(Ready::default()),
        generation: 0,
        order: VecDeque::new(),
        parked_since_tick: false,
        resumed_since_tick: false,
    });
}

/// Resolves at this worker's second park tick from now: after `PARK_AFTER`
/// to twice that.
pub async fn quiet() {
    let tick = TICK.with(|t| *t);
    tick.notified().await;
    tick.notified().await;
}

/// Parks an idle connection until it is readable or `deadline` passes.
/// Returns the client if it is already readable (the caller serves it).
pub fn park(
    client: Client,
    listener: Arc<ListenerCtx>,
    served: u64,
    deadline: Instant,
) -> Option<Client> {
    PARKING.with(|p| {
        let mut p = p.borrow_mut();
        p.generation = p.generation.wrapping_add(1);
        let generation = p.generation;
        let ready = p.ready.clone();
        let entry = p.slab.vacant_entry();
        let slot = u32::try_from(entry.key()).unwrap_or(u32::MAX);
        let waker = Waker::from(Arc::new(SlotWaker {
            slot,
            generation,
            ready,
        }));
        let mut cx = Context::from_waker(&waker);
        // A stream without a socket of its own (HTTP/2) never parks.
        let tcp = client.stream.tcp();
        if tcp.is_none_or(|tcp| tcp.poll_read_ready(&mut cx).is_ready()) {
            return Some(client);
        }
        // Counted for the dashboard's idle connections per listener: once
        // per idle period, never per request.
        listener.conns.set_idle(true);
        entry.insert(Parked {
            stream: client.stream,
            peer: client.peer,
            listener,
            served,
            deadline,
            generation,
            permit: client.permit,
        });
        p.order.push_back((slot, generation));
        p.parked_since_tick = true;
        None
    })
}

/// Waits for a new connection's first byte, before anything else is done
/// with it (PROXY header, TLS handshake, HTTP). Returns the client once a
/// byte is there; `None` when it closed, sent nothing in time, or was
/// parked: after the worker's second park tick without a byte (at once
/// near the descriptor limit) it waits in the slab like an idle keep-alive
/// connection, and [`dispatcher`] serves it anew (`conn::serve_from` with
/// nothing served) when the byte comes.
///
/// It must send within `timeouts.request_head` ([`head_limit`] near the
/// descriptor limit), and within `handshake_timeout` on a TLS listener if
/// that is shorter. No timer is armed for the wait.
///
/// `before_http` are the listener's steps before HTTP (TLS, PROXY header)
/// when it has any, and `h2c` whether it looks for the HTTP/2 preface: as
/// the caller read them, so the bytes are left where the next step expects
/// them. tokio reports a new socket readable before anything has arrived,
/// so the wait looks: where HTTP/1 comes first the bytes are read into
/// `client.buf` (the read the request head needs anyway, so a client that
/// sends at once costs no extra syscall); elsewhere one byte is peeked,
/// and the next step reads it.
pub async fn first_byte(
    mut client: Client,
    listener: &Arc<ListenerCtx>,
    before_http: Option<&FirstSteps>,
    h2c: bool,
) -> Option<Client> {
    let handshake = before_http
        .and_then(|s| s.tls.as_ref())
        .map(|t| t.handshake_timeout);
    let limit_now = || {
        let head = head_limit(listener.shared.site.load().timeouts.request_head);
        handshake.map_or(head, |h| head.min(h))
    };
    let limit = limit_now();
    let http_first = before_http.is_none() && !h2c;
    // A new connection is always plain TCP here; anything else has spoken.
    let ClientStream::Plain(tcp) = &mut client.stream else {
        return Some(client);
    };
    let buf = &mut client.buf;
    // Reads through tokio's `poll_read`, as `conn::read_head` does: it
    // waits past a readiness that was not real, and a short read clears
    // the readiness, so the keep-alive wait after this request really waits.
    let arrived = async {
        if http_first {
            buf.reserve(crate::conn::HEAD_CHUNK);
            matches!(tcp.read_buf(buf).await, Ok(n) if n > 0)
        } else {
            let mut one = [0u8; 1];
            matches!(tcp.peek(&mut one).await, Ok(n) if n > 0)
        }
    };
    // Near the descriptor limit it parks at once, so that every silent
    // connection can be shed: in its task it could not be, and a flood of
    // new ones would leave `accept` nothing to make room with.
    let settle = async {
        if !PRESSED.load(Ordering::Relaxed) {
            quiet().await;
        }
    };
    let arrived = if limit <= PARK_AFTER {
        Some(tokio::time::timeout(limit, arrived).await.unwrap_or(false))
    } else {
        tokio::select! {
            biased;
            got = arrived => Some(got),
            () = settle => None,
        }
    };
    match arrived {
        Some(true) => return Some(client),
        Some(false) => return None,
        None => {}
    }
    // Parked without a buffer. The wait took one to two park ticks; the
    // limit is read again, as descriptors may have run short meanwhile.
    client.buf = bytes::BytesMut::new();
    let deadline = Instant::now() + limit_now().saturating_sub(PARK_AFTER);
    park(client, listener.clone(), 0, deadline)
}

/// Parked connections on this worker.
pub fn parked() -> usize {
    PARKING.with(|p| p.borrow().slab.len())
}

/// Runs on each worker: resumes parked connections that became readable and
/// closes those past their deadline (or all of them when levee is stopping).
pub async fn dispatcher() {
    let ready = PARKING.with(|p| p.borrow().ready.clone());
    let tick = TICK.with(|t| *t);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut park = tokio::time::interval(PARK_AFTER);
    let mut woken = Vec::new();
    loop {
        tokio::select! {
            _ = park.tick() => {
                tick.notify_waiters();
                if settling() {
                    trim(true);
                }
            }
            _ = ready.notify.notified() => {
                std::mem::swap(&mut woken, &mut *match ready.slots.lock() {
                    Ok(g) => g,
                    Err(poisoned) => poisoned.into_inner(),
                });
                for (slot, generation) in woken.drain(..) {
                    if let Some(p) = take(slot as usize, generation) {
                        let client = Client {
                            stream: p.stream,
                            peer: p.peer,
                            buf: bytes::BytesMut::new(),
                            permit: p.permit,
                            hsts: p.listener.steps.load().tls.as_ref().and_then(|t| t.hsts),
                        };
                        let span = conn::span(p.listener.addr, p.peer);
                        tokio::spawn(
                            conn::serve_from(client, p.listener, p.served).instrument(span),
                        );
                    }
                }
            }
            _ = sweep.tick() => expire(Instant::now()),
        }
    }
}

fn take(slot: usize, generation: u32) -> Option<Parked> {
    PARKING.with(|p| {
        let mut p = p.borrow_mut();
        match p.slab.get(slot) {
            Some(entry) if entry.generation == generation => {
                p.resumed_since_tick = true;
                let parked = p.slab.remove(slot);
                parked.listener.conns.set_idle(false);
                Some(parked)
            }
            _ => None,
        }
    })
}

/// Connections parked since the last tick and none resumed: the moment to
/// give their freed tasks back at once. A worker whose clients come and go
/// (parking and resuming every tick) is left to the unforced trim, since
/// forcing it each tick cost 4–8 % CPU per request there.
fn settling() -> bool {
    PARKING.with(|p| {
        let p = &mut *p.borrow_mut();
        let settling = p.parked_since_tick && !p.resumed_since_tick;
        p.parked_since_tick = false;
        p.resumed_since_tick = false;
        settling
    })
}

fn expire(now: Instant) {
    // Connections close without new ones arriving: the pressure is
    // re-read here too, not only at accept.
    let at = SHED_AT.load(Ordering::Relaxed);
    if at > 0 {
        set_pressed(levee_protect::conns::open_all() as u64 >= at);
    }
    PARKING.with(|p| {
        let p = &mut *p.borrow_mut();
        p.slab.retain(|_, entry| {
            let keep = entry.deadline > now && !entry.listener.shared.draining();
            if !keep {
                entry.listener.conns.set_idle(false);
            }
            keep
        });
        let slab = &p.slab;
        p.order.retain(|&(slot, generation)| {
            slab.get(slot as usize)
                .is_some_and(|e| e.generation == generation)
        });
    });
}

/// The process's descriptor limit (`RLIMIT_NOFILE`, soft), read once.
pub fn descriptor_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX)
    })
}

/// Open client connections at which levee is near the descriptor limit
/// (`shed_idle_at` percent of it); 0 until the first accept sets it.
static SHED_AT: AtomicU64 = AtomicU64::new(0);
/// Whether open client connections are at [`SHED_AT`] or above. Written only
/// when it changes, so reading it per request costs a load from a line
/// every core keeps cached.
static PRESSED: AtomicBool = AtomicBool::new(false);

fn set_pressed(pressed: bool) {
    if PRESSED.load(Ordering::Relaxed) != pressed {
        PRESSED.store(pressed, Ordering::Relaxed);
    }
}

/// The wait allowed for a request head (and for a new connection's first
/// byte): `request_head`, or near the descriptor limit a tenth of it, at
/// least 1 s (or `request_head` itself when shorter), so that connections
/// that hold a descriptor without completing a request give it back
/// sooner, as HAProxy's `timeout http-request` is meant to be set short
/// under attack. A connection keeps the limit it started waiting with.
pub fn head_limit(request_head: Duration) -> Duration {
    if PRESSED.load(Ordering::Relaxed) {
        pressed_head_limit(request_head)
    } else {
        request_head
    }
}

/// [`head_limit`] near the descriptor limit.
fn pressed_head_limit(request_head: Duration) -> Duration {
    (request_head / 10)
        .max(Duration::from_secs(1))
        .min(request_head)
}

/// Sheds one parked connection of this worker when `open` client connections
/// reach `percent` of the descriptor limit, so that accepting goes on and
/// the oldest idle connections make room instead of `accept` failing.
pub fn shed_near_limit(open: usize, percent: u8) {
    let at = descriptor_limit().saturating_mul(u64::from(percent)) / 100;
    if SHED_AT.load(Ordering::Relaxed) != at {
        SHED_AT.store(at, Ordering::Relaxed);
    }
    let pressed = open as u64 >= at;
    set_pressed(pressed);
    if pressed {
        shed_oldest(1);
    }
}

/// Closes up to `n` of this worker's parked connections, those parked
/// longest first, to free descriptors near the limit. Returns how many it
/// closed. An idle keep-alive connection can be closed at any time
/// (RFC 9112 §9.6): the client opens a new one for its next request. A
/// connection that has sent nothing yet has asked for nothing.
pub fn shed_oldest(n: usize) -> usize {
    let (idle, silent) = PARKING.with(|p| {
        let p = &mut *p.borrow_mut();
        let (mut idle, mut silent) = (0usize, 0usize);
        while idle + silent < n {
            let Some((slot, generation)) = p.order.pop_front() else {
                break;
            };
            if p.slab
                .get(slot as usize)
                .is_some_and(|e| e.generation == generation)
            {
                let shed = p.slab.remove(slot as usize);
                shed.listener.conns.set_idle(false);
                if shed.served == 0 {
                    silent += 1;
                } else {
                    idle += 1;
                }
            }
        }
        (idle, silent)
    });
    let counters = levee_protect::metrics::counters();
    counters.shed_idle.fetch_add(idle as u64, Ordering::Relaxed);
    counters
        .shed_silent
        .fetch_add(silent as u64, Ordering::Relaxed);
    idle + silent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_limit_shortens_under_pressure() {
        let s = Duration::from_secs;
        assert_eq!(pressed_head_limit(s(10)), s(1));
        assert_eq!(pressed_head_limit(s(60)), s(6));
        // Never below 1 s, unless request_head itself is.
        assert_eq!(pressed_head_limit(s(5)), s(1));
        assert_eq!(
            pressed_head_limit(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }
}
