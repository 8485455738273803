//! Whole-file tests, by topic: a full config (`full`), defaults
//! (`defaults`), the examples and docs (`shipped`), many errors at once and
//! syntax errors (`errors`), never panicking (`fuzz`); and the helpers the
//! walkers' own tests use.

mod defaults;
mod errors;
mod full;
mod fuzz;
mod shipped;

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// Parses `text` as `t.toml` and returns each error's Display.
pub(crate) fn errors_of(text: &str) -> Vec<String> {
    match parse(text, Path::new("t.toml")) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

pub(crate) fn ok(text: &str) -> Config {
    match parse(text, Path::new("t.toml")) {
        Ok(config) => config,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

/// A valid listener, route and upstream to add a table to.
const BASE: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nproxy = \"app\"\n[upstream.app]\nservers = [\"h:1\"]\n";
