//! Buffers a worker keeps for its next requests, so that the plain proxy
//! path allocates nothing per request once warm (bench/allocs.py): the
//! client's read buffer, the server's response buffer, the heads levee
//! writes (the request sent upstream, then the response head for the
//! client, usually the same vector) and the field lists of parsed heads.
//!
//! A connection holds none of them between requests: it gives them back
//! here, and takes them again when its next request comes. The worker
//! keeps at most [`KEPT`] of each kind, and drops them all when it
//! settles (connections parked, none resumed, `idle.rs`) or when a second
//! passed in which none was taken, just before the allocator is trimmed:
//! idle memory per connection is what it was (bench/README.md).

use std::cell::{Cell, RefCell};

use bytes::BytesMut;

use crate::message::Field;

/// The most of each kind a worker keeps: one per connection of a busy
/// worker's share of 64 (what bench.py's wrk opens), 1.3 MiB at most.
const KEPT: usize = 64;

/// Which read buffer: they differ in size.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Read {
    /// A client's request heads (`conn.rs`'s `HEAD_CHUNK`).
    Client,
    /// A server's response heads and first body bytes (`proxy/h1.rs`).
    Server,
}

struct Stash {
    client: Vec<BytesMut>,
    server: Vec<BytesMut>,
    heads: Vec<Vec<u8>>,
    fields: Vec<Vec<Field>>,
}

thread_local! {
    static STASH: RefCell<Stash> = const { RefCell::new(Stash::new()) };
    /// Something was taken since the last [`sweep`].
    static USED: Cell<bool> = const { Cell::new(false) };
}

impl Stash {
    const fn new() -> Stash {
        Stash {
            client: Vec::new(),
            server: Vec::new(),
            heads: Vec::new(),
            fields: Vec::new(),
        }
    }

    fn reads(&mut self, kind: Read) -> &mut Vec<BytesMut> {
        match kind {
            Read::Client => &mut self.client,
            Read::Server => &mut self.server,
        }
    }
}

/// An empty read buffer with room for `size` bytes, kept or new.
pub(crate) fn read_buf(kind: Read, size: usize) -> BytesMut {
    let kept = STASH.with(|s| s.borrow_mut().reads(kind).pop());
    USED.set(true);
    if let Some(mut buf) = kept
        && buf.try_reclaim(size)
    {
        return buf;
    }
    BytesMut::with_capacity(size)
}

/// Gives a read buffer back. Kept only if no `Bytes` split from it is
/// still alive (a head parsed from it), so the whole of it is free again,
/// and it was not grown far past `size` (a large head's).
pub(crate) fn give_read(kind: Read, mut buf: BytesMut, size: usize) {
    buf.clear();
    if buf.capacity() > 4 * size || !buf.try_reclaim(size) {
        return;
    }
    STASH.with(|s| {
        let mut s = s.borrow_mut();
        let kept = s.reads(kind);
        if kept.len() < KEPT {
            kept.push(buf);
        }
    });
}

/// An empty vector for a head levee writes, with room for `size` bytes.
pub(crate) fn head(size: usize) -> Vec<u8> {
    let kept = STASH.with(|s| s.borrow_mut().heads.pop());
    USED.set(true);
    let mut head = kept.unwrap_or_default();
    head.reserve(size);
    head
}

/// Gives a head's vector back (cleared here).
pub(crate) fn give_head(mut head: Vec<u8>) {
    if head.capacity() == 0 || head.capacity() > 64 * 1024 {
        return;
    }
    head.clear();
    STASH.with(|s| {
        let mut s = s.borrow_mut();
        if s.heads.len() < KEPT {
            s.heads.push(head);
        }
    });
}

/// An empty list for a parsed head's fields.
pub(crate) fn fields() -> Vec<Field> {
    USED.set(true);
    STASH.with(|s| s.borrow_mut().fields.pop().unwrap_or_default())
}

