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
//! Parked connections are also what levee gives up first under overload:
//! [`shed_oldest`] closes those parked longest ago, when descriptors run
//! short (docs/protection.md).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use slab::Slab;
use tokio::sync::Notify;

use crate::conn::{self, Client, ListenerCtx};
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
                        tokio::spawn(conn::serve_from(client, p.listener, p.served));
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

/// Sheds one idle connection of this worker when `open` client connections
/// reach `percent` of the descriptor limit, so that accepting goes on and
/// the oldest idle connections make room instead of `accept` failing.
pub fn shed_near_limit(open: usize, percent: u8) {
    let limit = descriptor_limit().saturating_mul(u64::from(percent)) / 100;
    if open as u64 >= limit {
        shed_oldest(1);
    }
}

/// Closes up to `n` of this worker's parked connections, those parked
/// longest first, to free descriptors near the limit. Returns how many it
/// closed. An idle keep-alive connection can be closed at any time
/// (RFC 9112 §9.6): the client opens a new one for its next request.
pub fn shed_oldest(n: usize) -> usize {
    let shed = PARKING.with(|p| {
        let p = &mut *p.borrow_mut();
        let mut shed = 0;
        while shed < n {
            let Some((slot, generation)) = p.order.pop_front() else {
                break;
            };
            if p.slab
                .get(slot as usize)
                .is_some_and(|e| e.generation == generation)
            {
                let parked = p.slab.remove(slot as usize);
                parked.listener.conns.set_idle(false);
                drop(parked);
                shed += 1;
            }
        }
        shed
    });
    levee_protect::metrics::counters()
        .shed_idle
        .fetch_add(shed as u64, std::sync::atomic::Ordering::Relaxed);
    shed
}
