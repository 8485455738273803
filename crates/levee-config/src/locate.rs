//! Where a key was written, for problems found after parsing: a static root
//! that is not there, an address the OS refuses, a name DNS does not know.
//! They are reported like parse errors (`FILE:LINE:COLUMN: KEY: MESSAGE`),
//! so the model does not have to carry a position for every value.
//!
//! The file is read again and its tree searched for the key path; the
//! paths are built by the same rules the walk uses (`tree::child`,
//! `tree::element`), so every path a message names can be found.

use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, LineIndex};
use crate::model::Config;
use crate::tree::{child, element};
use crate::validate::BUILTIN_SOURCE;

/// Places errors about a parsed config at the keys they concern.
#[derive(Debug, Clone)]
pub struct Locator {
    file: PathBuf,
    /// The file's text; `None` for a config built in code, or a file that
    /// can no longer be read (its errors then carry no position).
    text: Option<String>,
}

impl Locator {
    /// Reads `config`'s file again, if it came from one.
    pub fn new(config: &Config) -> Locator {
        match &config.source {
            Some(path) => Locator {
                file: path.clone(),
                text: std::fs::read_to_string(path).ok(),
            },
            None => Locator {
                file: PathBuf::from(BUILTIN_SOURCE),
                text: None,
            },
        }
    }

    /// An error at `key` (a path such as `route[2].static`), or at the
    /// nearest enclosing key that was written (a default value has no
    /// place of its own: `listener[0].tls.handshake_timeout` left out points
    /// at `listener[0].tls`).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = self
            .text
            .as_deref()
            .and_then(|text| {
                let root = DeTable::parse(text).ok()?;
                let span = find(root.get_ref(), "", key)?;
                Some(LineIndex::new(text).position(span.start))
            })
            .unwrap_or((0, 0));
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// The span of the value at `key` under `table` (whose path is `path`), or
/// of the deepest written key on the way to it.
fn find(table: &DeTable<'_>, path: &str, key: &str) -> Option<Range<usize>> {
    table.iter().find_map(|(name, value)| {
        let here = child(path, name.get_ref());
        within(value, &here, key)
    })
}

fn within(value: &toml::Spanned<DeValue<'_>>, here: &str, key: &str) -> Option<Range<usize>> {
    if here == key {
        return Some(value.span());
    }
    let below = key
        .strip_prefix(here)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['));
    if !below {
        return None;
    }
    let deeper = match value.get_ref() {
        DeValue::Table(t) => find(t, here, key),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| within(v, &element(here, i), key)),
        _ => None,
    };
    Some(deeper.unwrap_or_else(|| value.span()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(text: &str, key: &str) -> (usize, usize) {
        let l = Locator {
            file: "levee.toml".into(),
            text: Some(text.to_owned()),
        };
        let e = l.error(key, "m");
        (e.line, e.column)
    }

    const TEXT: &str = r#"pid_file = "/run/levee.pid"

[[listener]]
address = "127.0.0.1:80"

[[route]]
path = "/a/"
static = "/srv/a"

[upstream."my.app"]
servers = ["a:80", { address = "b:80" }]
"#;

    #[test]
    fn finds_values_by_key_path() {
        assert_eq!(locate(TEXT, "pid_file"), (1, 12));
        assert_eq!(locate(TEXT, "listener[0].address"), (4, 11));
        assert_eq!(locate(TEXT, "route[0].static"), (8, 10));
        assert_eq!(locate(TEXT, "upstream.\"my.app\".servers[0]"), (11, 12));
        assert_eq!(
            locate(TEXT, "upstream.\"my.app\".servers[1].address"),
            (11, 32)
        );
    }

    #[test]
    fn an_unwritten_key_points_at_what_encloses_it() {
        // `index` left out: the route's table header.
        assert_eq!(locate(TEXT, "route[0].index"), (6, 1));
        assert_eq!(locate(TEXT, "nothing.here"), (0, 0));
        // A prefix of a name is not its parent.
        assert_eq!(locate(TEXT, "pid_files"), (0, 0));
    }

    #[test]
    fn without_a_file_there_is_no_position() {
        let config = crate::builtin_static("/srv".into(), "127.0.0.1:80".parse().expect("addr"));
        let e = Locator::new(&config).error("route[0].static", "gone");
        assert_eq!(e.to_string(), "<built-in>: route[0].static: gone");
    }
}
