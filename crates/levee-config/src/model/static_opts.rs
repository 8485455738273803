//! A `static` route's options beyond its root (docs/config.md, `static`):
//! hidden files, expiry, directory listings, `try_files` fallbacks.

use std::time::Duration;

/// The default `dotfiles_allow`: RFC 8615's well-known URIs.
pub const DEFAULT_DOTFILES_ALLOW: &[&str] = &["/.well-known/"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticOptions {
    /// What a path with a segment starting with `.` gets.
    pub dotfiles: Dotfiles,
    /// Path prefixes under which dot segments are served anyway.
    pub dotfiles_allow: Vec<String>,
    /// `expires`: `Cache-Control: max-age` and `Expires` on files served.
    pub expires: Option<Duration>,
    /// `expires_by_extension`: per lower-case extension (without the dot),
    /// over `expires`.
    pub expires_by_extension: Vec<(String, Duration)>,
    /// `listing`: a directory without an index file is listed (HTML or JSON).
    pub listing: bool,
    /// `try_files`: candidates tried in order (`$uri`, `$uri/`, a path,
    /// last perhaps `=404`); empty: the path alone.
    pub try_files: Vec<String>,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            dotfiles: Dotfiles::default(),
            dotfiles_allow: DEFAULT_DOTFILES_ALLOW
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            expires: None,
            expires_by_extension: Vec::new(),
            listing: false,
            try_files: Vec::new(),
        }
    }
}

/// `dotfiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dotfiles {
    /// 404, as if the file were not there (`"hide"`).
    #[default]
    Hide,
    /// 403 (`"deny"`, nginx's `location ~ /\. { deny all; }`).
    Deny,
    /// Served like any other file (`"allow"`).
    Allow,
}

impl Dotfiles {
    pub fn as_str(self) -> &'static str {
        match self {
            Dotfiles::Hide => "hide",
            Dotfiles::Deny => "deny",
            Dotfiles::Allow => "allow",
        }
    }
}