/// Gives a field list back (cleared here).
pub(crate) fn give_fields(mut list: Vec<Field>) {
    if list.capacity() == 0 || list.capacity() > 1024 {
        return;
    }
    list.clear();
    // A thread's last destructors may run after its stash is gone.
    let _ = STASH.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut()
            && s.fields.len() < KEPT
        {
            s.fields.push(list);
        }
    });
}

/// Drops what the worker keeps: at once when `settled`, else only if
/// nothing was taken since the last call (a second, from the worker's
/// trim).
pub(crate) fn sweep(settled: bool) {
    if USED.replace(false) && !settled {
        return;
    }
    let _ = STASH.try_with(|s| *s.borrow_mut() = Stash::new());
}

/// A server's read buffer (a response head and the first body bytes),
/// given back when dropped: by then the response read into it is relayed.
#[derive(Debug)]
pub(crate) struct ServerBuf(BytesMut);

impl ServerBuf {
    /// An empty one with room for `crate::proxy::RESPONSE_CHUNK` bytes.
    pub(crate) fn new() -> ServerBuf {
        ServerBuf(read_buf(Read::Server, crate::proxy::RESPONSE_CHUNK))
    }

    /// The buffer itself, not to be given back (a tunnel's first bytes).
    pub(crate) fn take(mut self) -> BytesMut {
        std::mem::take(&mut self.0)
    }
}

impl std::ops::Deref for ServerBuf {
    type Target = BytesMut;

    fn deref(&self) -> &BytesMut {
        &self.0
    }
}

impl std::ops::DerefMut for ServerBuf {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.0
    }
}

impl Drop for ServerBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.capacity() > 0 {
            give_read(Read::Server, buf, crate::proxy::RESPONSE_CHUNK);
        }
    }
}

/// A head levee wrote (the request sent upstream), given back when dropped.
#[derive(Debug)]
pub(crate) struct Head(pub(crate) Vec<u8>);

impl Drop for Head {
    fn drop(&mut self) {
        give_head(std::mem::take(&mut self.0));
    }
}

/// How many of each kind this thread keeps: (client, server, heads, fields).
#[cfg(test)]
fn kept() -> (usize, usize, usize, usize) {
    STASH.with(|s| {
        let s = s.borrow();
        (
            s.client.len(),
            s.server.len(),
            s.heads.len(),
            s.fields.len(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_whole() {
        sweep(true);
        let mut buf = read_buf(Read::Client, 4096);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let head = buf.split_to(18).freeze();
        let at = buf.as_ptr() as usize - 18;
        drop(head);
        give_read(Read::Client, buf, 4096);
        assert_eq!(kept().0, 1);
        let again = read_buf(Read::Client, 4096);
        assert_eq!(
            again.as_ptr() as usize,
            at,
            "the same allocation, from its start"
        );
        assert!(again.capacity() >= 4096 && again.is_empty());
        assert_eq!(kept().0, 0);
    }

    #[test]
    fn a_buffer_still_shared_is_not_kept() {
        sweep(true);
        let mut buf = read_buf(Read::Server, 16 * 1024);
        buf.extend_from_slice(&[b'x'; 16 * 1024]);
        let head = buf.split_to(100).freeze();
        give_read(Read::Server, buf, 16 * 1024);
        assert_eq!(kept().1, 0, "its head still reads from it");
        drop(head);
    }

    #[test]
    fn kept_is_bounded_and_swept() {
        sweep(true);
        let heads: Vec<_> = (0..KEPT + 5).map(|_| head(100)).collect();
        heads.into_iter().for_each(give_head);
        assert_eq!(kept().2, KEPT);
        // Taken from since the last sweep: kept.
        let list = fields();
        give_fields(list);
        sweep(false);
        assert_eq!(kept().2, KEPT);
        // A second with nothing taken: dropped.
        sweep(false);
        assert_eq!(kept(), (0, 0, 0, 0));
    }
}
