//! A provided buffer ring: the kernel picks a free buffer when data arrives on
//! any connection of the worker, so memory for receiving is per worker and
//! sized by the traffic in flight, never pinned by an idle connection.

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

pub struct BufRing {
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    mask: u16,
    entries: u16,
    buf_size: usize,
    bufs: Box<[u8]>,
    /// Our copy of the tail: buffers given back in a loop turn are published
    /// to the kernel with one store (`publish`).
    tail: u16,
}

impl BufRing {
    /// Registers `entries` (a power of two) buffers of `buf_size` bytes as
    /// group `group` of `ring`, all given to the kernel.
    pub fn new(ring: &IoUring, group: u16, entries: u16, buf_size: usize) -> io::Result<BufRing> {
        if !entries.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "entries not a power of two",
            ));
        }
        let ring_bytes = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
        // The kernel wants the ring page aligned: mmap gives that.
        // SAFETY: an anonymous private mapping with no address hint.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut me = BufRing {
            ring: addr.cast(),
            ring_bytes,
            mask: entries - 1,
            entries,
            buf_size,
            bufs: vec![0u8; usize::from(entries) * buf_size].into_boxed_slice(),
            tail: 0,
        };
        // SAFETY: the mapping lives until `drop`, after the ring that uses it
        // is gone (the worker drops its ring first).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr as u64, entries, group, 0)?;
        }
        for bid in 0..entries {
            me.give_back(bid);
        }
        me.publish();
        Ok(me)
    }

    /// The bytes the kernel wrote into buffer `bid`.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.buf_size;
        &self.bufs[start..start + len.min(self.buf_size)]
    }

    /// Hands buffer `bid` back; the kernel sees it after `publish`.
    pub fn give_back(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let slot = usize::from(self.tail & self.mask);
        let addr = self.bufs.as_ptr() as u64 + (usize::from(bid) * self.buf_size) as u64;
        // SAFETY: `slot` is below `entries`, inside the mapping.
        let entry = unsafe { &mut *self.ring.add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the buffers given back since the last call.
    pub fn publish(&mut self) {
        // SAFETY: the tail field overlaps the first entry's reserved field,
        // which the kernel reads with acquire ordering.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_bytes);
        }
    }
}
