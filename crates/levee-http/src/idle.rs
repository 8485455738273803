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

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use slab::Slab;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::conn::{self, Client, ListenerCtx};

/// How long a keep-alive connection waits in its task before parking.
pub const PARK_AFTER: Duration = Duration::from_millis(100);
/// How often parked connections are checked for their keep-alive deadline.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Parked {
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerCtx>,
    served: u64,
    deadline: Instant,
    generation: u32,
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
}

thread_local! {
    static PARKING: RefCell<Parking> = RefCell::new(Parking {
        slab: Slab::new(),
        ready: Arc::new(Ready::default()),
        generation: 0,
    });
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
        let waker = Waker::from(Arc::new(SlotWaker {
            slot: u32::try_from(entry.key()).unwrap_or(u32::MAX),
            generation,
            ready,
        }));
        let mut cx = Context::from_waker(&waker);
        if client.stream.poll_read_ready(&mut cx).is_ready() {
            return Some(client);
        }
        entry.insert(Parked {
            stream: client.stream,
            peer: client.peer,
            listener,
            served,
            deadline,
            generation,
        });
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
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut woken = Vec::new();
    loop {
        tokio::select! {
            _ = ready.notify.notified() => {
                std::mem::swap(&mut woken, &mut *match ready.slots.lock() {
                    Ok(g) => g,
                    Err(poisoned) => poisoned.into_inner(),
                });
                for (slot, generation) in woken.drain(..) {
                    if let Some(p) = take(slot as usize, generation) {
                        let client = Client { stream: p.stream, peer: p.peer, buf: bytes::BytesMut::new() };
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
            Some(entry) if entry.generation == generation => Some(p.slab.remove(slot)),
            _ => None,
        }
    })
}

fn expire(now: Instant) {
    PARKING.with(|p| {
        p.borrow_mut()
            .slab
            .retain(|_, entry| entry.deadline > now && !entry.listener.shared.draining());
    });
}
