//! What a purge removes, as the admin API and the fleet's bus name it: a
//! URL (every variant and route-added key part of it, under both schemes),
//! a URL prefix, or a surrogate key (tag). [`Selector`] is the one place
//! that turns those into a test on stored keys and tags; every tier
//! (memory, disk, shared) purges with it.

use crate::key;
use crate::store::key_is_url;

/// What to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge<'a> {
    /// One URL as `http://host[:port]/path?query`: all its variants and
    /// key parts, under either scheme.
    Url(&'a [u8]),
    /// Every URL starting with this (`http://host[:port]/prefix`), under
    /// either scheme.
    Prefix(&'a [u8]),
    /// Every object the app tagged with this in the tag header.
    Tag(&'a str),
}

/// Why a purge could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("`{0}` is not an absolute http:// or https:// URL")]
    NotUrl(String),
}

/// The schemes a key may start with.
pub const SCHEMES: [&str; 2] = ["http", "https"];

/// A purge made ready to test keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Keys of these URLs (one per scheme).
    Urls(Vec<Vec<u8>>),
    /// Keys starting with one of these.
    Prefixes(Vec<Vec<u8>>),
    Tag(String),
}

impl Selector {
    /// A URL is matched as keys are written: host without case or port
    /// (keys never hold one), under both schemes, as `PURGE` and
    /// invalidation treat an http and an https listener in front of one
    /// origin.
    pub fn new(what: Purge<'_>) -> Result<Selector, PurgeError> {
        let keys = |url: &[u8]| {
            let target = key::url_target(url)
                .ok_or_else(|| PurgeError::NotUrl(String::from_utf8_lossy(url).into_owned()))?;
            Ok::<_, PurgeError>(
                SCHEMES
                    .iter()
                    .map(|scheme| [scheme.as_bytes(), b"://", &target].concat())
                    .collect(),
            )
        };
        Ok(match what {
            Purge::Url(url) => Selector::Urls(keys(url)?),
            Purge::Prefix(prefix) => Selector::Prefixes(keys(prefix)?),
            Purge::Tag(tag) => Selector::Tag(tag.to_owned()),
        })
    }

    /// Whether the entry stored under `key` with `tags` goes.
    pub fn matches(&self, key: &[u8], tags: &[Box<str>]) -> bool {
        match self {
            Selector::Urls(urls) => urls.iter().any(|u| key_is_url(key, u)),
            Selector::Prefixes(p) => p.iter().any(|p| key.starts_with(p)),
            Selector::Tag(tag) => tags.iter().any(|t| **t == **tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_prefixes_and_tags() {
        let url = Selector::new(Purge::Url(b"http://Site:8080/a")).expect("a URL");
        assert!(url.matches(b"https://site/a", &[]));
        assert!(url.matches(b"http://site/a\x01accept-encoding=gzip", &[]));
        assert!(url.matches(b"http://site/a\0h:x=1", &[]));
        assert!(!url.matches(b"http://site/ab", &[]));
        let prefix = Selector::new(Purge::Prefix(b"https://site/img/")).expect("a URL");
        assert!(prefix.matches(b"http://site/img/a.png", &[]));
        assert!(!prefix.matches(b"http://site/im", &[]));
        let tag = Selector::new(Purge::Tag("red")).expect("a tag");
        assert!(tag.matches(b"x", &[Box::from("blue"), Box::from("red")]));
        assert!(!tag.matches(b"x", &[Box::from("redder")]));
        assert_eq!(
            Selector::new(Purge::Url(b"/relative")),
            Err(PurgeError::NotUrl("/relative".into()))
        );
    }
}
