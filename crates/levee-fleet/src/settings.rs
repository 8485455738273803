//! A `[fleet]` section made ready to connect: the credentials read from
//! their file or environment variable, the CA file read, this member's name
//! resolved. `levee check` runs the same loading, so a config it passes
//! does not fail here at start.

use std::fmt;
use std::path::Path;

use levee_config::{ConfigError, CredentialSource, FileRef, Fleet};

/// What the fleet needs from the config and the machine to connect.
#[derive(Clone)]
pub struct Settings {
    pub config: Fleet,
    /// This member's name: `instance`, or the host name.
    pub instance: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM CA certificates for `rediss://`.
    pub ca: Option<Vec<u8>>,
}

/// The password never reaches a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("config", &self.config)
            .field("instance", &self.instance)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca.as_ref().map(Vec::len))
            .finish()
    }
}

impl Settings {
    /// Reads what `config` names. `source` is the config file, for messages.
    pub fn load(config: &Fleet, source: &Path) -> Result<Settings, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let (mut username, mut password) = (None, None);
        if let Some(c) = &config.credentials {
            let text = match &c.source {
                CredentialSource::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
                CredentialSource::Env(var) => std::env::var(var)
                    .map_err(|_| format!("the environment variable `{var}` is not set")),
            };
            match text.and_then(|t| split_credentials(&t)) {
                Ok((u, p)) => {
                    username = u;
                    password = Some(p);
                }
                Err(message) => errors.push(at(source, &c.at, message)),
            }
        }
        let ca = match &config.ca_file {
            Some(f) => match std::fs::read(&f.path) {
                Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => {
                    Some(pem)
                }
                Ok(_) => {
                    errors.push(at(source, f, "no PEM certificate in the file".to_owned()));
                    None
                }
                Err(e) => {
                    let message = format!("cannot read `{}`: {e}", f.path.display());
                    errors.push(at(source, f, message));
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            instance: config.instance.clone().unwrap_or_else(host_name),
            config: config.clone(),
            username,
            password,
            ca,
        })
    }
}

/// `PASSWORD` or `USERNAME:PASSWORD`, without the line end.
fn split_credentials(text: &str) -> Result<(Option<String>, String), String> {
    let line = text.lines().next().unwrap_or_default().trim_end();
    let (user, password) = match line.split_once(':') {
        Some((u, p)) if !u.is_empty() => (Some(u.to_owned()), p),
        _ => (None, line),
    };
    if password.is_empty() {
        return Err("no password found: write PASSWORD or USERNAME:PASSWORD".to_owned());
    }
    Ok((user, password.to_owned()))
}

fn at(source: &Path, f: &FileRef, message: String) -> ConfigError {
    ConfigError {
        file: source.to_path_buf(),
        line: f.line,
        column: f.column,
        key: f.key.clone(),
        message,
    }
}

/// The host name, made fit to be a member's name (the config's rules for
/// `instance`).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "levee".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_a_password_or_a_user_and_a_password() {
        assert_eq!(split_credentials("s3cret\n"), Ok((None, "s3cret".into())));
        assert_eq!(
            split_credentials("levee:pa:ss\r\n"),
            Ok((Some("levee".into()), "pa:ss".into()))
        );
        assert_eq!(split_credentials(":only\n"), Ok((None, ":only".into())));
        assert!(split_credentials("\n").is_err());
        assert!(split_credentials("user:\n").is_err());
    }

    #[test]
    fn unreadable_sources_are_reported_at_their_key() {
        let text = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
                    [fleet]\nname = \"a\"\nredis = \"rediss://h\"\ncredentials_env = \"LEVEE_TEST_UNSET_VAR\"\n\
                    ca_file = \"/nonexistent/ca.pem\"\n";
        let config = levee_config::parse(text, Path::new("t.toml")).expect("valid");
        let fleet = config.fleet.as_ref().expect("fleet");
        let errors = Settings::load(fleet, Path::new("t.toml")).expect_err("unreadable");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "t.toml:8:19: fleet.credentials_env: the environment variable `LEVEE_TEST_UNSET_VAR` is not set",
                "t.toml:9:11: fleet.ca_file: cannot read `/nonexistent/ca.pem`: No such file or directory (os error 2)",
            ]
        );
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let text = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
                    [fleet]\nname = \"a\"\nredis = \"redis://h\"\ninstance = \"i\"\n";
        let config = levee_config::parse(text, Path::new("t.toml")).expect("valid");
        let mut s =
            Settings::load(config.fleet.as_ref().expect("fleet"), Path::new("t")).expect("ok");
        s.password = Some("hunter2".into());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert_eq!(s.instance, "i");
    }
}
