//! levee's own log written to a file (`[log] error = PATH`), reopened on
//! `levee reload` and SIGUSR1, so logrotate can move the file away and
//! levee goes on in a new one at the same path (as nginx's USR1).
//!
//! Each event is formatted whole by the subscriber and written with one
//! `write` to a descriptor opened with `O_APPEND`, so lines from different
//! threads never interleave; the swap on reopen is one atomic store, and a
//! line being written meanwhile goes to whichever file it loaded.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

/// A log file that can be reopened at its path.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: ArcSwap<File>,
}

impl LogFile {
    /// Opens (creates, appends to) `path`.
    pub fn open(path: &Path) -> io::Result<Arc<LogFile>> {
        Ok(Arc::new(LogFile {
            path: path.to_path_buf(),
            file: ArcSwap::from_pointee(append(path)?),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the path anew; on failure the file in use stays.
    pub fn reopen(&self) -> io::Result<()> {
        self.file.store(Arc::new(append(&self.path)?));
        Ok(())
    }

    /// A writer for one event (what a `tracing` subscriber's writer
    /// factory returns).
    pub fn writer(self: &Arc<Self>) -> LogWriter {
        LogWriter(self.clone())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes to the [`LogFile`]'s current file.
#[derive(Debug)]
pub struct LogWriter(Arc<LogFile>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.0.file.load();
        (&**file).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let file = self.0.file.load();
        (&**file).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopen_after_a_move_writes_to_a_new_file_at_the_path() {
        let dir = std::env::temp_dir().join(format!("levee-logfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("error.log");
        let log = LogFile::open(&path).expect("open");
        log.writer().write_all(b"one\n").expect("write");
        let moved = dir.join("error.log.1");
        std::fs::rename(&path, &moved).expect("rotate");
        // Until the reopen, lines follow the moved file, as logrotate expects.
        log.writer().write_all(b"two\n").expect("write");
        log.reopen().expect("reopen");
        log.writer().write_all(b"three\n").expect("write");
        assert_eq!(std::fs::read_to_string(&moved).expect("read"), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "three\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
