//! The Python that has a test's modules: the one on PATH, or the system's,
//! where Debian's python3-* packages go (scripts/test installs them).

use std::process::{Command, Stdio};

/// The first of `python3` and `/usr/bin/python3` that can import `modules`
/// (comma-separated, as in an `import` statement).
pub fn python_with(modules: &str) -> &'static str {
    let has = |py: &str| {
        Command::new(py)
            .args(["-c", &format!("import {modules}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|py| has(py))
        .unwrap_or_else(|| panic!("no python3 with {modules}: run scripts/test"))
}
