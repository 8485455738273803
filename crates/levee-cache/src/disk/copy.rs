//! A body streamed to a disk tier file while it is relayed: a response too
//! large for the memory tier. The header goes first (with the body length
//! patched at the end), the body as it arrives; the file is renamed into
//! place and recorded only once complete. Past `max_object_size`, or on a
//! write error, the copy stops and its file is removed: the relay to the
//! client goes on regardless.
//!
//! Writes are blocking, on the request's thread: page cache writes, as
//! nginx's worker writes its cache's temporary files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{Inner, lock};
use crate::codec;
use crate::store::Object;

/// A file being filled for `key`.
#[derive(Debug)]
pub struct DiskCopy<'a> {
    inner: &'a Arc<Inner>,
    key: Vec<u8>,
    id: u64,
    file: Option<File>,
    header_len: u64,
    len: u64,
    tags: Box<[Box<str>]>,
    /// Dropped: past the cap, or a write failed.
    overflow: bool,
}

impl<'a> DiskCopy<'a> {
    /// Creates the temporary file and writes `object`'s header.
    pub(super) fn start(inner: &'a Arc<Inner>, key: &[u8], object: &Object) -> Option<Self> {
        let id = inner.new_id();
        lock(&inner.writing).insert(id);
        let mut copy = DiskCopy {
            inner,
            key: key.to_vec(),
            id,
            file: None,
            header_len: 0,
            len: 0,
            tags: object.tags.clone(),
            overflow: false,
        };
        let header = codec::object_header(key, object, 0);
        let created = File::create(inner.tmp(id)).and_then(|f| {
            f.write_all_at(&header, 0)?;
            Ok(f)
        });
        match created {
            Ok(f) => {
                copy.file = Some(f);
                copy.header_len = header.len() as u64;
                Some(copy)
            }
            Err(e) => {
                inner.failed("starting an object file", &e);
                None
            }
        }
    }

    /// Appends `data`; past the cap or on an error the copy is dropped.
    pub fn push(&mut self, data: &[u8]) {
        if self.overflow {
            return;
        }
        if self.len + data.len() as u64 > self.inner.settings.max_object_size {
            return self.give_up();
        }
        let Some(file) = &self.file else { return };
        if let Err(e) = file.write_all_at(data, self.header_len + self.len) {
            self.inner.failed("writing an object", &e);
            return self.give_up();
        }
        self.len += data.len() as u64;
    }

    /// Bytes of body copied so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    fn give_up(&mut self) {
        self.overflow = true;
        self.file = None;
        let _ = std::fs::remove_file(self.inner.tmp(self.id));
    }

    /// The body is complete: patch its length in the header, sync when
    /// configured, and commit. True when stored.
    pub fn finish(mut self) -> bool {
        let Some(file) = self.file.take() else {
            return false;
        };
        let inner = self.inner;
        let done = file
            .write_all_at(&self.len.to_le_bytes(), codec::BODY_LEN_AT as u64)
            .and_then(|()| {
                if inner.settings.fsync {
                    file.sync_data()
                } else {
                    Ok(())
                }
            });
        drop(file);
        if let Err(e) = done {
            inner.failed("finishing an object", &e);
            self.give_up();
            return false;
        }
        let size = self.header_len + self.len;
        let tags = std::mem::take(&mut self.tags);
        // Done with the temporary file either way: committed or removed.
        self.overflow = true;
        inner
            .commit(&self.key, self.id, size, tags, None, false)
            .is_ok()
    }
}

impl Drop for DiskCopy<'_> {
    fn drop(&mut self) {
        if !self.overflow {
            // Never finished (the upstream failed, the client went away).
            let _ = std::fs::remove_file(self.inner.tmp(self.id));
        }
        lock(&self.inner.writing).remove(&self.id);
    }
}
