//! Static files: maps a request on a `static` route to a file under the
//! route's root and decides the whole response head and body plan.
//!
//! [`resolve`] does the deciding with blocking `std::fs` calls (a few
//! `open`/`fstat`s; run it where blocking briefly is acceptable) and no socket
//! I/O; the connection layer writes the head and then the body with
//! [`send_range`]. The steps, in order:
//!
//! 1. method: GET and HEAD, else 405;
//! 2. path: the request's matched path, decoded and normalised once
//!    (`normal.rs`), split into segments ([`path`]), else 400;
//! 3. open the file, then check that the file actually opened lies inside the
//!    root unless `follow_symlinks` (403 if not);
//! 4. directory: without a trailing `/`, 301 to the `/` form; with one, the
//!    first index file that exists, else 403 (nginx without autoindex);
//! 5. conditionals: `If-None-Match`, else `If-Modified-Since` => 304;
//! 6. ranges (GET only), gated by `If-Range` => 206, multipart 206 or 416;
//! 7. otherwise 200 with the whole file.
//!
//! Hidden files (`.env`, `.git/`), `try_files`, listings and expiry are the
//! route options' business, around this (static_opts.rs).

mod conditional;
pub(crate) mod mime;
pub(crate) mod path;
pub(crate) mod range;
mod send;

use std::fs::{File, Metadata, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use levee_config::StaticAction;

use self::conditional::Validators;
use self::path::CleanPath;
pub(crate) use self::path::PathError;
use self::range::{ByteRange, RangeDecision};
pub(crate) use self::send::{send_range, write_range};

/// The request facts a static route needs, borrowed from the parsed request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StaticRequest<'a> {
    pub method: &'a [u8],
    /// The request's matched path (`RequestHead::path`): decoded and
    /// normalised, without the query. The route prefix is not stripped:
    /// `/` is the root directory.
    pub path: &'a [u8],
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

/// A response decided by [`resolve`]. `fields` never hold `Date`, `Server`
/// or `Connection`: the connection layer adds those.
#[derive(Debug)]
pub(crate) enum StaticOutcome {
    /// `status` (200 or 206) with `fields`, then the body per `body`, read
    /// from `file`.
    Send {
        status: u16,
        fields: Vec<(&'static str, String)>,
        file: File,
        body: BodyPlan,
    },
    /// 304 with `ETag` and `Last-Modified`, no body.
    NotModified { fields: Vec<(&'static str, String)> },
    /// 301 to `location`, an absolute path ending in `/`. The caller appends
    /// `?query` when the request had one.
    Redirect { location: String },
    /// An error status with the fields it requires (`Allow` on 405,
    /// `Content-Range` on 416). `cause` is for logs, not for the client.
    Error {
        status: u16,
        fields: Vec<(&'static str, String)>,
        cause: StaticError,
    },
}

/// How to produce the body of [`StaticOutcome::Send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// HEAD: no body, though `Content-Length` is the one GET would send.
    None,
    /// One range of the file: the whole file for 200, the range for 206.
    Range { start: u64, len: u64 },
    /// multipart/byteranges: each part's preamble, then its file range; then
    /// `closing`. `Content-Length` already counts all of it.
    Multipart { parts: Vec<Part>, closing: Vec<u8> },
}

/// One part of a multipart/byteranges body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// Boundary line and part header, ending in the blank line.
    pub preamble: Vec<u8>,
    pub start: u64,
    pub len: u64,
}

/// Why a static request failed. [`StaticError::status`] is the only mapping
/// to what the client sees.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StaticError {
    #[error("method not allowed on a static route")]
    MethodNotAllowed,
    #[error(transparent)]
    BadPath(#[from] PathError),
    #[error("no such file")]
    NotFound,
    #[error("hidden file (`dotfiles`)")]
    Hidden,
    #[error("resolved path {0:?} is outside the root")]
    OutsideRoot(PathBuf),
    #[error("directory has no index file")]
    NoIndex,
    #[error("not a regular file")]
    NotRegular,
    #[error("permission denied: {0}")]
    PermissionDenied(#[source] io::Error),
    #[error("no requested range overlaps the {size}-byte file")]
    RangeNotSatisfiable { size: u64 },
    #[error("file system error: {0}")]
    Io(#[source] io::Error),
}

impl StaticError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::BadPath(_) => 400,
            Self::NotFound | Self::Hidden => 404,
            Self::OutsideRoot(_) | Self::NoIndex | Self::NotRegular | Self::PermissionDenied(_) => {
                403
            }
            Self::RangeNotSatisfiable { .. } => 416,
            Self::Io(_) => 500,
        }
    }

    fn into_outcome(self) -> StaticOutcome {
        let fields = match &self {
            Self::MethodNotAllowed => vec![("Allow", "GET, HEAD".to_owned())],
            Self::RangeNotSatisfiable { size } => {
                vec![("Content-Range", format!("bytes */{size}"))]
            }
            _ => Vec::new(),
        };
        StaticOutcome::Error {
            status: self.status(),
            fields,
            cause: self,
        }
    }
}

impl From<io::Error> for StaticError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::InvalidFilename => Self::NotFound,
            io::ErrorKind::PermissionDenied => Self::PermissionDenied(e),
            _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                Self::PermissionDenied(e)
            }
            _ => Self::Io(e),
        }
    }
}

