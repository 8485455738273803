//! Checks against the machine rather than the file: kept apart from
//! [`crate::parse`] so parsing stays pure and testable anywhere.

use std::path::Path;

use rustix::fs::Access;

use crate::error::ConfigError;
use crate::locate::Locator;
use crate::model::{AccessLogTarget, Action, Config, ErrorLogTarget, MailAuth, PageSource};

/// Reports what levee could not start (or reload) with on this machine:
/// static roots that are not directories, mail user maps that are not
/// files, and an access or error log, pid file or control socket levee
/// could not write (its directory missing or not writable, the file itself
/// not writable). Each
/// error is placed at its key (see [`Locator`]). `levee check`, start-up and
/// reload all run this after parsing.
pub fn check_filesystem(config: &Config) -> Vec<ConfigError> {
    let at = Locator::new(config);
    let mut errors = Vec::new();
    for (i, route) in config.routes.iter().enumerate() {
        if let Action::Static(s) = &route.action
            && !s.root.is_dir()
        {
            errors.push(at.error(
                &format!("route[{i}].static"),
                format!("`{}` is not a directory", s.root.display()),
            ));
        }
    }
    let pages = config
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("route[{i}].error_pages"), &r.shape.error_pages))
        .chain([("http.error_pages".to_owned(), &config.http.error_pages)]);
    for (key, pages) in pages {
        for page in pages {
            let files = [
                ("file", Some(&page.body)),
                ("json_file", page.json.as_ref()),
            ];
            for (name, source) in files {
                if let Some(PageSource::File(path)) = source
                    && !path.is_file()
                {
                    errors.push(at.error(
                        &format!("{key}.{}.{name}", page.status),
                        format!("`{}` is not a file", path.display()),
                    ));
                }
            }
        }
    }
    for (i, listener) in config.listeners.iter().enumerate() {
        if let Some(MailAuth::UserMap(path)) = listener.mail.as_ref().map(|m| &m.auth)
            && !path.is_file()
        {
            errors.push(at.error(
                &format!("listener[{i}].mail.user_map"),
                format!("`{}` is not a file", path.display()),
            ));
        }
    }
    if let AccessLogTarget::File(path) = &config.log.access
        && let Some(message) = unwritable(path)
    {
        errors.push(at.error("log.access", message));
    }
    if let ErrorLogTarget::File(path) = &config.log.error
        && let Some(message) = unwritable(path)
    {
        errors.push(at.error("log.error", message));
    }
    for (key, path) in [
        ("pid_file", &config.pid_file),
        ("control_socket", &config.control_socket),
    ] {
        if let Some(path) = path
            && let Some(message) = unwritable(path)
        {
            errors.push(at.error(key, message));
        }
    }
    errors
}

/// Why levee could not create or append to the file at `path`, if it
/// could not. Asks the kernel (`access(2)`) rather than trying, so a check
/// creates nothing.
fn unwritable(path: &Path) -> Option<String> {
    if path.is_dir() {
        return Some(format!("`{}` is a directory", path.display()));
    }
    if path.exists() {
        return rustix::fs::access(path, Access::WRITE_OK)
            .err()
            .map(|e| format!("`{}` is not writable: {e}", path.display()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Some(format!("directory `{}` does not exist", parent.display()));
    }
    rustix::fs::access(parent, Access::WRITE_OK)
        .err()
        .map(|e| format!("directory `{}` is not writable: {e}", parent.display()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::builtin_static;
    use crate::validate::BUILTIN_SOURCE;

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

    #[test]
    fn a_pid_file_that_is_a_directory_is_refused() {
        let mut config = builtin_static(
            std::env::temp_dir(),
            "127.0.0.1:8080".parse().expect("literal address"),
        );
        config.pid_file = Some(std::env::temp_dir());
        let errors = check_filesystem(&config);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("is a directory"), "{errors:?}");
    }

    #[test]
    fn errors_carry_the_position_of_their_key() {
        let dir = std::env::temp_dir().join(format!("levee-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("levee.toml");
        let text = "pid_file = \"/nonexistent/run/levee.pid\"\n\
                    [[listener]]\naddress = \"127.0.0.1:8080\"\n\
                    [[route]]\nstatic = \"/nonexistent/root\"\n";
        std::fs::write(&file, text).expect("write config");
        let config = crate::load(&file).expect("valid config");
        let shown: Vec<String> = check_filesystem(&config)
            .iter()
            .map(|e| e.to_string())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        let f = file.display();
        assert_eq!(
            shown,
            [
                format!("{f}:5:10: route[0].static: `/nonexistent/root` is not a directory"),
                format!("{f}:1:12: pid_file: directory `/nonexistent/run` does not exist"),
            ]
        );
    }
}
