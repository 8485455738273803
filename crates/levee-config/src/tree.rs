//! Reading the spanned TOML tree: tables whose keys are checked against a
//! schema, typed access to values, and key paths for messages.
//!
//! Every accessor reports a wrong type or value to the [`Sink`] and returns
//! `None`, so the walker carries on and finds the next error too.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::Sink;
use crate::units;

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// `parent.key`, quoting `key` when it is not a bare TOML key.
pub(crate) fn child(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn element(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A value together with its key path and where to point at it.
pub(crate) struct Item<'t, 'i> {
    /// Key path for messages, e.g. `listener[0].address`.
    pub key: String,
    /// The key as written (the value itself for array elements).
    pub key_span: Range<usize>,
    pub value: &'t Value<'i>,
}

impl<'t, 'i> Item<'t, 'i> {
    pub(crate) fn span(&self) -> Range<usize> {
        self.value.span()
    }

    /// Reports `message` at the value.
    pub(crate) fn error(&self, sink: &mut Sink<'_>, message: impl Into<String>) {
        sink.error(self.span(), &self.key, message);
    }

    fn wrong_type(&self, sink: &mut Sink<'_>, expected: &str) {
        let found = self.value.get_ref().type_str();
        self.error(sink, format!("expected {expected}, found {found}"));
    }

    pub(crate) fn str(&self, sink: &mut Sink<'_>) -> Option<&'t str> {
        match self.value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(sink, "a string");
                None
            }
        }
    }

    /// A string that is not empty and has no control characters (it may end
    /// up in a header or a path).
    pub(crate) fn text(&self, sink: &mut Sink<'_>) -> Option<&'t str> {
        let s = self.str(sink)?;
        if s.is_empty() {
            self.error(sink, "must not be empty");
            return None;
        }
        if s.chars().any(char::is_control) {
            self.error(sink, "must not contain control characters");
            return None;
        }
        Some(s)
    }

    pub(crate) fn bool(&self, sink: &mut Sink<'_>) -> Option<bool> {
        match self.value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(sink, "a boolean (true or false)");
                None
            }
        }
    }

    /// Any integer.
    pub(crate) fn integer(&self, sink: &mut Sink<'_>) -> Option<i128> {
        match self.raw_integer() {
            Some(Ok(n)) => Some(n),
            Some(Err(())) => {
                self.error(sink, "integer is out of range");
                None
            }
            None => {
                self.wrong_type(sink, "an integer");
                None
            }
        }
    }

    fn raw_integer(&self) -> Option<Result<i128, ()>> {
        match self.value.get_ref() {
            DeValue::Integer(i) => {
                Some(i128::from_str_radix(i.as_str(), i.radix()).map_err(|_| ()))
            }
            _ => None,
        }
    }

    /// An integer in `min..=max`.
    pub(crate) fn int_in(&self, sink: &mut Sink<'_>, min: u64, max: u64) -> Option<u64> {
        match self.raw_integer() {
            None => {
                self.wrong_type(sink, "an integer");
                None
            }
            Some(Ok(n)) if (i128::from(min)..=i128::from(max)).contains(&n) => {
                u64::try_from(n).ok()
            }
            Some(_) => {
                self.error(sink, format!("must be between {min} and {max}"));
                None
            }
        }
    }

    /// A duration: a string such as `"10s"` or an integer number of seconds.
    pub(crate) fn duration(&self, sink: &mut Sink<'_>) -> Option<Duration> {
        if let DeValue::String(s) = self.value.get_ref() {
            return units::parse_duration(s)
                .map_err(|message| self.error(sink, message))
                .ok();
        }
        match self.raw_integer() {
            Some(Ok(n)) => match u64::try_from(n) {
                Ok(secs) => Some(Duration::from_secs(secs)),
                Err(_) => {
                    self.error(sink, "a duration must not be negative");
                    None
                }
            },
            Some(Err(())) => {
                self.error(sink, "duration is too large");
                None
            }
            None => {
                self.wrong_type(
                    sink,
                    "a duration such as \"10s\" or an integer number of seconds",
                );
                None
            }
        }
    }

    /// A duration that must be above zero.
    pub(crate) fn positive_duration(&self, sink: &mut Sink<'_>) -> Option<Duration> {
        let d = self.duration(sink)?;
        if d.is_zero() {
            self.error(sink, "must be greater than zero");
            return None;
        }
        Some(d)
    }

    /// A size: an integer number of bytes or a string such as `"8k"`.
    pub(crate) fn size(&self, sink: &mut Sink<'_>) -> Option<u64> {
        if let DeValue::String(s) = self.value.get_ref() {
            return units::parse_size(s)
                .map_err(|message| self.error(sink, message))
                .ok();
        }
        match self.raw_integer() {
            Some(Ok(n)) => match u64::try_from(n) {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    self.error(sink, "a size must not be negative");
                    None
                }
            },
            Some(Err(())) => {
                self.error(sink, "size is too large");
                None
            }
            None => {
                self.wrong_type(sink, "a size such as \"8k\" or an integer number of bytes");
                None
            }
        }
    }

    pub(crate) fn table(&self, sink: &mut Sink<'_>) -> Option<&'t DeTable<'i>> {
        match self.value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(sink, "a table");
                None
            }
        }
    }

    /// The elements of an array, each with its own key path.
    pub(crate) fn array(&self, sink: &mut Sink<'_>) -> Option<Vec<Item<'t, 'i>>> {
        match self.value.get_ref() {
            DeValue::Array(a) => Some(self.elements(a)),
            _ => {
                self.wrong_type(sink, "an array");
                None
            }
        }
    }

    /// A string or a non-empty array of strings, as in `host = "a"` or
    /// `host = ["a", "b"]`. Each item is returned with its own key path.
    pub(crate) fn one_or_many(&self, sink: &mut Sink<'_>) -> Option<Vec<(Item<'t, 'i>, &'t str)>> {
        match self.value.get_ref() {
            DeValue::String(s) => Some(vec![(self.reborrow(), s.as_ref())]),
            DeValue::Array(a) if a.is_empty() => {
                self.error(
                    sink,
                    "must not be empty; leave the key out to match everything",
                );
                None
            }
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in self.elements(a) {
                    if let Some(s) = item.str(sink) {
                        out.push((item, s));
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(sink, "a string or an array of strings");
                None
            }
        }
    }

    fn elements(&self, array: &'t [Value<'i>]) -> Vec<Item<'t, 'i>> {
        array
            .iter()
            .enumerate()
            .map(|(i, value)| Item {
                key: element(&self.key, i),
                key_span: value.span(),
                value,
            })
            .collect()
    }

    fn reborrow(&self) -> Item<'t, 'i> {
        Item {
            key: self.key.clone(),
            key_span: self.key_span.clone(),
            value: self.value,
        }
    }
}

