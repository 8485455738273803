//! The secrets a config file itself may hold, replaced before the config
//! is shown (`levee config dump`). Tokens and credentials are never in the
//! file (it names a file or a variable), so only these remain.

use toml::{Table, Value};

/// What a secret's value is shown as.
pub(crate) const REDACTED: &str = "<redacted>";

/// Replaces, in a rendered config, each mail listener's `master_password`
/// and the values of its `auth_http_header` fields (an auth service's
/// shared key goes there).
pub(super) fn secrets(root: &mut Table) {
    let Some(Value::Array(listeners)) = root.get_mut("listener") else {
        return;
    };
    for l in listeners {
        let Some(Value::Table(mail)) = l.get_mut("mail") else {
            continue;
        };
        if let Some(v) = mail.get_mut("master_password") {
            *v = REDACTED.into();
        }
        if let Some(Value::Table(headers)) = mail.get_mut("auth_http_header") {
            for (_, v) in headers.iter_mut() {
                *v = REDACTED.into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn a_dump_shows_defaults_and_no_secret() {
        let text = r#"
[[listener]]
address = "127.0.0.1:1143"
protocol = "imap"
[listener.mail]
auth_http = "http://127.0.0.1:9000/auth"
auth_http_header = { X-Auth-Key = "s3cr3t-key" }
master_user = "master"
master_password = "s3cr3t-pass"
"#;
        let config = crate::parse(text, Path::new("t.toml")).expect("valid");
        let dump = crate::render::dump(&config);
        assert!(!dump.contains("s3cr3t"), "{dump}");
        assert!(dump.contains("master_password = \"<redacted>\""), "{dump}");
        assert!(dump.contains("X-Auth-Key = \"<redacted>\""), "{dump}");
        // Defaults are written out.
        assert!(dump.contains("grace = \"30s\""), "{dump}");
        assert!(dump.contains("error_format = \"text\""), "{dump}");
        assert!(dump.starts_with("# levee config dump of t.toml"), "{dump}");
        // And what is shown is a config levee reads.
        crate::parse(&dump, Path::new("dump.toml")).expect("a dump parses");
    }
}