/// Decides the response to `req` on a route whose action is `action`.
pub(crate) fn resolve(action: &StaticAction, req: &StaticRequest<'_>) -> StaticOutcome {
    resolve_inner(action, req).unwrap_or_else(StaticError::into_outcome)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
}

fn resolve_inner(
    action: &StaticAction,
    req: &StaticRequest<'_>,
) -> Result<StaticOutcome, StaticError> {
    let method = match req.method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => return Err(StaticError::MethodNotAllowed),
    };
    let target = CleanPath::parse(req.path)?;
    let Some((file, meta, full)) = open_file(action, &target)? else {
        return Ok(StaticOutcome::Redirect {
            location: target.directory_location(),
        });
    };
    let size = meta.len();
    let validators = Validators::new(meta.modified().ok(), size);
    if validators.not_modified(req.if_none_match, req.if_modified_since) {
        let fields = vec![
            ("ETag", validators.etag),
            ("Last-Modified", validators.last_modified),
        ];
        return Ok(StaticOutcome::NotModified { fields });
    }

    let file_name = full.file_name().map_or(&[][..], |n| n.as_bytes());
    let content_type = mime::content_type(file_name);
    let decision = match (method, req.range) {
        (Method::Get, Some(range)) if req.if_range.is_none_or(|v| validators.if_range_holds(v)) => {
            range::decide(range, size)
        }
        _ => RangeDecision::Full,
    };
    let mut fields = vec![
        ("Last-Modified", validators.last_modified),
        ("ETag", validators.etag),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    let (status, body) = plan(decision, size, content_type, &mut fields)?;
    let body = if method == Method::Head {
        BodyPlan::None
    } else {
        body
    };
    Ok(StaticOutcome::Send {
        status,
        fields,
        file,
        body,
    })
}

/// The file `target` names under the route's root, or its directory's
/// index file; `None` for a directory named without its trailing slash,
/// which is redirected to it.
fn open_file(
    action: &StaticAction,
    target: &CleanPath,
) -> Result<Option<(File, std::fs::Metadata, PathBuf)>, StaticError> {
    let mut full = target.under(&action.root);
    let jail = Jail::new(action)?;
    let (mut file, mut meta) = jail.open(&full)?;
    if target.trailing_slash && !meta.is_dir() {
        // `/file.txt/` names a directory that is not there, as open(2) says.
        return Err(StaticError::NotFound);
    }
    if meta.is_dir() {
        if !target.trailing_slash {
            return Ok(None);
        }
        (file, meta, full) = open_index(&jail, &full, &action.index)?;
    }
    if !meta.is_file() {
        return Err(StaticError::NotRegular);
    }
    Ok(Some((file, meta, full)))
}