/// A table whose keys were checked against a list of known keys.
pub(crate) struct Fields<'t, 'i> {
    pub key: String,
    pub span: Range<usize>,
    entries: Vec<(&'t str, Item<'t, 'i>)>,
}

impl<'t, 'i> Fields<'t, 'i> {
    /// Reports every key not in `known` and keeps the rest.
    pub(crate) fn new(
        sink: &mut Sink<'_>,
        table: &'t DeTable<'i>,
        span: Range<usize>,
        key: &str,
        known: &[&str],
    ) -> Self {
        let mut entries = Vec::new();
        for (name, value) in table.iter() {
            let name_str: &'t str = name.get_ref().as_ref();
            let item = Item {
                key: child(key, name_str),
                key_span: name.span(),
                value,
            };
            if known.contains(&name_str) {
                entries.push((name_str, item));
            } else {
                let hint = match closest(name_str, known) {
                    Some(near) => format!("; did you mean `{near}`?"),
                    None => format!("; expected one of: {}", known.join(", ")),
                };
                sink.error(
                    name.span(),
                    &item.key,
                    format!("unknown key `{name_str}`{hint}"),
                );
            }
        }
        Fields {
            key: key.to_owned(),
            span,
            entries,
        }
    }

    /// Reads an [`Item`] as a table of known keys.
    pub(crate) fn of(sink: &mut Sink<'_>, item: &Item<'t, 'i>, known: &[&str]) -> Option<Self> {
        let table = item.table(sink)?;
        Some(Fields::new(sink, table, item.span(), &item.key, known))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Item<'t, 'i>> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, item)| item)
    }

    /// Like `get`, but reports a missing key at the table.
    pub(crate) fn require(&self, sink: &mut Sink<'_>, name: &str) -> Option<&Item<'t, 'i>> {
        let item = self.get(name);
        if item.is_none() {
            sink.error(
                self.span.clone(),
                &child(&self.key, name),
                format!("missing required key `{name}`"),
            );
        }
        item
    }
}

/// The known key within edit distance 2 of `name`, if there is one.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        assert_eq!(child("", "workers"), "workers");
        assert_eq!(child("upstream", "app"), "upstream.app");
        assert_eq!(child("upstream", "my.app"), "upstream.\"my.app\"");
        assert_eq!(element("route", 2), "route[2]");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("adress", &["name", "address", "backlog"]),
            Some("address")
        );
        assert_eq!(closest("zzz", &["name", "address"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
