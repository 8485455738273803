//! The config view: the running config as levee understood it (every key,
//! defaults included, as `levee_config::to_toml` writes it), the file on
//! disk read the same way, and the lines that differ, so an operator sees
//! what a reload would change before asking for it. A file that would be
//! refused shows `levee check`'s errors instead.
//!
//! Secrets are never shown: both sides are rendered as `levee config
//! dump` renders them (`to_toml_redacted`: a mail listener's
//! `master_password` and `auth_http_header` values), and the value of any
//! key named like a secret (`password`, `secret`, `token`, `credentials`,
//! `…_password`) is replaced too, before comparing. Keys that name a file or a
//! variable holding a secret (`token_file`, `password_file`) are kept:
//! they are paths, not secrets.

use levee_config::Config;
use serde_json::{Value, json};

/// Lines compared at most on each side: the diff's table is the product.
const MAX_LINES: usize = 4000;
pub(super) const REDACTED: &str = "\"(redacted)\"";

/// Whether `key` names a secret value.
fn secret_key(key: &str) -> bool {
    let key = key.trim().trim_matches('"').to_ascii_lowercase();
    ["password", "secret", "token", "credentials"]
        .iter()
        .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

/// `text` with the value of every secret key replaced.
pub(super) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.split_once('=') {
            Some((key, _)) if !line.trim_start().starts_with('[') && secret_key(key) => {
                out.push_str(key.trim_end());
                out.push_str(" = ");
                out.push_str(REDACTED);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The view for the config now running.
pub(super) fn view(running: &Config) -> Value {
    let text = redact(&levee_config::to_toml_redacted(running));
    let Some(path) = &running.source else {
        return json!({ "running": text, "source": null, "disk": null, "diff": [] });
    };
    match levee_config::load(path) {
        Ok(disk) => {
            let disk = redact(&levee_config::to_toml_redacted(&disk));
            json!({
                "running": text,
                "source": path.display().to_string(),
                "changed": disk != text,
                "diff": diff(&text, &disk),
            })
        }
        Err(errors) => json!({
            "running": text,
            "source": path.display().to_string(),
            "changed": true,
            "errors": errors.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            "diff": [],
        }),
    }
}

/// The lines of `a` and `b` as a list of `{"op": " "|"-"|"+", "line": …}`,
/// unchanged lines included for context (a longest common subsequence).
pub(super) fn diff(a: &str, b: &str) -> Vec<Value> {
    let a: Vec<&str> = a.lines().take(MAX_LINES).collect();
    let b: Vec<&str> = b.lines().take(MAX_LINES).collect();
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the common subsequence of a[i..] and b[j..].
    let mut lcs = vec![0u16; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    let line = |op: &str, l: &str| json!({ "op": op, "line": l });
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(line(" ", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
            // Removals first, so a changed line reads old then new.
            out.push(line("-", a[i]));
            i += 1;
        } else {
            out.push(line("+", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_paths_kept() {
        let text = "[[mail.auth]]\npassword = \"hunter2\"\nmaster_password=\"x\"\ntoken_file = \"/etc/t\"\n[password]\nname = \"a\"\n";
        let r = redact(text);
        assert!(!r.contains("hunter2") && !r.contains("\"x\""), "{r}");
        assert!(r.contains("token_file = \"/etc/t\""));
        assert!(r.contains("[password]"));
    }

    #[test]
    fn diff_marks_changed_lines() {
        let d = diff("a\nb\nc\n", "a\nc\nd\n");
        let ops: Vec<String> = d
            .iter()
            .map(|v| {
                format!(
                    "{}{}",
                    v["op"].as_str().unwrap_or("?"),
                    v["line"].as_str().unwrap_or("?")
                )
            })
            .collect();
        assert_eq!(ops, [" a", "-b", " c", "+d"]);
    }
}