/// The status and body for the range decision, and the fields that
/// describe them (type, length, range) added to `fields`.
fn plan(
    decision: RangeDecision,
    size: u64,
    content_type: &str,
    fields: &mut Vec<(&'static str, String)>,
) -> Result<(u16, BodyPlan), StaticError> {
    Ok(match decision {
        RangeDecision::Unsatisfiable => return Err(StaticError::RangeNotSatisfiable { size }),
        RangeDecision::Full => {
            fields.push(("Content-Type", content_type.to_owned()));
            fields.push(("Content-Length", size.to_string()));
            (
                200,
                BodyPlan::Range {
                    start: 0,
                    len: size,
                },
            )
        }
        RangeDecision::Partial(ranges) => match ranges.as_slice() {
            [one] => {
                fields.push(("Content-Type", content_type.to_owned()));
                fields.push(("Content-Length", one.len.to_string()));
                fields.push(("Content-Range", one.content_range(size)));
                (
                    206,
                    BodyPlan::Range {
                        start: one.start,
                        len: one.len,
                    },
                )
            }
            many => {
                let boundary = new_boundary();
                let (body, length) = multipart(many, content_type, size, &boundary);
                let media = format!("multipart/byteranges; boundary={boundary}");
                fields.push(("Content-Type", media));
                fields.push(("Content-Length", length.to_string()));
                (206, body)
            }
        },
    })
}

/// Where opened files must end up: the canonical root, or nowhere in
/// particular when symlinks may lead anywhere.
struct Jail {
    root: Option<PathBuf>,
}

impl Jail {
    fn new(action: &StaticAction) -> Result<Self, StaticError> {
        if action.follow_symlinks {
            return Ok(Self { root: None });
        }
        Ok(Self {
            root: Some(std::fs::canonicalize(&action.root)?),
        })
    }

    /// Opens `path` and checks where the descriptor really points, so a
    /// symlink swapped in between the check and the open cannot fool us.
    fn open(&self, path: &Path) -> Result<(File, Metadata), StaticError> {
        // O_NONBLOCK: opening a FIFO must not wait for a writer. It does
        // nothing for regular files and directories.
        let nonblock = i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nonblock)
            .open(path)?;
        if let Some(root) = &self.root {
            let real = real_path(&file, path)?;
            if !real.starts_with(root) {
                return Err(StaticError::OutsideRoot(real));
            }
        }
        let meta = file.metadata()?;
        Ok((file, meta))
    }
}

/// The path the kernel resolved for an open file.
fn real_path(file: &File, opened_as: &Path) -> io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            return Ok(real);
        }
    }
    // Without /proc (or off Linux): racy against a concurrent symlink swap,
    // but still refuses every link that points outside when checked.
    let _ = file;
    std::fs::canonicalize(opened_as)
}

/// The index names tried, in order. Index names come from config; a name
/// that is not a single plain file name would let config reach outside the
/// directory, so it is skipped.
pub(crate) fn index_names(index: &[String]) -> impl Iterator<Item = &str> {
    index.iter().map(String::as_str).filter(|name| {
        !name.is_empty() && *name != "." && *name != ".." && !name.contains(['/', '\\', '\0'])
    })
}

/// The first usable index file of directory `dir`, else [`StaticError::NoIndex`].
fn open_index(
    jail: &Jail,
    dir: &Path,
    index: &[String],
) -> Result<(File, Metadata, PathBuf), StaticError> {
    for name in index_names(index) {
        let candidate = dir.join(name);
        match jail.open(&candidate) {
            Ok((file, meta)) if meta.is_file() => return Ok((file, meta, candidate)),
            Ok(_) | Err(StaticError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StaticError::NoIndex)
}

/// Builds a multipart/byteranges body (RFC 9110 §14.6) and its total length.
pub(crate) fn multipart(
    ranges: &[ByteRange],
    content_type: &str,
    size: u64,
    boundary: &str,
) -> (BodyPlan, u64) {
    let mut total = 0u64;
    let mut parts = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        let preamble = format!(
            "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            r.content_range(size)
        )
        .into_bytes();
        total += preamble.len() as u64 + r.len;
        parts.push(Part {
            preamble,
            start: r.start,
            len: r.len,
        });
    }
    let closing = format!("\r\n--{boundary}--\r\n").into_bytes();
    total += closing.len() as u64;
    (BodyPlan::Multipart { parts, closing }, total)
}

/// A boundary no file is likely to contain: 128 bits from the process's
/// random hash keys mixed with a counter and the clock. Not a secret, so no
/// CSPRNG is needed.
pub(crate) fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut words = [0u64; 2];
    for (salt, word) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(count);
        h.write_u32(nanos);
        h.write_usize(salt);
        *word = h.finish();
    }
    format!("levee-{:016x}{:016x}", words[0], words[1])
}

#[cfg(test)]
pub(crate) mod tests;
