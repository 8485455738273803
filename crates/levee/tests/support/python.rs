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

/// Runs the dashboard's browser script (`tests/dashboard/browse.py`,
/// Playwright) with `args` as its `DASH_ARGS`: whether every check passed,
/// and its output.
pub fn browse_py(args: &serde_json::Value) -> (bool, String) {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/browse.py");
    let out = Command::new(python_with("playwright.sync_api"))
        .arg(script)
        .env("DASH_ARGS", args.to_string())
        .output()
        .expect("run browse.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = out.status.success() && text.contains("dashboard: all checks passed");
    (passed, text)
}
