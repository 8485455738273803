//! Outgoing bytes of one socket and the worker's pool of byte buffers.

pub const BUF_SIZE: usize = 4096;

/// Reused byte buffers: a connection holds one only while it has bytes to
/// send or a partial head, so an idle connection pins none.
#[derive(Default)]
pub struct Pool(Vec<Vec<u8>>);

impl Pool {
    pub fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
    }
    pub fn give(&mut self, mut v: Vec<u8>) {
        if v.capacity() > 0 && v.capacity() <= 64 * 1024 && self.0.len() < 4096 {
            v.clear();
            self.0.push(v);
        }
    }
}

/// Bytes on their way out of one socket: `sending` is in the kernel (one send
/// at a time keeps the order), `queued` gathers what comes meanwhile.
#[derive(Default)]
pub struct Out {
    pub sending: Vec<u8>,
    pub sent: usize,
    pub queued: Vec<u8>,
    pub inflight: bool,
}

impl Out {
    pub fn queue(&mut self, pool: &mut Pool) -> &mut Vec<u8> {
        if self.queued.capacity() == 0 {
            self.queued = pool.take();
        }
        &mut self.queued
    }

    /// The send to submit now, if none is in flight and bytes wait.
    pub fn next(&mut self) -> Option<(*const u8, u32)> {
        if self.inflight {
            return None;
        }
        if self.sent == self.sending.len() && !self.queued.is_empty() {
            self.sending.clear();
            self.sent = 0;
            std::mem::swap(&mut self.sending, &mut self.queued);
        }
        let rest = &self.sending[self.sent..];
        if rest.is_empty() {
            return None;
        }
        self.inflight = true;
        Some((rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32))
    }

    /// A send finished with `n` bytes written; buffers go back to the pool
    /// when everything is out.
    pub fn done(&mut self, n: usize, pool: &mut Pool) {
        self.inflight = false;
        self.sent += n;
        if self.sent >= self.sending.len() && self.queued.is_empty() {
            self.sent = 0;
            pool.give(std::mem::take(&mut self.sending));
            pool.give(std::mem::take(&mut self.queued));
        }
    }

    pub fn idle(&self) -> bool {
        !self.inflight && self.sent >= self.sending.len() && self.queued.is_empty()
    }

    pub fn release(&mut self, pool: &mut Pool) {
        pool.give(std::mem::take(&mut self.sending));
        pool.give(std::mem::take(&mut self.queued));
        self.sent = 0;
    }
}
