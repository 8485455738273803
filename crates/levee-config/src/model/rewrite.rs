//! A route's path rewriting (docs/config.md, "Path rewriting"): regex
//! rules with captures, then a prefix stripped and one added. The regexes
//! are compiled once, at validation, by the `regex` crate: linear time in
//! the path's length, never backtracking.

/// How many internal rewrites one request may go through by default
/// (`[limits] max_rewrites`), as nginx's limit of 10.
pub const DEFAULT_MAX_REWRITES: u32 = 10;

/// A route's rewriting; [`RouteRewrite::is_empty`] when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteRewrite {
    /// `[[route.rewrite]]`, tried in order; the first that matches applies.
    pub rules: Vec<RewriteRule>,
    /// `strip_prefix`: removed from the path when it starts with it, at a
    /// segment boundary.
    pub strip_prefix: Option<String>,
    /// `add_prefix`: put in front of the path (after `strip_prefix`).
    pub add_prefix: Option<String>,
}

impl RouteRewrite {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.strip_prefix.is_none() && self.add_prefix.is_none()
    }
}

/// One `[[route.rewrite]]`: `match`, `to`, `flag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteRule {
    pub pattern: Pattern,
    pub to: RewriteTemplate,
    pub flag: RewriteFlag,
}

/// What follows a rule that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteFlag {
    /// Routes are matched again with the new path (nginx `last`).
    Last,
    /// The route keeps the request, with the new path (nginx `break`).
    Break,
    /// The client is sent to the new path or URL with this status (301,
    /// 302, 303, 307 or 308).
    Redirect(u16),
}

impl RewriteFlag {
    /// The `flag` key's value, and the `status` key's when it is a redirect.
    pub fn as_str(self) -> &'static str {
        match self {
            RewriteFlag::Last => "last",
            RewriteFlag::Break => "break",
            RewriteFlag::Redirect(_) => "redirect",
        }
    }
}

/// A compiled `match` regex, compared by its text.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

/// A `to` replacement: literal text and capture references (`$1`, `{1}`),
/// checked against the pattern's groups when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteTemplate {
    /// As written, for the config dump.
    pub text: String,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// Group number; 0 is the whole match.
    Capture(usize),
}

impl RewriteTemplate {
    /// Splits `text` into literals and captures: `$` followed by digits, or
    /// digits in braces (`{1}`, for a capture followed by a digit). Any
    /// other `$` or `{` is literal. A capture past the pattern's `groups`
    /// (group 0 included) is an error.
    pub fn parse(text: &str, groups: usize) -> Result<RewriteTemplate, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let (digits, used) = match c {
                '$' => {
                    let n = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                    (&rest[1..1 + n], 1 + n)
                }
                '{' => {
                    let n = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                    if rest[1 + n..].starts_with('}') {
                        (&rest[1..1 + n], 2 + n)
                    } else {
                        ("", 0)
                    }
                }
                _ => ("", 0),
            };
            if digits.is_empty() {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let group: usize = digits
                .parse()
                .map_err(|_| format!("capture `{}` is out of range", &rest[..used]))?;
            if group >= groups {
                return Err(format!(
                    "`{}` refers to group {group}, but `match` has {} group{}",
                    &rest[..used],
                    groups - 1,
                    if groups == 2 { "" } else { "s" }
                ));
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Capture(group));
            rest = &rest[used..];
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(RewriteTemplate {
            text: text.to_owned(),
            parts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_in_both_spellings() {
        let t = RewriteTemplate::parse("/new/$1/{2}3/$$x{a}", 3).expect("valid");
        assert_eq!(
            t.parts,
            [
                Part::Literal("/new/".into()),
                Part::Capture(1),
                Part::Literal("/".into()),
                Part::Capture(2),
                Part::Literal("3/$$x{a}".into()),
            ]
        );
    }

    #[test]
    fn a_capture_past_the_groups_is_refused() {
        let e = RewriteTemplate::parse("/x/$2", 2).expect_err("one group");
        assert!(e.contains("group 2") && e.contains("has 1 group"), "{e}");
        assert!(RewriteTemplate::parse("/{99999999999999999999999}", 2).is_err());
        assert!(RewriteTemplate::parse("/$0", 1).is_ok());
    }
}
