//! Config errors: each one names a file, a position in it and a key path, so
//! an operator can go straight to the offending line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a config.
///
/// `line` and `column` are 1-based; `column` counts characters, not bytes.
/// Both are 0 when the problem has no position in a file (an unreadable file,
/// or a [`Config`](crate::Config) built in code and checked with
/// [`validate`](crate::validate)). `key` is empty when the problem is not
/// about one key (a TOML syntax error, an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Located(self))]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Where in the schema, e.g. `route[2].proxy` or `upstream.app.servers[0].weight`.
    /// Array indices count from 0 in file order.
    pub key: String,
    pub message: String,
}

/// Renders `{file}:{line}:{column}: {key}: {message}`, leaving out the
/// position when there is none and the key when it is empty.
struct Located<'a>(&'a ConfigError);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(f, "{}:", e.file.display())?;
        if e.line > 0 {
            write!(f, "{}:{}:", e.line, e.column)?;
        }
        if !e.key.is_empty() {
            write!(f, " {}:", e.key)?;
        }
        write!(f, " {}", e.message)
    }
}

/// Every problem found in a config, in file order. Never empty when returned
/// as an `Err`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(&self.errors))]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![error],
        }
    }
}

/// Collects errors while the tree is walked, turning byte spans into
/// line:column on the way.
pub(crate) struct Sink<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        Sink {
            file,
            lines: LineIndex::new(text),
            errors: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = self.lines.position(span.start);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// The 1-based line and column of a byte offset, for values that are
    /// checked later, away from the file (TLS files, see model/tls.rs).
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        self.lines.position(offset)
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors in file order; errors at the same place keep the order they
    /// were found in.
    pub(crate) fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }
}

/// Byte offset -> 1-based line and character column.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = match self.text.get(start..offset) {
            Some(prefix) => prefix.chars().count(),
            // Not on a character boundary: fall back to bytes rather than panic.
            None => offset - start,
        };
        (line, column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let index = LineIndex::new("ab\nçd\n\nx");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(2), (1, 3));
        assert_eq!(index.position(3), (2, 1));
        // 'ç' is two bytes but one column.
        assert_eq!(index.position(5), (2, 2));
        assert_eq!(index.position(7), (3, 1));
        assert_eq!(index.position(8), (4, 1));
        assert_eq!(index.position(999), (4, 2));
        // Inside a multi-byte character: no panic.
        assert_eq!(index.position(4), (2, 2));
    }

    #[test]
    fn display_formats() {
        let e = ConfigError {
            file: "levee.toml".into(),
            line: 3,
            column: 9,
            key: "route[0].proxy".into(),
            message: "unknown upstream `app`".into(),
        };
        assert_eq!(
            e.to_string(),
            "levee.toml:3:9: route[0].proxy: unknown upstream `app`"
        );
        let io = ConfigError {
            line: 0,
            column: 0,
            key: String::new(),
            message: "cannot read: gone".into(),
            ..e.clone()
        };
        assert_eq!(io.to_string(), "levee.toml: cannot read: gone");
        let all = ConfigErrors {
            errors: vec![e, io],
        };
        assert_eq!(
            all.to_string(),
            "levee.toml:3:9: route[0].proxy: unknown upstream `app`\nlevee.toml: cannot read: gone"
        );
    }
}
