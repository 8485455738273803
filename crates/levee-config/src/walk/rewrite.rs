//! A route's rewrite keys: `strip_prefix`, `add_prefix` and
//! `[[route.rewrite]]` rules (`match`, `to`, `flag`, `status`).

use crate::error::Sink;
use crate::model::{
    Action, ForwardPath, Pattern, RewriteFlag, RewriteRule, RewriteTemplate, RouteRewrite,
};
use crate::names;
use crate::tree::{Fields, Item};

/// The route keys read here.
pub(crate) const KEYS: &[&str] = &["strip_prefix", "add_prefix", "rewrite"];

/// The keys of one `[[route.rewrite]]`.
pub(crate) const RULE_KEYS: &[&str] = &["match", "to", "flag", "status"];

/// Most compiled size of one `match` regex: far above any sensible path
/// pattern, and a bound on what one config can make every request cost.
const MAX_REGEX_SIZE: usize = 1 << 20;

pub(crate) fn route_rewrite(sink: &mut Sink<'_>, fields: &Fields<'_, '_>) -> RouteRewrite {
    let prefix = |sink: &mut Sink<'_>, key: &str| {
        let i = fields.get(key)?;
        let p = i.text(sink)?;
        match names::check_route_path(p) {
            Ok(()) => Some(p.to_owned()),
            Err(message) => {
                i.error(sink, message.replacen("path", "prefix", 1));
                None
            }
        }
    };
    let strip_prefix = prefix(sink, "strip_prefix");
    let add_prefix = prefix(sink, "add_prefix");
    let rules = fields
        .get("rewrite")
        .and_then(|i| i.array(sink))
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| rule(sink, entry))
        .collect();
    RouteRewrite {
        rules,
        strip_prefix,
        add_prefix,
    }
}

/// A rewritten path is forwarded normalised (rewrite.rs in levee-http), so
/// `forward_path = "original"` beside a rewrite would be silently ignored.
pub(crate) fn check_forward_path(
    sink: &mut Sink<'_>,
    fields: &Fields<'_, '_>,
    rewrite: &RouteRewrite,
    action: Option<&Action>,
) {
    if let Some(Action::Proxy(p)) = action
        && p.forward_path == ForwardPath::Original
        && !rewrite.is_empty()
        && let Some(i) = fields.get("forward_path")
    {
        i.error(
            sink,
            "a route that rewrites its path forwards it normalised; `\"original\"` cannot apply",
        );
    }
}

fn rule(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<RewriteRule> {
    let fields = Fields::of(sink, item, RULE_KEYS)?;
    let pattern = fields.require(sink, "match").and_then(|i| {
        let text = i.text(sink)?;
        match regex::bytes::RegexBuilder::new(text)
            .size_limit(MAX_REGEX_SIZE)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                i.error(sink, format!("not a valid regex: {e}"));
                None
            }
        }
    });
    let flag = match fields.get("flag") {
        None => Some(RewriteFlag::Last),
        Some(i) => match i.str(sink) {
            Some("last") => Some(RewriteFlag::Last),
            Some("break") => Some(RewriteFlag::Break),
            Some("redirect") => Some(RewriteFlag::Redirect(302)),
            Some("permanent") => Some(RewriteFlag::Redirect(301)),
            Some(other) => {
                i.error(
                    sink,
                    format!(
                        "`{other}`: expected \"last\", \"break\", \"redirect\" or \"permanent\""
                    ),
                );
                None
            }
            None => None,
        },
    };
    let flag = match (flag, fields.get("status")) {
        (flag, None) => flag,
        (Some(RewriteFlag::Redirect(_)), Some(i)) => i.integer(sink).and_then(|n| match n {
            301 | 302 | 303 | 307 | 308 => u16::try_from(n).ok().map(RewriteFlag::Redirect),
            _ => {
                i.error(sink, "a redirect status must be 301, 302, 303, 307 or 308");
                None
            }
        }),
        (flag, Some(i)) => {
            if flag.is_some() {
                i.error(
                    sink,
                    "`status` only applies with `flag = \"redirect\"` or `\"permanent\"`",
                );
            }
            None
        }
    };
    let to_item = fields.require(sink, "to")?;
    let to = to_item.text(sink)?;
    let (pattern, flag) = (pattern?, flag?);
    let external = to.starts_with("http://") || to.starts_with("https://");
    let fits = match flag {
        RewriteFlag::Redirect(_) => to.starts_with('/') || external,
        RewriteFlag::Last | RewriteFlag::Break => to.starts_with('/'),
    };
    if !fits {
        let expected = match flag {
            RewriteFlag::Redirect(_) => "a path starting with `/` or an http:// or https:// URL",
            _ => "a path starting with `/` (only a redirect may name a URL)",
        };
        to_item.error(sink, format!("`{to}`: expected {expected}"));
        return None;
    }
    if to.contains('#') {
        to_item.error(sink, "must not contain `#`");
        return None;
    }
    if !escapes_are_whole(to) {
        to_item.error(sink, "a `%` must start an escape such as `%20`");
        return None;
    }
    match RewriteTemplate::parse(to, pattern.captures_len()) {
        Ok(to) => Some(RewriteRule {
            pattern: Pattern(pattern),
            to,
            flag,
        }),
        Err(message) => {
            to_item.error(sink, message);
            None
        }
    }
}

/// Every `%` in `text` is followed by two hex digits.
fn escapes_are_whole(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests;
