//! The disk tier's files: reading a hit's header, writing an object's
//! file whole, copying a body from one file to another in the kernel.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::{FIRST_READ, Inner, Slot};
use crate::body::{Body, FileRegion};
use crate::codec::{self, Decoded};
use crate::store::Object;

impl Inner {
    /// Reads and checks the header of `slot`'s file.
    pub(super) fn read(&self, key: &[u8], slot: &Slot) -> io::Result<Object> {
        let file = File::open(self.file(slot.id))?;
        let size = file.metadata()?.len();
        let mut buf = vec![0u8; FIRST_READ.min(usize::try_from(size).unwrap_or(FIRST_READ))];
        file.read_exact_at(&mut buf, 0)?;
        let bad = |_| io::Error::from(io::ErrorKind::InvalidData);
        let len = codec::header_len(&buf).map_err(bad)?;
        if len > buf.len() {
            buf.resize(len, 0);
            file.read_exact_at(&mut buf, 0)?;
        }
        let header = codec::decode(&buf).map_err(bad)?;
        if header.key != key || size != header.len as u64 + header.body_len || size != slot.size {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let Decoded::Object(mut obj) = header.entry else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        obj.body = Body::File(Arc::new(FileRegion {
            file,
            offset: header.len as u64,
            len: header.body_len,
        }));
        Ok(*obj)
    }

    /// Writes an object's file under `tmp/`; returns its size.
    pub(super) fn write_file(&self, id: u64, key: &[u8], obj: &Object) -> io::Result<u64> {
        let tmp = self.tmp(id);
        let result = (|| {
            let file = File::create(&tmp)?;
            let header = codec::object_header(key, obj, obj.body.len());
            file.write_all_at(&header, 0)?;
            let mut at = header.len() as u64;
            match &obj.body {
                Body::Pieces(pieces) => {
                    for p in pieces.iter() {
                        file.write_all_at(p, at)?;
                        at += p.len() as u64;
                    }
                }
                Body::File(region) => {
                    copy_region(region, &file, at)?;
                    at += region.len;
                }
            }
            if self.settings.fsync {
                file.sync_data()?;
            }
            Ok(at)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.inspect_err(|e| self.failed("writing an object", e))
    }
}

/// Replaces `path` with `text` through a temporary file and a rename.
pub(super) fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Copies `region` into `out` at `at`, in the kernel where it can.
pub(super) fn copy_region(region: &FileRegion, out: &File, at: u64) -> io::Result<()> {
    let mut from = region.offset;
    let mut to = at;
    let end = region.offset + region.len;
    while from < end {
        let want = usize::try_from(end - from)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(&region.file, Some(&mut from), out, Some(&mut to), want) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL) => {
                let mut buf = vec![0u8; 64 * 1024];
                while from < end {
                    let n = buf
                        .len()
                        .min(usize::try_from(end - from).unwrap_or(usize::MAX));
                    let chunk = buf.get_mut(..n).unwrap_or_default();
                    region.file.read_exact_at(chunk, from)?;
                    out.write_all_at(chunk, to)?;
                    from += n as u64;
                    to += n as u64;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
