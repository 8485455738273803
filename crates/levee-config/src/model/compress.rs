//! `[compress]` and a route's `compress`: responses compressed on the fly
//! (gzip, Brotli, zstd) and precompressed siblings of static files.

/// A content coding levee can compress with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Gzip,
    Brotli,
    Zstd,
}

impl Coding {
    /// Every coding, in the default server preference.
    pub const ALL: [Coding; 3] = [Coding::Zstd, Coding::Brotli, Coding::Gzip];

    /// The token in `Accept-Encoding` and `Content-Encoding`, and in the config.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The file name suffix of a precompressed sibling (`app.js.br`).
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Gzip => ".gz",
            Coding::Brotli => ".br",
            Coding::Zstd => ".zst",
        }
    }

    pub fn from_token(token: &str) -> Option<Coding> {
        Coding::ALL.into_iter().find(|c| c.token() == token)
    }
}

/// The MIME types compressed by default: nginx's `gzip_types` (text/html)
/// and the common text formats that compress well. Images, video, archives
/// and fonts other than these are compressed already.
pub const DEFAULT_COMPRESS_TYPES: &[&str] = &[
    "text/html",
    "text/css",
    "text/plain",
    "text/xml",
    "text/javascript",
    "text/markdown",
    "text/csv",
    "text/event-stream",
    "application/javascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/xhtml+xml",
    "application/wasm",
    "image/svg+xml",
    "image/x-icon",
    "font/ttf",
    "font/otf",
];

/// How a route compresses responses; a route without compression has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compress {
    /// `prefer`: the server's order among codings the client accepts with
    /// the same q-value; a coding left out is never used.
    pub prefer: Vec<Coding>,
    /// `types`: lower-case MIME types without parameters; `text/*` matches
    /// a whole top-level type.
    pub types: Vec<String>,
    /// `min_length`: a response whose `Content-Length` is below this is
    /// sent as it is (one of unknown length is compressed).
    pub min_length: u64,
    /// `gzip_level`: 1-9.
    pub gzip_level: u32,
    /// `brotli_level`: 0-11.
    pub brotli_level: u32,
    /// `brotli_window`: log2 of Brotli's window (10-24).
    pub brotli_window: u32,
    /// `zstd_level`: 1-19.
    pub zstd_level: i32,
    /// `zstd_window`: log2 of zstd's window (10-27).
    pub zstd_window: u32,
    /// `precompressed`: static routes serve `file.gz`, `file.br`,
    /// `file.zst` beside `file` to a client that accepts the coding.
    pub precompressed: bool,
}

impl Default for Compress {
    fn default() -> Compress {
        Compress {
            prefer: Coding::ALL.to_vec(),
            types: DEFAULT_COMPRESS_TYPES
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            min_length: 256,
            gzip_level: 6,
            brotli_level: 4,
            brotli_window: 18,
            zstd_level: 3,
            zstd_window: 18,
            precompressed: false,
        }
    }
}

/// `[compress]`: the settings routes start from, and whether a route that
/// does not say compresses (`enabled`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompressConfig {
    /// `enabled`: routes without a `compress` key compress (default false).
    pub enabled: bool,
    pub settings: Compress,
}
