//! Checks against the machine rather than the file: kept apart from
//! [`crate::parse`] so parsing stays pure and testable anywhere.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::model::{AccessLogTarget, Action, Config, MailAuth};
use crate::validate::BUILTIN_SOURCE;

/// Reports static roots that are not directories, mail user maps that are
/// not files, and an access log or pid file whose directory does not exist. Errors carry the key path and no
/// position. `levee` runs this at start-up and on reload, after parsing.
pub fn check_filesystem(config: &Config) -> Vec<ConfigError> {
    let file = config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(BUILTIN_SOURCE));
    let mut errors = Vec::new();
    let mut report = |key: String, message: String| {
        errors.push(ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            key,
            message,
        });
    };
    for (i, route) in config.routes.iter().enumerate() {
        if let Action::Static(s) = &route.action
            && !s.root.is_dir()
        {
            report(
                format!("route[{i}].static"),
                format!("`{}` is not a directory", s.root.display()),
            );
        }
    }
    for (i, listener) in config.listeners.iter().enumerate() {
        if let Some(MailAuth::UserMap(path)) = listener.mail.as_ref().map(|m| &m.auth)
            && !path.is_file()
        {
            report(
                format!("listener[{i}].mail.user_map"),
                format!("`{}` is not a file", path.display()),
            );
        }
    }
    if let AccessLogTarget::File(path) = &config.log.access
        && let Some(message) = missing_parent(path)
    {
        report("log.access".to_owned(), message);
    }
    if let Some(path) = &config.pid_file
        && let Some(message) = missing_parent(path)
    {
        report("pid_file".to_owned(), message);
    }
    errors
}

fn missing_parent(path: &Path) -> Option<String> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    (!parent.is_dir()).then(|| format!("directory `{}` does not exist", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin_static;

    #[test]
    fn reports_missing_static_root_and_log_directory() {
        let mut config = builtin_static(
            PathBuf::from("/nonexistent/levee-test-root"),
            "127.0.0.1:8080".parse().expect("literal address"),
        );
        config.log.access = AccessLogTarget::File("/nonexistent/dir/access.log".into());
        config.pid_file = Some(std::env::temp_dir().join("levee.pid"));
        config.listeners[0].mail = Some(Box::new(crate::model::MailListener::new(
            crate::model::MailProtocol::Imap,
            MailAuth::UserMap("/nonexistent/users".into()),
        )));
        let errors = check_filesystem(&config);
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["route[0].static", "listener[0].mail.user_map", "log.access"]
        );
        assert_eq!(errors[0].file, PathBuf::from(BUILTIN_SOURCE));
        assert_eq!(
            errors[0].to_string(),
            "<built-in>: route[0].static: `/nonexistent/levee-test-root` is not a directory"
        );
    }

    #[test]
    fn existing_directories_pass() {
        let config = builtin_static(
            std::env::temp_dir(),
            "127.0.0.1:8080".parse().expect("literal address"),
        );
        assert_eq!(check_filesystem(&config), Vec::new());
    }
}
