//! levee's config pipeline: file -> raw schema -> validated [`Config`].
//!
//! ```text
//! TOML text ──toml::de::DeTable::parse──> spanned tree
//!           ──walk (tree.rs, walk.rs)───> Draft      every key and value checked
//!           ──validate::assemble────────> Config     duplicates and references checked
//! ```
//!
//! Nothing stops at the first problem: each stage reports into one sink and
//! carries on, so a broken file yields every error at once, each with
//! `file:line:column`, the key path and a message. Only a TOML syntax error
//! stops the pipeline, since there is no tree to walk after it.
//!
//! Configs built in code ([`builtin_static`], [`builtin_proxy`]) are held to
//! the same rules by [`validate`]. The schema is documented in
//! `docs/config.md`.

mod builtin;
mod error;
mod filesystem;
mod locate;
pub mod model;
mod names;
mod render;
mod tree;
pub mod units;
mod validate;
mod walk;

use std::path::Path;

pub use builtin::{BUILTIN_UPSTREAM, builtin_proxy, builtin_static};
pub use error::{ConfigError, ConfigErrors};
pub use filesystem::check_filesystem;
pub use locate::Locator;
pub use model::*;
pub use names::{check_route_path, check_server_address, parse_host_pattern};
pub use render::mirrors::mirror as mirror_to_toml;
pub use render::{dump, to_toml, to_toml_redacted};
pub use validate::{BUILTIN_SOURCE, addresses_clash, validate};
pub use walk::mirrors::{base_url, mirror_from_toml};
pub use walk::{MAX_WORKERS, parse_origin};

/// The key path of `key` under `parent` (`upstream."my.app"`), quoted as in
/// every message, for errors found after parsing (see [`Locator`]).
pub fn child_key(parent: &str, key: &str) -> String {
    tree::child(parent, key)
}

/// Reads and parses the config file at `path`. A file that cannot be read is
/// reported as a [`ConfigError`] without a position.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(&text, path)
}

/// Parses config text. `file` names the text in messages and becomes
/// [`Config::source`]; nothing is read from it.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let root = toml::de::DeTable::parse(text)
        .map_err(|e| ConfigErrors::from(validate::syntax_error(text, file, &e)))?;
    let mut sink = error::Sink::new(text, file);
    let draft = walk::walk(&mut sink, root.get_ref(), root.span());
    match validate::assemble(&mut sink, draft, file) {
        Some(config) if !sink.has_errors() => Ok(config),
        _ => Err(ConfigErrors {
            errors: sink.finish(),
        }),
    }
}

#[cfg(test)]
mod tests;
